import type { AdmissionPlugin } from "./types.js";

/**
 * What upstream's CertificateSigningRequest strategy records on create: the requesting user
 * (spec.username, uid, groups, extra), whatever the client sent. Part of the server, not a
 * configurable plugin; it runs first in the chain.
 */
export const csrRequestor: AdmissionPlugin = {
  name: "CertificateSigningRequestRequestor",
  admit(a) {
    if (a.operation !== "CREATE" || a.subresource) return;
    if (a.group !== "certificates.k8s.io" || a.resource !== "certificatesigningrequests") return;
    const spec = ((a.object!.spec as Record<string, unknown> | undefined) ??= {});
    a.object!.spec = spec;
    spec.username = a.user.username;
    if (a.user.uid) spec.uid = a.user.uid;
    else delete spec.uid;
    spec.groups = [...a.user.groups];
    if (a.user.extra && Object.keys(a.user.extra).length > 0) spec.extra = a.user.extra;
    else delete spec.extra;
  },
};
