/**
 * `--authorization-mode=Node`: upstream's node authorizer (plugin/pkg/auth/authorizer/node). A
 * kubelet, authenticated as `system:node:<name>` in the group `system:nodes`, may read the
 * secrets, config maps, claims and volumes of the pods bound to its node, get tokens for their
 * service accounts, read and update its own Node (with 1.32's AuthorizeNodeWithSelectors: only
 * its own), list pods bound to it, and use its Lease and CSINode; anything else is judged by the
 * static rules of the system:node role. Every other user gets no opinion.
 */
import type { PolicyRule } from "kubernetes-types/rbac/v1.js";
import {
  ALLOW,
  NODES_GROUP,
  NO_OPINION,
  noOpinion,
  type Attributes,
  type Authorizer,
  type Decision,
  type RuleResolver,
  type RulesResult,
  type UserInfo,
} from "../types.js";
import { goQuote } from "../util.js";
import type { NodeGraphSource, VertexType } from "./node-graph.js";
import { rulesAllow } from "./rules.js";

const NODE_USER_PREFIX = "system:node:";
export const NODE_LEASE_NAMESPACE = "kube-node-lease";

/**
 * The node a user is, as upstream's default NodeIdentifier: `isNode` when the name starts with
 * `system:node:` and the user is in `system:nodes`; `name` may then still be empty.
 */
export function nodeIdentity(user: UserInfo): { isNode: boolean; name: string } {
  if (!user.username.startsWith(NODE_USER_PREFIX) || !user.groups.includes(NODES_GROUP)) {
    return { isNode: false, name: "" };
  }
  return { isNode: true, name: user.username.slice(NODE_USER_PREFIX.length) };
}

export interface NodeAuthorizerOptions {
  /** Upstream's AuthorizeNodeWithSelectors feature (on by default in 1.32). */
  authorizeNodeWithSelectors?: boolean;
}

export class NodeAuthorizer implements Authorizer, RuleResolver {
  private readonly selectors: boolean;

  /** `nodeRules`: the rules of the system:node ClusterRole (bootstrap-policy's nodeRules()). */
  constructor(
    private readonly graph: NodeGraphSource,
    private readonly nodeRules: readonly PolicyRule[],
    options: NodeAuthorizerOptions = {},
  ) {
    this.selectors = options.authorizeNodeWithSelectors ?? true;
  }

  rulesFor(user: UserInfo): RulesResult {
    if (nodeIdentity(user).isNode) {
      return {
        resourceRules: [],
        nonResourceRules: [],
        incomplete: true,
        error: "node authorizer does not support user rule resolution",
      };
    }
    return { resourceRules: [], nonResourceRules: [], incomplete: false };
  }

  authorize(attrs: Attributes): Decision {
    const id = nodeIdentity(attrs.user);
    if (!id.isNode) return NO_OPINION;
    const node = id.name;
    if (!node) return noOpinion(`unknown node for user ${goQuote(attrs.user.username)}`);
    if (attrs.resourceRequest) {
      switch (`${attrs.apiGroup}/${attrs.resource}`) {
        case "/secrets":
          return this.readNamespaced(node, "secret", attrs);
        case "/configmaps":
          return this.readNamespaced(node, "configmap", attrs);
        case "/persistentvolumeclaims":
          return attrs.subresource === "status"
            ? this.statusUpdate(node, "pvc", attrs)
            : this.get(node, "pvc", attrs);
        case "/persistentvolumes":
          return this.get(node, "pv", attrs);
        case "resource.k8s.io/resourceclaims":
          return this.get(node, "resourceclaim", attrs);
        case "storage.k8s.io/volumeattachments":
          return this.get(node, "volumeattachment", attrs);
        case "/serviceaccounts":
          return this.createToken(node, attrs);
        case "coordination.k8s.io/leases":
          return this.lease(node, attrs);
        case "storage.k8s.io/csinodes":
          return this.csiNode(node, attrs);
        case "resource.k8s.io/resourceslices":
          return this.resourceSlice(node, attrs);
        case "/nodes":
          if (this.selectors) return this.nodeObject(node, attrs);
          break;
        case "/pods":
          if (this.selectors) return this.pod(node, attrs);
          break;
      }
    }
    return rulesAllow(attrs, this.nodeRules) ? ALLOW : NO_OPINION;
  }

  private related(node: string, type: VertexType, attrs: Attributes): Decision {
    if (!attrs.name) return noOpinion("No Object name found");
    if (!this.graph.hasPathFrom(node, type, attrs.namespace, attrs.name)) {
      return noOpinion(`no relationship found between node '${node}' and this object`);
    }
    return ALLOW;
  }

  private statusUpdate(node: string, type: VertexType, attrs: Attributes): Decision {
    if (attrs.verb !== "update" && attrs.verb !== "patch") {
      return noOpinion("can only get/update/patch this type");
    }
    if (attrs.subresource !== "status") return noOpinion("can only update status subresource");
    return this.related(node, type, attrs);
  }

  private get(node: string, type: VertexType, attrs: Attributes): Decision {
    if (attrs.verb !== "get") return noOpinion("can only get individual resources of this type");
    if (attrs.subresource) return noOpinion("cannot get subresource");
    return this.related(node, type, attrs);
  }

  private readNamespaced(node: string, type: VertexType, attrs: Attributes): Decision {
    if (attrs.verb !== "get" && attrs.verb !== "list" && attrs.verb !== "watch") {
      return noOpinion("can only read resources of this type");
    }
    if (attrs.subresource) return noOpinion("cannot read subresource");
    if (!attrs.namespace) return noOpinion("can only read namespaced object of this type");
    return this.related(node, type, attrs);
  }

  private createToken(node: string, attrs: Attributes): Decision {
    if (attrs.verb !== "create" || !attrs.name) {
      return noOpinion("can only create tokens for individual service accounts");
    }
    if (attrs.subresource !== "token") {
      return noOpinion("can only create token subresource of serviceaccount");
    }
    if (!this.graph.hasPathFrom(node, "serviceaccount", attrs.namespace, attrs.name)) {
      return noOpinion(`no relationship found between node '${node}' and this object`);
    }
    return ALLOW;
  }

  private lease(node: string, attrs: Attributes): Decision {
    const verb = attrs.verb;
    if (!["get", "create", "update", "patch", "delete"].includes(verb)) {
      return noOpinion("can only get, create, update, patch, or delete a node lease");
    }
    if (attrs.namespace !== NODE_LEASE_NAMESPACE) {
      return noOpinion(
        `can only access leases in the ${goQuote(NODE_LEASE_NAMESPACE)} system namespace`,
      );
    }
    // The name is unknown at create; admission (NodeRestriction) checks it there.
    if (verb !== "create" && attrs.name !== node) {
      return noOpinion("can only access node lease with the same name as the requesting node");
    }
    return ALLOW;
  }

  private csiNode(node: string, attrs: Attributes): Decision {
    const verb = attrs.verb;
    if (!["get", "create", "update", "patch", "delete"].includes(verb)) {
      return noOpinion("can only get, create, update, patch, or delete a CSINode");
    }
    if (attrs.subresource) return noOpinion("cannot authorize CSINode subresources");
    if (verb !== "create" && attrs.name !== node) {
      return noOpinion("can only access CSINode with the same name as the requesting node");
    }
    return ALLOW;
  }

  private resourceSlice(node: string, attrs: Attributes): Decision {
    if (attrs.subresource) return noOpinion("cannot authorize ResourceSlice subresources");
    switch (attrs.verb) {
      case "create":
        return ALLOW;
      case "get":
      case "update":
      case "patch":
      case "delete":
        return this.related(node, "resourceslice", attrs);
      case "watch":
      case "list":
      case "deletecollection":
        if (!this.selectors) return ALLOW;
        if (hasFieldEquals(attrs, "nodeName", node)) return ALLOW;
        return noOpinion(
          "can only list/watch/deletecollection resourceslices with nodeName field selector",
        );
      default:
        return noOpinion(
          "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, update, patch, delete, deletecollection",
        );
    }
  }

  private nodeObject(node: string, attrs: Attributes): Decision {
    switch (attrs.subresource) {
      case "":
        switch (attrs.verb) {
          case "create":
          case "update":
          case "patch":
            // NodeRestriction admission limits a node to its own Node object.
            return ALLOW;
          case "get":
          case "list":
          case "watch":
            if (attrs.name === node) return ALLOW;
            if (attrs.name === "") {
              return noOpinion(`node '${node}' cannot read all nodes, only its own Node object`);
            }
            return noOpinion(
              `node '${node}' cannot read '${attrs.name}', only its own Node object`,
            );
        }
        break;
      case "status":
        if (attrs.verb === "update" || attrs.verb === "patch") return ALLOW;
        break;
    }
    return NO_OPINION;
  }

  private pod(node: string, attrs: Attributes): Decision {
    switch (attrs.subresource) {
      case "":
        switch (attrs.verb) {
          case "get":
            return this.get(node, "pod", attrs);
          case "list":
          case "watch":
            if (hasFieldEquals(attrs, "spec.nodeName", node)) return ALLOW;
            if (attrs.name) return this.related(node, "pod", attrs);
            return noOpinion("can only list/watch pods with spec.nodeName field selector");
          case "create":
          case "delete":
            // Mirror pods; NodeRestriction admission limits them to pods bound to this node.
            return ALLOW;
        }
        break;
      case "status":
        if (attrs.verb === "update" || attrs.verb === "patch") return ALLOW;
        break;
      case "eviction":
        if (attrs.verb === "create") return ALLOW;
        break;
    }
    return NO_OPINION;
  }
}

function hasFieldEquals(attrs: Attributes, field: string, value: string): boolean {
  for (const r of attrs.fieldSelector ?? []) {
    if (r.field === field && r.operator === "=" && r.value === value) return true;
  }
  return false;
}
