/**
 * Services and Endpoints: upstream 1.32's defaults, the IP-family fields upstream's service REST
 * initializes on create (the cluster IP and node port allocation themselves are not here), and
 * the core of Service validation.
 */
import type { FieldError } from "../../api/status.js";
import type { KObject, Strategy } from "../registry/types.js";
import {
  at,
  child,
  dns1035LabelErrors,
  dnsLabel,
  dnsSubdomain,
  duplicate,
  forbidden,
  GoValue,
  goQuote,
  idx,
  invalid,
  isIP,
  isObj,
  items,
  num,
  portNumErrors,
  portNumOrName,
  qualifiedName,
  rec,
  required,
  setDefault,
  setDefaultStr,
  str,
  unset,
  unsupported,
  validateLabels,
  type Obj,
} from "./util.js";

const TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS = ["SCTP", "TCP", "UDP"];

function externallyAccessible(spec: Obj): boolean {
  return (
    spec.type === "LoadBalancer" ||
    spec.type === "NodePort" ||
    (spec.type === "ClusterIP" && Array.isArray(spec.externalIPs) && spec.externalIPs.length > 0)
  );
}

/** Upstream's SetDefaults_Service. */
export function defaultService(obj: KObject): void {
  const spec = child(obj, "spec");
  setDefaultStr(spec, "sessionAffinity", "None");
  if (spec.sessionAffinity === "None") delete spec.sessionAffinityConfig;
  if (spec.sessionAffinity === "ClientIP") {
    const timeout = rec(rec(spec.sessionAffinityConfig)?.clientIP)?.timeoutSeconds;
    if (unset(timeout)) spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10800 } };
  }
  setDefaultStr(spec, "type", "ClusterIP");
  for (const [port] of items(spec.ports)) {
    setDefaultStr(port, "protocol", "TCP");
    if (unset(port.targetPort) || port.targetPort === 0 || port.targetPort === "")
      port.targetPort = num(port.port) ?? 0;
  }
  if (externallyAccessible(spec)) setDefaultStr(spec, "externalTrafficPolicy", "Cluster");
  if (["NodePort", "LoadBalancer", "ClusterIP"].includes(str(spec.type)))
    setDefault(spec, "internalTrafficPolicy", "Cluster");
  if (spec.type === "LoadBalancer") {
    setDefault(spec, "allocateLoadBalancerNodePorts", true);
    for (const [ingress] of items(rec(rec(obj.status)?.loadBalancer)?.ingress)) {
      if (str(ingress.ip) && unset(ingress.ipMode)) ingress.ipMode = "VIP";
    }
  }
  child(child(obj, "status"), "loadBalancer");
}

const familyOf = (ip: string): string => (ip.includes(":") ? "IPv6" : "IPv4");

/**
 * The IP-family fields upstream's service REST fills in before allocating cluster IPs:
 * ipFamilyPolicy (the old one on update, RequireDualStack for headless services without a
 * selector, else SingleStack) and ipFamilies (from the cluster IPs given, else the cluster's
 * default family). ExternalName services get neither.
 */
export function initServiceIPFamilies(svc: KObject, old?: KObject, defaultFamily = "IPv4"): void {
  const spec = child(svc, "spec");
  if (spec.type === "ExternalName") return;
  const oldSpec = rec(old?.spec);
  const clusterIPs = Array.isArray(spec.clusterIPs) ? spec.clusterIPs.map(String) : [];
  if (clusterIPs.length === 0 && str(spec.clusterIP)) clusterIPs.push(str(spec.clusterIP));
  const headlessSelectorless =
    (clusterIPs[0] ?? str(spec.clusterIP)) === "None" &&
    (!isObj(spec.selector) || Object.keys(spec.selector).length === 0);
  if (unset(spec.ipFamilyPolicy)) {
    if (oldSpec && !unset(oldSpec.ipFamilyPolicy)) spec.ipFamilyPolicy = oldSpec.ipFamilyPolicy;
    else spec.ipFamilyPolicy = headlessSelectorless ? "RequireDualStack" : "SingleStack";
  }
  const families = Array.isArray(spec.ipFamilies) ? spec.ipFamilies.map(String) : [];
  if (families.length === 0 && oldSpec && Array.isArray(oldSpec.ipFamilies))
    families.push(...oldSpec.ipFamilies.map(String));
  clusterIPs.forEach((ip, i) => {
    if (ip !== "None" && isIP(ip) && i >= families.length) families.push(familyOf(ip));
  });
  if (families.length === 0) families.push(defaultFamily);
  if (headlessSelectorless && families.length < 2 && spec.ipFamilyPolicy !== "SingleStack")
    families.push(families[0] === "IPv4" ? "IPv6" : "IPv4");
  spec.ipFamilies = families;
}

/** On create, upstream fills clusterIPs from a clusterIP given alone (old clients). */
function normalizeClusterIPs(spec: Obj): void {
  const ips = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [];
  if (str(spec.clusterIP) && ips.length === 0) spec.clusterIPs = [spec.clusterIP];
}

function isHeadless(spec: Obj): boolean {
  const ips = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [];
  const first = ips.length > 0 ? String(ips[0]) : str(spec.clusterIP);
  return spec.type === "ClusterIP" && first === "None";
}

function goServicePortKey(protocol: string, port: number): GoValue {
  return new GoValue(
    `core.ServicePort{Name:"", Protocol:${goQuote(protocol)}, AppProtocol:(*string)(nil), Port:${port}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`,
  );
}

const CIDR_MESSAGE = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
const IP_MESSAGE = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

function isCIDR(v: string): boolean {
  const [ip, bits, extra] = v.split("/");
  if (extra !== undefined || ip === undefined || bits === undefined || !/^\d+$/.test(bits))
    return false;
  return isIP(ip) && Number(bits) <= (ip.includes(":") ? 128 : 32);
}

/** Upstream's ValidateService (without the cluster IP checks, which belong to allocation). */
export function validateService(obj: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const name = obj.metadata?.name ?? "";
  if (name) for (const m of dns1035LabelErrors(name)) errs.push(invalid("metadata.name", name, m));
  const spec = rec(obj.spec) ?? {};
  const type = str(spec.type);
  const ports = items(spec.ports);
  if (ports.length === 0 && !isHeadless(spec) && type !== "ExternalName")
    errs.push(required("spec.ports"));
  const clusterIPs = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [];
  if (
    (type === "LoadBalancer" || type === "NodePort") &&
    isHeadless({ ...spec, type: "ClusterIP" })
  )
    errs.push(
      invalid("spec.clusterIPs[0]", "None", `may not be set to 'None' for ${type} services`),
    );
  if (type === "ExternalName") {
    if (clusterIPs.length > 0)
      errs.push(forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
    if (Array.isArray(spec.ipFamilies) && spec.ipFamilies.length > 0)
      errs.push(forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
    if (!unset(spec.ipFamilyPolicy))
      errs.push(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"));
    const cname = str(spec.externalName).replace(/\.$/, "");
    if (cname) errs.push(...dnsSubdomain("spec.externalName", cname));
    else errs.push(required("spec.externalName"));
  }
  const names = new Set<string>();
  for (const [port, i] of ports) {
    const p = idx("spec.ports", i);
    const pname = str(port.name);
    if (ports.length > 1 && !pname) errs.push(required(at(p, "name")));
    else if (pname) {
      errs.push(...dnsLabel(at(p, "name"), pname));
      if (names.has(pname)) errs.push(duplicate(at(p, "name"), pname));
      else names.add(pname);
    }
    const pnum = num(port.port) ?? 0;
    for (const m of portNumErrors(pnum)) errs.push(invalid(at(p, "port"), pnum, m));
    const protocol = str(port.protocol);
    if (!protocol) errs.push(required(at(p, "protocol")));
    else if (!PROTOCOLS.includes(protocol))
      errs.push(unsupported(at(p, "protocol"), protocol, PROTOCOLS));
    errs.push(...portNumOrName(at(p, "targetPort"), port.targetPort));
    if (typeof port.appProtocol === "string")
      errs.push(...qualifiedName(at(p, "appProtocol"), port.appProtocol));
  }
  if (isObj(spec.selector)) errs.push(...validateLabels("spec.selector", spec.selector));
  const affinity = str(spec.sessionAffinity);
  if (!affinity) errs.push(required("spec.sessionAffinity"));
  else if (!["ClientIP", "None"].includes(affinity))
    errs.push(unsupported("spec.sessionAffinity", affinity, ["ClientIP", "None"]));
  if (affinity === "ClientIP") {
    const config = rec(spec.sessionAffinityConfig);
    const clientIP = rec(config?.clientIP);
    const detail = "when session affinity type is ClientIP";
    if (!config) errs.push(required("spec.sessionAffinityConfig", detail));
    else if (!clientIP) errs.push(required("spec.sessionAffinityConfig.clientIP", detail));
    else if (unset(clientIP.timeoutSeconds))
      errs.push(required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", detail));
    else {
      const t = num(clientIP.timeoutSeconds) ?? 0;
      if (t <= 0 || t > 86400)
        errs.push(
          invalid(
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
            t,
            "must be greater than 0 and less than 86400",
          ),
        );
    }
  } else if (affinity === "None" && !unset(spec.sessionAffinityConfig)) {
    errs.push(
      forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"),
    );
  }
  (Array.isArray(spec.externalIPs) ? spec.externalIPs : []).forEach((ip, i) => {
    if (!isIP(String(ip))) errs.push(invalid(idx("spec.externalIPs", i), String(ip), IP_MESSAGE));
  });
  if (!type) errs.push(required("spec.type"));
  else if (!TYPES.includes(type)) errs.push(unsupported("spec.type", type, TYPES));
  if (type === "ClusterIP") {
    for (const [port, i] of ports)
      if ((num(port.nodePort) ?? 0) !== 0)
        errs.push(
          forbidden(
            at(idx("spec.ports", i), "nodePort"),
            "may not be used when `type` is 'ClusterIP'",
          ),
        );
  }
  const nodePorts = new Set<string>();
  for (const [port, i] of ports) {
    const np = num(port.nodePort) ?? 0;
    if (np === 0) continue;
    const k = `${str(port.protocol)}/${np}`;
    if (nodePorts.has(k)) errs.push(duplicate(at(idx("spec.ports", i), "nodePort"), np));
    nodePorts.add(k);
  }
  const seen = new Set<string>();
  for (const [port, i] of ports) {
    const k = `${str(port.protocol)}/${num(port.port) ?? 0}`;
    if (seen.has(k))
      errs.push(
        duplicate(idx("spec.ports", i), goServicePortKey(str(port.protocol), num(port.port) ?? 0)),
      );
    seen.add(k);
  }
  const ranges = Array.isArray(spec.loadBalancerSourceRanges) ? spec.loadBalancerSourceRanges : [];
  if (ranges.length > 0) {
    if (type !== "LoadBalancer")
      errs.push(
        forbidden(
          "spec.LoadBalancerSourceRanges",
          "may only be used when `type` is 'LoadBalancer'",
        ),
      );
    ranges.forEach((r, i) => {
      const v = String(r).trim();
      if (!isCIDR(v)) errs.push(invalid(idx("spec.LoadBalancerSourceRanges", i), v, CIDR_MESSAGE));
    });
  }
  if (!unset(spec.allocateLoadBalancerNodePorts) && type !== "LoadBalancer")
    errs.push(
      forbidden(
        "spec.allocateLoadBalancerNodePorts",
        "may only be used when `type` is 'LoadBalancer'",
      ),
    );
  if (type === "LoadBalancer" && unset(spec.allocateLoadBalancerNodePorts))
    errs.push(required("allocateLoadBalancerNodePorts"));
  if (!unset(spec.loadBalancerClass)) {
    if (type !== "LoadBalancer")
      errs.push(
        forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"),
      );
    else errs.push(...qualifiedName("spec.loadBalancerClass", str(spec.loadBalancerClass)));
  }
  const etp = str(spec.externalTrafficPolicy);
  if (!externallyAccessible(spec)) {
    if (etp)
      errs.push(
        invalid(
          "spec.externalTrafficPolicy",
          etp,
          "may only be set for externally-accessible services",
        ),
      );
  } else if (!etp) errs.push(required("spec.externalTrafficPolicy"));
  else if (!["Cluster", "Local"].includes(etp))
    errs.push(unsupported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]));
  const hcnp = num(spec.healthCheckNodePort) ?? 0;
  const needsHealthCheck = type === "LoadBalancer" && etp === "Local";
  if (!needsHealthCheck && hcnp !== 0)
    errs.push(
      invalid(
        "spec.healthCheckNodePort",
        hcnp,
        "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
      ),
    );
  if (needsHealthCheck && hcnp !== 0)
    for (const m of portNumErrors(hcnp)) errs.push(invalid("spec.healthCheckNodePort", hcnp, m));
  if (unset(spec.internalTrafficPolicy)) {
    if (["NodePort", "LoadBalancer", "ClusterIP"].includes(type))
      errs.push(required("spec.internalTrafficPolicy"));
  } else if (!["Cluster", "Local"].includes(str(spec.internalTrafficPolicy))) {
    errs.push(
      unsupported("spec.internalTrafficPolicy", str(spec.internalTrafficPolicy), [
        "Cluster",
        "Local",
      ]),
    );
  }
  if (!unset(spec.trafficDistribution) && spec.trafficDistribution !== "PreferClose")
    errs.push(
      unsupported("spec.trafficDistribution", str(spec.trafficDistribution), ["PreferClose"]),
    );
  return errs;
}

export function validateServiceUpdate(obj: KObject, old: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = rec(obj.spec) ?? {};
  const oldSpec = rec(old.spec) ?? {};
  if (oldSpec.type === "LoadBalancer" && spec.type === "LoadBalancer") {
    if ((oldSpec.loadBalancerClass ?? null) !== (spec.loadBalancerClass ?? null))
      errs.push(
        invalid(
          "spec.loadBalancerClass",
          spec.loadBalancerClass ?? null,
          "may not change once set",
        ),
      );
  }
  return [...errs, ...validateService(obj)];
}

export const serviceStrategy: Partial<Strategy> = {
  // Names are DNS-1035 labels; validate() reports them with upstream's message.
  nameFormat: "path",
  defaults: defaultService,
  prepareForCreate(obj) {
    obj.status = { loadBalancer: {} };
    normalizeClusterIPs(child(obj, "spec"));
    initServiceIPFamilies(obj);
  },
  prepareForUpdate(obj, old) {
    obj.status = old.status ?? { loadBalancer: {} };
    initServiceIPFamilies(obj, old);
  },
  validate: validateService,
  validateUpdate: validateServiceUpdate,
};

// ---------------------------------------------------------------------------------------------
// Endpoints.

export function defaultEndpoints(obj: KObject): void {
  for (const [subset] of items(obj.subsets))
    for (const [port] of items(subset.ports)) setDefaultStr(port, "protocol", "TCP");
}

export function validateEndpoints(obj: KObject): FieldError[] {
  const errs: FieldError[] = [];
  for (const [subset, i] of items(obj.subsets)) {
    const p = idx("subsets", i);
    const addresses = items(subset.addresses);
    const notReady = items(subset.notReadyAddresses);
    if (addresses.length === 0 && notReady.length === 0)
      errs.push(required(p, "must specify `addresses` or `notReadyAddresses`"));
    for (const [list, kind] of [
      [addresses, "addresses"],
      [notReady, "notReadyAddresses"],
    ] as const) {
      for (const [addr, j] of list) {
        const ap = idx(at(p, kind), j);
        const ip = str(addr.ip);
        if (!isIP(ip)) errs.push(invalid(at(ap, "ip"), ip, IP_MESSAGE));
        if (str(addr.hostname)) errs.push(...dnsLabel(at(ap, "hostname"), str(addr.hostname)));
      }
    }
    const ports = items(subset.ports);
    for (const [port, j] of ports) {
      const pp = idx(at(p, "ports"), j);
      const pname = str(port.name);
      if (ports.length > 1 && !pname) errs.push(required(at(pp, "name")));
      else if (pname) errs.push(...dnsLabel(at(pp, "name"), pname));
      const n = num(port.port) ?? 0;
      for (const m of portNumErrors(n)) errs.push(invalid(at(pp, "port"), n, m));
      const protocol = str(port.protocol);
      if (!protocol) errs.push(required(at(pp, "protocol")));
      else if (!PROTOCOLS.includes(protocol))
        errs.push(unsupported(at(pp, "protocol"), protocol, PROTOCOLS));
    }
  }
  return errs;
}

export const endpointsStrategy: Partial<Strategy> = {
  defaults: defaultEndpoints,
  validate: validateEndpoints,
  validateUpdate: validateEndpoints,
};
