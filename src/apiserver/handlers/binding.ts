import {
  badRequest,
  conflict,
  invalid,
  notSupported,
  required,
  type FieldError,
} from "../../api/status.js";
import { send, type Request, type Response } from "../http.js";
import { checkPreconditions, type Registry } from "../registry/store.js";
import { formatTime } from "../../api/time.js";
import type { KObject } from "../registry/types.js";
import { readRequestObject, type BodyDecoder } from "./resource.js";

interface Binding extends KObject {
  target?: { kind?: string; name?: string; apiVersion?: string };
}

interface PodCondition {
  type: string;
  status: string;
  lastProbeTime?: string | null;
  lastTransitionTime?: string;
}

/**
 * Binds a pod to a node (POST .../bindings or .../pods/NAME/binding), as the scheduler does:
 * sets spec.nodeName once, copies the binding's annotations, and marks the pod PodScheduled.
 * Answers `Status Success` (201), as upstream.
 */
export async function handleBinding(
  req: Request,
  res: Response,
  namespace: string,
  podName: string | undefined,
  pods: Registry,
  decode: BodyDecoder,
): Promise<void> {
  const binding = (await readRequestObject(req, decode, {
    apiVersion: "v1",
    kind: "Binding",
  })) as Binding;
  const name = binding.metadata?.name ?? "";
  if (podName && name && name !== podName) {
    throw badRequest(
      `the name of the object (${name}) does not match the name on the URL (${podName})`,
    );
  }
  const target = binding.target ?? {};
  const errors: FieldError[] = [];
  if (!target.name) errors.push(required("target.name", ""));
  if (target.kind && target.kind !== "Node")
    errors.push(notSupported("target.kind", target.kind, ["Node", ""]));
  if (errors.length > 0)
    throw invalid({ group: "", kind: "Binding" }, name || podName || "", errors);
  const pod = podName ?? name;
  const bindingResource = { group: "", resource: "pods/binding" };
  await pods.guaranteedUpdate(namespace, pod, (obj) => {
    const meta = obj.metadata!;
    const spec = (obj.spec ??= {}) as { nodeName?: string };
    checkPreconditions(bindingResource, pod, { uid: binding.metadata?.uid }, meta);
    if (meta.deletionTimestamp) {
      throw conflict(
        bindingResource,
        pod,
        `pod ${pod} is being deleted, cannot be assigned to a host`,
      );
    }
    if (spec.nodeName) {
      throw conflict(
        bindingResource,
        pod,
        `pod ${pod} is already assigned to node "${spec.nodeName}"`,
      );
    }
    spec.nodeName = target.name;
    if (binding.metadata?.annotations)
      meta.annotations = { ...meta.annotations, ...binding.metadata.annotations };
    const status = (obj.status ??= {}) as { conditions?: PodCondition[] };
    const conditions = (status.conditions ??= []);
    const scheduled = conditions.find((c) => c.type === "PodScheduled");
    const now = formatTime();
    if (scheduled) {
      if (scheduled.status !== "True") scheduled.lastTransitionTime = now;
      scheduled.status = "True";
    } else {
      conditions.push({
        type: "PodScheduled",
        status: "True",
        lastProbeTime: null,
        lastTransitionTime: now,
      });
    }
  });
  send(req, res, 201, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Success",
    code: 201,
  });
}
