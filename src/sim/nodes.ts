/**
 * Simulated nodes: each registers a Node, keeps its Lease in kube-node-lease renewed and reports
 * its status as a 1.32 kubelet does, and plays the kubelet's part for the pods bound to it
 * without running anything: after a startup delay the pod is Running and Ready with a podIP from
 * the node's podCIDR; a pod marked for deletion is removed for good (the kubelet's final DELETE
 * with gracePeriodSeconds=0 and the pod's UID as precondition).
 *
 * One simulator serves many nodes through one client (a keep-alive connection pool), one pod
 * informer for all of them (spec.nodeName set, filtered by node name) and one node informer;
 * writes go through one limiter so that thousands of nodes make a bounded number of requests
 * at a time, and heartbeats are spread over their interval.
 *
 * Contract: the simulator only ever writes its own nodes, their leases and pods bound to them.
 * A pod's status is written once when it starts; nothing else about it is simulated (no probes,
 * no restarts, no exit).
 */
import { createHash, randomUUID } from "node:crypto";
import type { Lease } from "kubernetes-types/coordination/v1.js";
import type {
  ContainerStatus,
  Node,
  NodeCondition,
  NodeStatus,
  Pod,
  PodCondition,
  Taint,
} from "kubernetes-types/core/v1.js";
import { isStatusError } from "../api/status.js";
import { formatTime } from "../api/time.js";
import { SharedInformers } from "../client/informer.js";
import { formatMicroTime } from "../client/leaderelection.js";
import type { Client } from "../client/resources.js";
import { errorMessage, type Logger } from "../controllers/context.js";
import { kubernetesVersion } from "../cli/version.js";
import { contains, formatCIDR, IPAllocator, parseCIDR, type CIDR } from "./cidr.js";

export const NODE_LEASE_NAMESPACE = "kube-node-lease";
export const TAINT_NOT_READY = "node.kubernetes.io/not-ready";

export interface SimNodeSpec {
  name: string;
  /** The /24 the node uses for pods unless spec.podCIDR says otherwise. */
  podCIDR: CIDR;
  /** The node's InternalIP (its pods' hostIP). */
  ip: string;
}

export interface SimulatorOptions {
  client: Client;
  nodes: SimNodeSpec[];
  /** status.capacity (and allocatable): cpu, memory, pods, ... */
  capacity: Record<string, string>;
  labels: Record<string, string>;
  taints: Taint[];
  /** How often each node renews its Lease (the kubelet: 10 s). */
  heartbeatInterval: number;
  leaseDurationSeconds: number;
  /** How often each node posts its status when nothing changed (the kubelet: 5 min). */
  statusReportFrequency: number;
  /** From a pod bound to a node to its status Running (ms). */
  startupDelay: number;
  /** From a pod marked for deletion to its removal (ms). */
  terminationDelay: number;
  /** Remove the not-ready:NoSchedule taint the API server adds at registration. */
  removeNotReadyTaint: boolean;
  /** Requests in flight at most. */
  concurrency: number;
  log: Logger;
}

interface NodeState {
  spec: SimNodeSpec;
  uid: string;
  cidr: CIDR;
  ips: IPAllocator;
  lease: Lease | undefined;
  leaseDue: number;
  statusDue: number;
  registered: boolean;
  untainting: boolean;
}

interface PodState {
  node: NodeState;
  ip?: string;
  /** A start or a deletion is queued or under way. */
  busy: "starting" | "deleting" | undefined;
  running: boolean;
}

/** Runs at most `n` tasks at a time, in the order they were given. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly n: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

const isCode = (err: unknown, ...codes: number[]) => isStatusError(err) && codes.includes(err.code);

function hex(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

export class NodeSimulator {
  private readonly nodes = new Map<string, NodeState>();
  private readonly pods = new Map<string, PodState>();
  private readonly limiter: Limiter;
  private readonly informers: SharedInformers;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly bootID = randomUUID();
  /** Pods made Running so far (for logs and benchmarks). */
  started = 0;

  constructor(private readonly o: SimulatorOptions) {
    this.limiter = new Limiter(o.concurrency);
    this.informers = new SharedInformers(o.client, {
      onError: (err) => o.log.error(`informer: ${errorMessage(err)}`),
    });
    for (const spec of o.nodes) {
      this.nodes.set(spec.name, {
        spec,
        uid: "",
        cidr: spec.podCIDR,
        ips: new IPAllocator(spec.podCIDR),
        lease: undefined,
        leaseDue: 0,
        statusDue: 0,
        registered: false,
        untainting: false,
      });
    }
  }

  /** Registers the nodes, then simulates them until `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    const t0 = Date.now();
    await Promise.all(
      [...this.nodes.values()].map((n) => this.limiter.run(() => this.register(n, signal))),
    );
    if (signal.aborted) return;
    this.o.log.info(
      `Registered ${this.nodes.size} node(s) with their leases in ${Date.now() - t0}ms`,
    );
    const now = Date.now();
    let i = 0;
    for (const n of this.nodes.values()) {
      // Spread the heartbeats over their intervals.
      const frac = this.nodes.size > 1 ? i++ / this.nodes.size : 0;
      n.leaseDue = now + this.o.heartbeatInterval * frac;
      n.statusDue = now + this.o.statusReportFrequency * (0.5 + frac / 2);
    }
    this.watchNodes();
    this.watchPods();
    const tick = setInterval(() => this.heartbeat(signal), 100);
    try {
      await this.informers.start(signal);
    } finally {
      clearInterval(tick);
      for (const t of this.timers) clearTimeout(t);
    }
  }

  // ---- nodes ----

  private nodeObject(n: NodeState): Node {
    const name = n.spec.name;
    return {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name,
        labels: {
          "beta.kubernetes.io/arch": "amd64",
          "beta.kubernetes.io/os": "linux",
          "kubernetes.io/arch": "amd64",
          "kubernetes.io/hostname": name,
          "kubernetes.io/os": "linux",
          ...this.o.labels,
        },
        annotations: {
          "node.alpha.kubernetes.io/ttl": "0",
          "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        },
      },
      spec: this.o.taints.length ? { taints: this.o.taints } : {},
      status: this.nodeStatus(n),
    };
  }

  private nodeStatus(n: NodeState): NodeStatus {
    const t = formatTime();
    const cond = (
      type: string,
      status: string,
      reason: string,
      message: string,
    ): NodeCondition => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: t,
      lastTransitionTime: t,
    });
    return {
      capacity: this.o.capacity,
      allocatable: this.o.capacity,
      conditions: [
        cond(
          "MemoryPressure",
          "False",
          "KubeletHasSufficientMemory",
          "kubelet has sufficient memory available",
        ),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond(
          "PIDPressure",
          "False",
          "KubeletHasSufficientPID",
          "kubelet has sufficient PID available",
        ),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
      ],
      addresses: [
        { type: "InternalIP", address: n.spec.ip },
        { type: "Hostname", address: n.spec.name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: hex(`machine/${n.spec.name}`).slice(0, 32),
        systemUUID: hex(`system/${n.spec.name}`).slice(0, 32),
        bootID: this.bootID,
        kernelVersion: "simulated",
        osImage: "k8ts simulated node",
        containerRuntimeVersion: "sim://1.0.0",
        kubeletVersion: kubernetesVersion.gitVersion,
        kubeProxyVersion: "",
        operatingSystem: "linux",
        architecture: "amd64",
      },
    };
  }

  private nodesClient() {
    return this.o.client.resource("v1/Node");
  }

  private leases() {
    return this.o.client.resource("coordination.k8s.io/v1/Lease", NODE_LEASE_NAMESPACE);
  }

  /** Creates the Node (or takes over an existing one, reporting fresh status) and its Lease. */
  private async register(n: NodeState, signal: AbortSignal): Promise<void> {
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        let node: Node;
        try {
          node = await this.nodesClient().create(this.nodeObject(n));
        } catch (err) {
          if (!isCode(err, 409)) throw err;
          await this.nodesClient().patch(
            n.spec.name,
            "strategic",
            { status: this.nodeStatus(n) },
            { subresource: "status" },
          );
          node = await this.nodesClient().get(n.spec.name);
        }
        this.observeNode(node);
        n.registered = true;
        await this.renewLease(n);
        return;
      } catch (err) {
        this.o.log.error(`Unable to register node "${n.spec.name}": ${errorMessage(err)}`);
        await new Promise((r) => setTimeout(r, Math.min(7000, 100 * 2 ** attempt)));
      }
    }
  }

  /** Takes what the node object says: its UID, the podCIDR given to it, the taint to lift. */
  private observeNode(node: Node): void {
    const n = this.nodes.get(node.metadata?.name ?? "");
    if (!n) return;
    n.uid = node.metadata?.uid ?? n.uid;
    const podCIDR = node.spec?.podCIDR;
    if (podCIDR && podCIDR !== formatCIDR(n.cidr)) {
      try {
        n.cidr = parseCIDR(podCIDR);
        n.ips = new IPAllocator(n.cidr);
        for (const p of this.pods.values()) if (p.node === n && p.ip) n.ips.reserve(p.ip);
      } catch {
        // not an IPv4 range: keep ours
      }
    }
    const tainted = node.spec?.taints?.some(
      (t) => t.key === TAINT_NOT_READY && t.effect === "NoSchedule",
    );
    if (tainted && this.o.removeNotReadyTaint && !n.untainting) {
      n.untainting = true;
      void this.limiter
        .run(() => this.untaint(node))
        .catch((err: unknown) => {
          if (!isCode(err, 409, 404))
            this.o.log.error(`Unable to update node "${n.spec.name}": ${errorMessage(err)}`);
        })
        .finally(() => (n.untainting = false));
    }
  }

  private async untaint(node: Node): Promise<void> {
    const rest = (node.spec?.taints ?? []).filter(
      (t) => !(t.key === TAINT_NOT_READY && t.effect === "NoSchedule"),
    );
    const updated = await this.nodesClient().patch(node.metadata?.name ?? "", "merge", {
      metadata: { resourceVersion: node.metadata?.resourceVersion },
      spec: { taints: rest.length ? rest : null },
    });
    const n = this.nodes.get(node.metadata?.name ?? "");
    if (n) n.uid = updated.metadata?.uid ?? n.uid;
  }

  private watchNodes(): void {
    this.informers.informer("v1/Node").addEventHandler({
      add: (node) => this.observeNode(node),
      update: (_, node) => this.observeNode(node),
    });
  }

  private async renewLease(n: NodeState): Promise<void> {
    const now = formatMicroTime(Date.now());
    const name = n.spec.name;
    if (n.lease) {
      try {
        n.lease = await this.leases().update({
          ...n.lease,
          spec: {
            ...n.lease.spec,
            holderIdentity: name,
            leaseDurationSeconds: this.o.leaseDurationSeconds,
            renewTime: now,
          },
        });
        return;
      } catch (err) {
        if (!isCode(err, 409, 404)) throw err;
        n.lease = undefined;
      }
    }
    try {
      n.lease = await this.leases().create({
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: {
          name,
          namespace: NODE_LEASE_NAMESPACE,
          ...(n.uid
            ? { ownerReferences: [{ apiVersion: "v1", kind: "Node", name, uid: n.uid }] }
            : {}),
        },
        spec: {
          holderIdentity: name,
          leaseDurationSeconds: this.o.leaseDurationSeconds,
          renewTime: now,
        },
      });
    } catch (err) {
      if (!isCode(err, 409)) throw err;
      n.lease = await this.leases().get(name);
      await this.renewLease(n);
    }
  }

  /** Renews the leases and reports the statuses that are due. */
  private heartbeat(signal: AbortSignal): void {
    if (signal.aborted) return;
    const now = Date.now();
    for (const n of this.nodes.values()) {
      if (!n.registered) continue;
      if (n.leaseDue <= now) {
        n.leaseDue = now + this.o.heartbeatInterval;
        void this.limiter
          .run(() => this.renewLease(n))
          .catch((err: unknown) => {
            this.o.log.error(
              `Failed to update lease of node "${n.spec.name}": ${errorMessage(err)}`,
            );
          });
      }
      if (n.statusDue <= now) {
        n.statusDue = now + this.o.statusReportFrequency;
        void this.limiter
          .run(() =>
            this.nodesClient().patch(
              n.spec.name,
              "strategic",
              { status: { conditions: this.nodeStatus(n).conditions } },
              { subresource: "status" },
            ),
          )
          .catch((err: unknown) => {
            this.o.log.error(
              `Error updating node status of "${n.spec.name}": ${errorMessage(err)}`,
            );
          });
      }
    }
  }

  // ---- pods ----

  private watchPods(): void {
    const informer = this.informers.informer("v1/Pod", { fieldSelector: "spec.nodeName!=" });
    informer.addEventHandler({
      add: (pod) => this.syncPod(pod),
      update: (_, pod) => this.syncPod(pod),
      delete: (pod) => this.forgetPod(pod),
    });
  }

  private podKey(pod: Pod): string {
    return pod.metadata?.uid ?? `${pod.metadata?.namespace}/${pod.metadata?.name}`;
  }

  private syncPod(pod: Pod): void {
    const node = this.nodes.get(pod.spec?.nodeName ?? "");
    if (!node) return;
    const key = this.podKey(pod);
    let st = this.pods.get(key);
    const phase = pod.status?.phase;
    if (!st) {
      st = { node, busy: undefined, running: false };
      this.pods.set(key, st);
      // Running before this simulator started: keep its address.
      const ip = pod.status?.podIP;
      if (phase === "Running" && ip && contains(node.cidr, ip)) {
        node.ips.reserve(ip);
        st.ip = ip;
        st.running = true;
      }
    }
    if (pod.metadata?.deletionTimestamp) {
      if (st.busy !== "deleting") {
        st.busy = "deleting";
        this.later(this.o.terminationDelay, () => this.finishDeletion(pod, st));
      }
      return;
    }
    if (phase === "Succeeded" || phase === "Failed") {
      this.release(st);
      return;
    }
    if (!st.running && st.busy === undefined) {
      st.busy = "starting";
      this.later(this.o.startupDelay, () => this.startPod(pod, st));
    }
  }

  private forgetPod(pod: Pod): void {
    const key = this.podKey(pod);
    const st = this.pods.get(key);
    if (!st) return;
    this.release(st);
    this.pods.delete(key);
  }

  private release(st: PodState): void {
    if (st.ip) st.node.ips.release(st.ip);
    st.ip = undefined;
  }

  /** Runs `fn` through the limiter after `ms`. */
  private later(ms: number, fn: () => Promise<void>): void {
    const go = () =>
      void this.limiter.run(fn).catch((err: unknown) => this.o.log.error(errorMessage(err)));
    if (ms <= 0) {
      go();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      go();
    }, ms);
    this.timers.add(t);
  }

  private async startPod(pod: Pod, st: PodState): Promise<void> {
    if (st.busy !== "starting") return;
    const node = st.node;
    st.ip ??= node.ips.allocate();
    if (!st.ip) {
      st.busy = undefined;
      this.o.log.error(`No pod IP left in ${formatCIDR(node.cidr)} on node "${node.spec.name}"`);
      return;
    }
    const t = formatTime();
    const cond = (type: string): PodCondition =>
      ({
        type,
        status: "True",
        lastProbeTime: null,
        lastTransitionTime: t,
      }) as unknown as PodCondition;
    const containerID = (name: string) =>
      `containerd://${hex(`${pod.metadata?.uid ?? ""}/${name}`)}`;
    const imageID = (image: string | undefined) => `${image ?? ""}@sha256:${hex(image ?? "")}`;
    const containerStatuses: ContainerStatus[] = (pod.spec?.containers ?? []).map((c) => ({
      name: c.name,
      image: c.image ?? "",
      imageID: imageID(c.image),
      containerID: containerID(c.name),
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt: t } },
    }));
    const initContainerStatuses: ContainerStatus[] = (pod.spec?.initContainers ?? []).map((c) => ({
      name: c.name,
      image: c.image ?? "",
      imageID: imageID(c.image),
      containerID: containerID(c.name),
      ready: true,
      started: false,
      restartCount: 0,
      state: {
        terminated: {
          exitCode: 0,
          reason: "Completed",
          startedAt: t,
          finishedAt: t,
          containerID: containerID(c.name),
        },
      },
    }));
    const conditions = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"].map(
      cond,
    );
    if (!pod.status?.conditions?.some((c) => c.type === "PodScheduled" && c.status === "True"))
      conditions.push(cond("PodScheduled"));
    const status = {
      phase: "Running",
      conditions,
      hostIP: node.spec.ip,
      hostIPs: [{ ip: node.spec.ip }],
      podIP: st.ip,
      podIPs: [{ ip: st.ip }],
      startTime: t,
      containerStatuses,
      ...(initContainerStatuses.length ? { initContainerStatuses } : {}),
    };
    try {
      await this.o.client
        .resource("v1/Pod", pod.metadata?.namespace ?? "default")
        .patch(
          pod.metadata?.name ?? "",
          "strategic",
          { metadata: { uid: pod.metadata?.uid }, status },
          { subresource: "status" },
        );
      st.running = true;
      this.started++;
    } catch (err) {
      if (!isCode(err, 404, 409, 422))
        this.o.log.error(
          `Failed to update status for pod "${pod.metadata?.name}": ${errorMessage(err)}`,
        );
    } finally {
      if (st.busy === "starting") st.busy = undefined;
    }
  }

  private async finishDeletion(pod: Pod, st: PodState): Promise<void> {
    try {
      await this.o.client
        .resource("v1/Pod", pod.metadata?.namespace ?? "default")
        .delete(pod.metadata?.name ?? "", {
          gracePeriodSeconds: 0,
          ...(pod.metadata?.uid ? { preconditions: { uid: pod.metadata.uid } } : {}),
        });
    } catch (err) {
      if (!isCode(err, 404, 409))
        this.o.log.error(`Failed to delete pod "${pod.metadata?.name}": ${errorMessage(err)}`);
    }
    this.release(st);
  }
}
