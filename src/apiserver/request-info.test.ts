import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRequestInfo } from "./request-info.js";

const info = (method: string, url: string) => {
  const u = new URL(url, "https://x");
  const i = parseRequestInfo(method, u.pathname, u.searchParams);
  return [i.verb, i.apiGroup, i.apiVersion, i.namespace, i.resource, i.name, i.subresource].join(
    "|",
  );
};

test("request paths map to verb, group, version, namespace, resource, name, subresource", () => {
  assert.equal(info("GET", "/api/v1/namespaces/default/pods"), "list||v1|default|pods||");
  assert.equal(
    info("GET", "/api/v1/namespaces/default/pods?watch=true"),
    "watch||v1|default|pods||",
  );
  assert.equal(info("GET", "/api/v1/pods"), "list||v1||pods||");
  assert.equal(
    info("GET", "/api/v1/namespaces/default/pods/web/log"),
    "get||v1|default|pods|web|log",
  );
  assert.equal(
    info("POST", "/apis/apps/v1/namespaces/ns1/deployments"),
    "create|apps|v1|ns1|deployments||",
  );
  assert.equal(
    info("PATCH", "/apis/apps/v1/namespaces/ns1/deployments/d/scale"),
    "patch|apps|v1|ns1|deployments|d|scale",
  );
  assert.equal(
    info("DELETE", "/api/v1/namespaces/default/pods"),
    "deletecollection||v1|default|pods||",
  );
  assert.equal(info("DELETE", "/api/v1/namespaces/foo"), "delete||v1|foo|namespaces|foo|");
  assert.equal(
    info("PUT", "/api/v1/namespaces/foo/finalize"),
    "update||v1|foo|namespaces|foo|finalize",
  );
  assert.equal(info("GET", "/api/v1/namespaces/foo/status"), "get||v1|foo|namespaces|foo|status");
  assert.equal(info("GET", "/api/v1/namespaces"), "list||v1||namespaces||");
  assert.equal(info("GET", "/api/v1/nodes/n1"), "get||v1||nodes|n1|");
  assert.equal(info("GET", "/api/v1/watch/namespaces/default/pods"), "watch||v1|default|pods||");
  assert.equal(
    parseRequestInfo("GET", "/apis/apps", new URLSearchParams()).isResourceRequest,
    false,
  );
  assert.equal(parseRequestInfo("GET", "/version", new URLSearchParams()).isResourceRequest, false);
});
