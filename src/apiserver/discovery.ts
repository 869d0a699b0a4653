import type { ResourceDef } from "./registry/types.js";

const AGGREGATED_TYPE = (version: string) =>
  `application/json;g=apidiscovery.k8s.io;v=${version};as=APIGroupDiscoveryList`;

interface GroupVersions {
  name: string;
  /** Versions in the order discovery lists them: the preferred one first. */
  versions: string[];
  preferred: string;
}

/**
 * Discovery documents, built once from the resources the server has: aggregated discovery
 * (`apidiscovery.k8s.io/v2` at /api and /apis, when the client's Accept asks for it) and the
 * legacy documents (APIVersions, APIGroupList, APIGroup, APIResourceList). Groups and resources
 * appear in the order the resource list gives them, which is upstream's order.
 */
export class Discovery {
  private readonly groups: GroupVersions[] = [];
  private readonly byGroupVersion = new Map<string, ResourceDef[]>();

  constructor(
    private readonly resources: ResourceDef[],
    private readonly serverAddress: () => string,
  ) {
    for (const def of resources) {
      const gv = `${def.group}/${def.version}`;
      if (!this.byGroupVersion.has(gv)) this.byGroupVersion.set(gv, []);
      this.byGroupVersion.get(gv)!.push(def);
      let group = this.groups.find((g) => g.name === def.group);
      if (!group) {
        group = { name: def.group, versions: [], preferred: def.version };
        this.groups.push(group);
      }
      if (!group.versions.includes(def.version)) group.versions.push(def.version);
      if (def.preferred) group.preferred = def.version;
    }
    for (const g of this.groups) {
      g.versions.sort((a, b) => (a === g.preferred ? -1 : b === g.preferred ? 1 : 0));
    }
  }

  /** The document for a discovery path, or undefined when there is none. */
  serve(path: string, accept: string): { body: unknown; contentType: string } | undefined {
    const parts = path.split("/").filter((p) => p !== "");
    const aggregated = /as=APIGroupDiscoveryList/.test(accept)
      ? accept
          .split(",")
          .map(
            (p) => /g=apidiscovery\.k8s\.io;v=(v2beta1|v2);as=APIGroupDiscoveryList/.exec(p)?.[1],
          )
          .find((v) => v !== undefined)
      : undefined;
    const json = "application/json";
    if (parts.length === 1 && parts[0] === "api") {
      if (aggregated)
        return {
          body: this.aggregated(true, aggregated),
          contentType: AGGREGATED_TYPE(aggregated),
        };
      return {
        body: {
          kind: "APIVersions",
          versions: ["v1"],
          serverAddressByClientCIDRs: [
            { clientCIDR: "0.0.0.0/0", serverAddress: this.serverAddress() },
          ],
        },
        contentType: json,
      };
    }
    if (parts.length === 1 && parts[0] === "apis") {
      if (aggregated)
        return {
          body: this.aggregated(false, aggregated),
          contentType: AGGREGATED_TYPE(aggregated),
        };
      return {
        body: {
          kind: "APIGroupList",
          apiVersion: "v1",
          groups: this.groups.filter((g) => g.name).map((g) => this.apiGroup(g)),
        },
        contentType: json,
      };
    }
    if (parts.length === 2 && parts[0] === "api" && parts[1] === "v1") {
      return { body: this.resourceList("", "v1"), contentType: json };
    }
    if (parts[0] === "apis" && parts.length === 2) {
      const g = this.groups.find((x) => x.name === parts[1] && x.name !== "");
      return g
        ? { body: { kind: "APIGroup", apiVersion: "v1", ...this.apiGroup(g) }, contentType: json }
        : undefined;
    }
    if (
      parts[0] === "apis" &&
      parts.length === 3 &&
      this.byGroupVersion.has(`${parts[1]}/${parts[2]}`)
    ) {
      return { body: this.resourceList(parts[1]!, parts[2]!), contentType: json };
    }
    return undefined;
  }

  private apiGroup(g: GroupVersions) {
    const gv = (v: string) => ({ groupVersion: `${g.name}/${v}`, version: v });
    return { name: g.name, versions: g.versions.map(gv), preferredVersion: gv(g.preferred) };
  }

  private resourceList(group: string, version: string) {
    const resources: unknown[] = [];
    for (const def of this.byGroupVersion.get(`${group}/${version}`) ?? []) {
      const d = def.discovery;
      const r: Record<string, unknown> = {
        name: def.resource,
        singularName: d.singularName,
        namespaced: def.namespaced,
        kind: def.kind,
        verbs: d.verbs,
      };
      if (d.shortNames?.length) r.shortNames = d.shortNames;
      if (d.categories?.length) r.categories = d.categories;
      if (d.storageVersionHash) r.storageVersionHash = d.storageVersionHash;
      resources.push(r);
      for (const sub of d.subresources ?? []) {
        const s: Record<string, unknown> = {
          name: `${def.resource}/${sub.name}`,
          singularName: "",
          namespaced: def.namespaced,
        };
        if (sub.version) {
          s.group = sub.group;
          s.version = sub.version;
        }
        s.kind = sub.kind;
        s.verbs = sub.verbs;
        resources.push(s);
      }
    }
    return {
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: group ? `${group}/${version}` : version,
      resources,
    };
  }

  private aggregated(core: boolean, version: string) {
    const items = this.groups
      .filter((g) => (g.name === "") === core)
      .map((g) => ({
        metadata: g.name ? { name: g.name, creationTimestamp: null } : { creationTimestamp: null },
        versions: g.versions.map((v) => ({
          version: v,
          resources: (this.byGroupVersion.get(`${g.name}/${v}`) ?? []).map((def) => {
            const d = def.discovery;
            const r: Record<string, unknown> = {
              resource: def.resource,
              responseKind: { group: def.group, version: def.version, kind: def.kind },
              scope: def.namespaced ? "Namespaced" : "Cluster",
              singularResource: d.singularName,
              verbs: d.verbs,
            };
            if (d.shortNames?.length) r.shortNames = d.shortNames;
            if (d.categories?.length) r.categories = d.categories;
            if (d.subresources?.length) {
              r.subresources = d.subresources.map((s) => ({
                subresource: s.name,
                responseKind: { group: s.group, version: s.version, kind: s.kind },
                verbs: s.verbs,
              }));
            }
            return r;
          }),
          freshness: "Current",
        })),
      }));
    return {
      kind: "APIGroupDiscoveryList",
      apiVersion: `apidiscovery.k8s.io/${version}`,
      metadata: {},
      items,
    };
  }
}
