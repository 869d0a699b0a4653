/**
 * One scheduling profile's framework (upstream's frameworkImpl): the plugins of each extension
 * point, built from a profile's plugin sets with MultiPoint expansion, and the functions that run
 * them for a cycle. Filtering stops at the first plugin that rejects a node; every score plugin's
 * normalised score (0..100) is multiplied by its weight.
 */
import {
  isBind,
  isEnqueueExtensions,
  isFilter,
  isPermit,
  isPostFilter,
  isPreEnqueue,
  isPreFilter,
  isPreScore,
  isQueueSort,
  isReserve,
  isScore,
  type BindPlugin,
  type ClusterEventWithHint,
  type FilterPlugin,
  type Handle,
  type PermitPlugin,
  type Plugin,
  type PodNominator,
  type PostFilterPlugin,
  type PostFilterResult,
  type PreEnqueuePlugin,
  type PreFilterPlugin,
  type PreFilterResult,
  type PreScorePlugin,
  type QueueSortPlugin,
  type QueuedPodInfo,
  type ReservePlugin,
  type ScorePlugin,
  type SharedLister,
} from "./interface.js";
import type { Pod } from "kubernetes-types/core/v1.js";
import {
  Code,
  CycleState,
  MAX_NODE_SCORE,
  MAX_TOTAL_SCORE,
  MIN_NODE_SCORE,
  NodeInfo,
  NodeToStatus,
  PodInfo,
  podPriority,
  Status,
} from "./types.js";

/** A plugin named in a profile, with its score weight when one was given. */
export interface PluginRef {
  name: string;
  weight?: number;
}

export interface PluginSet {
  enabled?: PluginRef[];
  disabled?: PluginRef[];
}

export const EXTENSION_POINTS = [
  "preEnqueue",
  "queueSort",
  "preFilter",
  "filter",
  "postFilter",
  "preScore",
  "score",
  "reserve",
  "permit",
  "preBind",
  "bind",
  "postBind",
] as const;
export type ExtensionPoint = (typeof EXTENSION_POINTS)[number];

export type Plugins = { [K in ExtensionPoint | "multiPoint"]?: PluginSet };

/** A profile after defaulting: the plugin sets (defaults merged) and each plugin's decoded args. */
export interface Profile {
  schedulerName: string;
  percentageOfNodesToScore?: number;
  plugins: Plugins;
  /** Plugin name -> its args (defaulted), for plugins that take args. */
  pluginArgs: Map<string, unknown>;
}

export type PluginFactory = (args: unknown, handle: Handle) => Plugin;
export type Registry = Map<string, PluginFactory>;

export interface FrameworkOptions {
  /** The scheduler-wide percentageOfNodesToScore (0 = adaptive), used when the profile has none. */
  percentageOfNodesToScore?: number;
  nominator?: PodNominator;
  /** Random integer in [0, n); Math.random by default. */
  randomInt?: (n: number) => number;
}

const IMPLEMENTS: Record<ExtensionPoint, (p: Plugin) => boolean> = {
  preEnqueue: isPreEnqueue,
  queueSort: isQueueSort,
  preFilter: isPreFilter,
  filter: isFilter,
  postFilter: isPostFilter,
  preScore: isPreScore,
  score: isScore,
  reserve: isReserve,
  permit: isPermit,
  preBind: () => false,
  bind: isBind,
  postBind: () => false,
};

const INTERFACE_NAMES: Record<ExtensionPoint, string> = {
  preEnqueue: "PreEnqueuePlugin",
  queueSort: "QueueSortPlugin",
  preFilter: "PreFilterPlugin",
  filter: "FilterPlugin",
  postFilter: "PostFilterPlugin",
  preScore: "PreScorePlugin",
  score: "ScorePlugin",
  reserve: "ReservePlugin",
  permit: "PermitPlugin",
  preBind: "PreBindPlugin",
  bind: "BindPlugin",
  postBind: "PostBindPlugin",
};

export class FrameworkError extends Error {}

export class Framework implements Handle {
  readonly schedulerName: string;
  readonly percentageOfNodesToScore: number | undefined;
  readonly pluginsMap = new Map<string, Plugin>();
  preEnqueuePlugins: PreEnqueuePlugin[] = [];
  queueSortPlugins: QueueSortPlugin[] = [];
  preFilterPlugins: PreFilterPlugin[] = [];
  filterPlugins: FilterPlugin[] = [];
  postFilterPlugins: PostFilterPlugin[] = [];
  preScorePlugins: PreScorePlugin[] = [];
  scorePlugins: ScorePlugin[] = [];
  reservePlugins: ReservePlugin[] = [];
  permitPlugins: PermitPlugin[] = [];
  bindPlugins: BindPlugin[] = [];
  readonly scoreWeights = new Map<string, number>();
  private currentSnapshot: SharedLister | undefined;
  private readonly nominatorRef: PodNominator | undefined;
  private readonly random: (n: number) => number;
  private scoreBuf: number[] = [];

  constructor(profile: Profile, registry: Registry, opts: FrameworkOptions = {}) {
    this.schedulerName = profile.schedulerName;
    this.percentageOfNodesToScore =
      profile.percentageOfNodesToScore ?? opts.percentageOfNodesToScore;
    this.nominatorRef = opts.nominator;
    this.random = opts.randomInt ?? ((n) => Math.floor(Math.random() * n));

    const needed = new Set<string>();
    for (const k of [...EXTENSION_POINTS, "multiPoint"] as const) {
      for (const p of profile.plugins[k]?.enabled ?? []) needed.add(p.name);
    }
    for (const name of needed) {
      const factory = registry.get(name);
      if (!factory) throw new FrameworkError(`${JSON.stringify(name)} does not exist`);
      this.pluginsMap.set(name, factory(profile.pluginArgs.get(name), this));
    }

    const lists = new Map<ExtensionPoint, Plugin[]>();
    for (const ep of EXTENSION_POINTS) {
      const set = profile.plugins[ep] ?? {};
      const out: Plugin[] = [];
      const seen = new Set<string>();
      for (const ref of set.enabled ?? []) {
        const pl = this.pluginsMap.get(ref.name)!;
        if (!IMPLEMENTS[ep](pl)) {
          throw new FrameworkError(
            `plugin ${JSON.stringify(ref.name)} does not extend ${ep} plugin`,
          );
        }
        if (seen.has(ref.name)) {
          throw new FrameworkError(
            `plugin ${JSON.stringify(ref.name)} already registered as ${JSON.stringify(INTERFACE_NAMES[ep])}`,
          );
        }
        seen.add(ref.name);
        out.push(pl);
      }
      lists.set(ep, out);
    }
    this.expandMultiPoint(profile, lists);

    this.preEnqueuePlugins = lists.get("preEnqueue") as PreEnqueuePlugin[];
    this.queueSortPlugins = lists.get("queueSort") as QueueSortPlugin[];
    this.preFilterPlugins = lists.get("preFilter") as PreFilterPlugin[];
    this.filterPlugins = lists.get("filter") as FilterPlugin[];
    this.postFilterPlugins = lists.get("postFilter") as PostFilterPlugin[];
    this.preScorePlugins = lists.get("preScore") as PreScorePlugin[];
    this.scorePlugins = lists.get("score") as ScorePlugin[];
    this.reservePlugins = lists.get("reserve") as ReservePlugin[];
    this.permitPlugins = lists.get("permit") as PermitPlugin[];
    this.bindPlugins = lists.get("bind") as BindPlugin[];

    // Weights: a score-point entry wins over the MultiPoint one; 0 (unset) counts as 1.
    let total = 0;
    const refs = [
      ...(profile.plugins.score?.enabled ?? []),
      ...(profile.plugins.multiPoint?.enabled ?? []),
    ];
    for (const ref of refs) {
      const pl = this.pluginsMap.get(ref.name);
      if (!pl || !isScore(pl) || this.scoreWeights.has(ref.name)) continue;
      const w = ref.weight ? ref.weight : 1;
      this.scoreWeights.set(ref.name, w);
      if (w * MAX_NODE_SCORE > MAX_TOTAL_SCORE - total) {
        throw new FrameworkError("total score of Score plugins could overflow");
      }
      total += w * MAX_NODE_SCORE;
    }
    if (this.queueSortPlugins.length === 0)
      throw new FrameworkError("no queue sort plugin is enabled");
    if (this.queueSortPlugins.length > 1)
      throw new FrameworkError("only one queue sort plugin can be enabled");
    if (this.bindPlugins.length === 0)
      throw new FrameworkError("at least one bind plugin is needed");
  }

  private expandMultiPoint(profile: Profile, lists: Map<ExtensionPoint, Plugin[]>): void {
    const multi = profile.plugins.multiPoint?.enabled ?? [];
    if (multi.length === 0) return;
    for (const ep of EXTENSION_POINTS) {
      const set = profile.plugins[ep] ?? {};
      const enabled = (set.enabled ?? []).map((p) => p.name);
      const disabled = new Set((set.disabled ?? []).map((p) => p.name));
      if (disabled.has("*")) continue;
      const multiEnabled: string[] = [];
      const overrides = new Set<string>();
      for (const ref of multi) {
        const pl = this.pluginsMap.get(ref.name);
        if (!pl)
          throw new FrameworkError(
            `${INTERFACE_NAMES[ep]} ${JSON.stringify(ref.name)} does not exist`,
          );
        if (!IMPLEMENTS[ep](pl) || disabled.has(ref.name)) continue;
        if (enabled.includes(ref.name)) {
          overrides.add(ref.name);
          continue;
        }
        if (multiEnabled.includes(ref.name)) {
          throw new FrameworkError(
            `plugin ${JSON.stringify(ref.name)} already registered as ${JSON.stringify(INTERFACE_NAMES[ep])}`,
          );
        }
        multiEnabled.push(ref.name);
      }
      const order = [
        ...enabled.filter((n) => overrides.has(n)),
        ...multiEnabled,
        ...enabled.filter((n) => !overrides.has(n)),
      ];
      lists.set(
        ep,
        order.map((n) => this.pluginsMap.get(n)!),
      );
    }
  }

  // ---- Handle ----

  snapshot(): SharedLister {
    if (!this.currentSnapshot) throw new Error("no snapshot is set");
    return this.currentSnapshot;
  }

  setSnapshot(s: SharedLister): void {
    this.currentSnapshot = s;
  }

  nominator(): PodNominator | undefined {
    return this.nominatorRef;
  }

  randomInt(n: number): number {
    return this.random(n);
  }

  hasFilterPlugins(): boolean {
    return this.filterPlugins.length > 0;
  }
  hasScorePlugins(): boolean {
    return this.scorePlugins.length > 0;
  }
  hasPostFilterPlugins(): boolean {
    return this.postFilterPlugins.length > 0;
  }

  /** The plugins' cluster events, by plugin name (for the scheduling queue). */
  eventsToRegister(): Map<string, ClusterEventWithHint[]> {
    const out = new Map<string, ClusterEventWithHint[]>();
    for (const [name, pl] of this.pluginsMap) {
      if (isEnqueueExtensions(pl)) out.set(name, pl.eventsToRegister());
    }
    return out;
  }

  queueSortLess(a: QueuedPodInfo, b: QueuedPodInfo): boolean {
    return this.queueSortPlugins[0]!.less(a, b);
  }

  runPreEnqueuePlugins(pod: Pod): Status | null {
    for (const pl of this.preEnqueuePlugins) {
      const s = pl.preEnqueue(pod);
      if (s && !s.isSuccess()) {
        s.withPlugin(pl.name);
        if (!s.isRejected())
          return Status.error(
            `running PreEnqueue plugin ${JSON.stringify(pl.name)}: ${s.message()}`,
          ).withPlugin(pl.name);
        return s;
      }
    }
    return null;
  }

  // ---- filtering ----

  /**
   * Runs the PreFilter plugins. UnschedulableAndUnresolvable stops at once; Unschedulable is
   * returned after the others ran (so that preemption sees their state); Skip marks the plugin's
   * Filter as skipped for the cycle; PreFilterResults are intersected. `unschedulablePlugins` names
   * the plugins that restricted the nodes.
   */
  runPreFilterPlugins(
    state: CycleState,
    pod: PodInfo,
    nodes: readonly NodeInfo[],
  ): { result: PreFilterResult | null; status: Status | null; unschedulablePlugins: Set<string> } {
    let result: PreFilterResult | null = null;
    const withNodes = new Set<string>();
    let returnStatus: Status | null = null;
    for (const pl of this.preFilterPlugins) {
      const out = pl.preFilter(state, pod, nodes);
      const s = out?.status ?? null;
      if (s && s.isSkip()) {
        state.skipFilterPlugins.add(pl.name);
        continue;
      }
      if (s && !s.isSuccess()) {
        s.withPlugin(pl.name);
        if (s.code === Code.UnschedulableAndUnresolvable) {
          return { result: null, status: s, unschedulablePlugins: new Set() };
        }
        if (s.code === Code.Unschedulable) {
          returnStatus = s;
          continue;
        }
        return {
          result: null,
          status: Status.error(
            `running PreFilter plugin ${JSON.stringify(pl.name)}: ${s.message()}`,
          ).withPlugin(pl.name),
          unschedulablePlugins: new Set(),
        };
      }
      const r = out?.result;
      if (r && r.nodeNames !== null) {
        withNodes.add(pl.name);
        result =
          result === null || result.nodeNames === null
            ? { nodeNames: new Set(r.nodeNames) }
            : intersect(result, r);
        if (result.nodeNames!.size === 0) {
          const names = [...withNodes].sort();
          const msg =
            names.length === 1
              ? `node(s) didn't satisfy plugin ${names[0]}`
              : `node(s) didn't satisfy plugin(s) [${names.join(" ")}] simultaneously`;
          return {
            result,
            status: new Status(Code.UnschedulableAndUnresolvable, [msg]),
            unschedulablePlugins: withNodes,
          };
        }
      }
    }
    return { result, status: returnStatus, unschedulablePlugins: withNodes };
  }

  /** The filter plugins not skipped in this cycle. */
  activeFilters(state: CycleState): FilterPlugin[] {
    if (state.skipFilterPlugins.size === 0) return this.filterPlugins;
    return this.filterPlugins.filter((p) => !state.skipFilterPlugins.has(p.name));
  }

  /** Runs the filters on one node; the first rejection (with its plugin) or null. */
  runFilterPlugins(
    state: CycleState,
    pod: PodInfo,
    node: NodeInfo,
    filters = this.activeFilters(state),
  ): Status | null {
    for (let i = 0; i < filters.length; i++) {
      const pl = filters[i]!;
      const s = pl.filter(state, pod, node);
      if (s !== null && s.code !== Code.Success) {
        if (!s.isRejected()) {
          return Status.error(
            `running ${JSON.stringify(pl.name)} filter plugin: ${s.message()}`,
          ).withPlugin(pl.name);
        }
        return s.withPlugin(pl.name);
      }
    }
    return null;
  }

  /**
   * Filters a node twice when higher- or equal-priority pods are nominated to it: once as if they
   * ran there, and (when that passes) once without them.
   */
  runFilterPluginsWithNominatedPods(
    state: CycleState,
    pod: PodInfo,
    node: NodeInfo,
    filters?: FilterPlugin[],
  ): Status | null {
    const nominated = this.nominatorRef?.nominatedPodsForNode(node.name);
    if (!nominated || nominated.length === 0)
      return this.runFilterPlugins(state, pod, node, filters);
    const prio = podPriority(pod.pod);
    let added = false;
    let stateToUse = state;
    let nodeToUse = node;
    for (const np of nominated) {
      if (podPriority(np.pod) >= prio && np.key !== pod.key) {
        if (!added) {
          stateToUse = state.clone();
          nodeToUse = node.snapshot();
          added = true;
        }
        nodeToUse.addPodInfo(np);
        const s = this.runPreFilterExtensionAddPod(stateToUse, pod, np, nodeToUse);
        if (s && !s.isSuccess()) return s;
      }
    }
    if (!added) return this.runFilterPlugins(state, pod, node, filters);
    const first = this.runFilterPlugins(
      stateToUse,
      pod,
      nodeToUse,
      filters ?? this.activeFilters(stateToUse),
    );
    if (first !== null) return first;
    return this.runFilterPlugins(state, pod, node, filters);
  }

  runPreFilterExtensionAddPod(
    state: CycleState,
    pod: PodInfo,
    toAdd: PodInfo,
    node: NodeInfo,
  ): Status | null {
    for (const pl of this.preFilterPlugins) {
      if (!pl.addPod || state.skipFilterPlugins.has(pl.name)) continue;
      const s = pl.addPod(state, pod, toAdd, node);
      if (s && !s.isSuccess())
        return Status.error(
          `running AddPod on PreFilter plugin ${JSON.stringify(pl.name)}: ${s.message()}`,
        );
    }
    return null;
  }

  runPreFilterExtensionRemovePod(
    state: CycleState,
    pod: PodInfo,
    toRemove: PodInfo,
    node: NodeInfo,
  ): Status | null {
    for (const pl of this.preFilterPlugins) {
      if (!pl.removePod || state.skipFilterPlugins.has(pl.name)) continue;
      const s = pl.removePod(state, pod, toRemove, node);
      if (s && !s.isSuccess()) {
        return Status.error(
          `running RemovePod on PreFilter plugin ${JSON.stringify(pl.name)}: ${s.message()}`,
        );
      }
    }
    return null;
  }

  /**
   * Runs PostFilter plugins until one succeeds or one says UnschedulableAndUnresolvable; otherwise
   * the reasons of all are combined.
   */
  runPostFilterPlugins(
    state: CycleState,
    pod: PodInfo,
    statuses: NodeToStatus,
  ): { result: PostFilterResult | null; status: Status } {
    let result: PostFilterResult | null = null;
    const reasons: string[] = [];
    let rejector = "";
    for (const pl of this.postFilterPlugins) {
      const { result: r, status: s } = pl.postFilter(state, pod, statuses);
      if (s.isSuccess()) return { result: r, status: s };
      if (s.code === Code.UnschedulableAndUnresolvable)
        return { result: r, status: s.withPlugin(pl.name) };
      if (!s.isRejected())
        return { result: null, status: Status.error(s.message()).withPlugin(pl.name) };
      if (r) result = r;
      reasons.push(...s.reasons);
      if (rejector === "") rejector = pl.name;
    }
    return { result, status: new Status(Code.Unschedulable, reasons).withPlugin(rejector) };
  }

  // ---- scoring ----

  runPreScorePlugins(state: CycleState, pod: PodInfo, nodes: readonly NodeInfo[]): Status | null {
    for (const pl of this.preScorePlugins) {
      const s = pl.preScore(state, pod, nodes);
      if (s === null || s.isSuccess()) continue;
      if (s.isSkip()) {
        state.skipScorePlugins.add(pl.name);
        continue;
      }
      return Status.error(
        `running PreScore plugin ${JSON.stringify(pl.name)}: ${s.message()}`,
      ).withPlugin(pl.name);
    }
    return null;
  }

  /**
   * Scores every node with every score plugin not skipped, normalises, weighs, and writes the
   * total per node into `totals` (index-aligned with `nodes`). Per-plugin scores go to
   * `perPlugin` when given (for tests and explanations).
   */
  runScorePlugins(
    state: CycleState,
    pod: PodInfo,
    nodes: readonly NodeInfo[],
    totals: number[],
    perPlugin?: Map<string, number[]>,
  ): Status | null {
    const n = nodes.length;
    for (let i = 0; i < n; i++) totals[i] = 0;
    if (this.scoreBuf.length !== n) this.scoreBuf = new Array<number>(n).fill(0);
    const scores = this.scoreBuf;
    for (const pl of this.scorePlugins) {
      if (state.skipScorePlugins.has(pl.name)) continue;
      try {
        for (let i = 0; i < n; i++) scores[i] = pl.score(state, pod, nodes[i]!);
      } catch (err) {
        return Status.error(
          `running Score plugin ${JSON.stringify(pl.name)}: ${(err as Error).message}`,
        ).withPlugin(pl.name);
      }
      if (pl.normalizeScore) {
        const s = pl.normalizeScore(state, pod, nodes, scores);
        if (s && !s.isSuccess()) {
          return Status.error(
            `running Normalize on Score plugin ${JSON.stringify(pl.name)}: ${s.message()}`,
          ).withPlugin(pl.name);
        }
      }
      const w = this.scoreWeights.get(pl.name) ?? 1;
      for (let i = 0; i < n; i++) {
        const v = scores[i]!;
        if (v > MAX_NODE_SCORE || v < MIN_NODE_SCORE) {
          return Status.error(
            `plugin ${JSON.stringify(pl.name)} returns an invalid score ${v}, it should in the range of [${MIN_NODE_SCORE}, ${MAX_NODE_SCORE}] after normalizing`,
          );
        }
        totals[i]! += v * w;
      }
      if (perPlugin)
        perPlugin.set(
          pl.name,
          scores.map((v) => v * w),
        );
    }
    return null;
  }

  // ---- reserve and permit ----

  runReservePlugins(state: CycleState, pod: PodInfo, nodeName: string): Status | null {
    for (const pl of this.reservePlugins) {
      const s = pl.reserve(state, pod, nodeName);
      if (s && !s.isSuccess()) return s.withPlugin(pl.name);
    }
    return null;
  }

  runUnreservePlugins(state: CycleState, pod: PodInfo, nodeName: string): void {
    for (let i = this.reservePlugins.length - 1; i >= 0; i--)
      this.reservePlugins[i]!.unreserve(state, pod, nodeName);
  }

  runPermitPlugins(state: CycleState, pod: PodInfo, nodeName: string): Status | null {
    for (const pl of this.permitPlugins) {
      const s = pl.permit(state, pod, nodeName);
      if (s && !s.isSuccess()) return s.withPlugin(pl.name);
    }
    return null;
  }
}

function intersect(a: PreFilterResult, b: PreFilterResult): PreFilterResult {
  const out = new Set<string>();
  for (const n of a.nodeNames!) if (b.nodeNames!.has(n)) out.add(n);
  return { nodeNames: out };
}
