import assert from "node:assert/strict";
import { findContainerStatus, type Pod, podLabels } from "./pod_labels.ts";

const DEBUG_ID = "d".repeat(64);

/** A pod with a `kubectl debug` container attached: its spec and status are the ephemeral ones. */
const pod: Pod = {
  metadata: { name: "web-0", namespace: "shop", uid: "u-1" },
  spec: {
    containers: [{ name: "web", image: "nginx:1.27" }],
    initContainers: [{ name: "init", image: "busybox:1.36" }],
    ephemeralContainers: [{ name: "debugger", image: "nicolaka/netshoot:v0.13" }],
  },
  status: {
    containerStatuses: [{
      name: "web",
      containerID: `containerd://${"a".repeat(64)}`,
      imageID: "docker.io/library/nginx@sha256:1",
    }],
    ephemeralContainerStatuses: [{
      name: "debugger",
      containerID: `containerd://${DEBUG_ID}`,
      image: "docker.io/nicolaka/netshoot:v0.13",
      imageID: "docker.io/nicolaka/netshoot@sha256:2",
    }],
  },
};

Deno.test("k8s: an ephemeral (debug) container is found and labelled with its own image", () => {
  const status = findContainerStatus(pod, DEBUG_ID);
  assert.equal(status?.name, "debugger");
  const l = podLabels(pod, status);
  assert.deepEqual(l["k8s:container:name"], ["debugger"]);
  assert.deepEqual(l["k8s:container:image:name"], ["nicolaka/netshoot:v0.13"], "the spec image");
  assert.deepEqual(l["k8s:container:image:id"], ["docker.io/nicolaka/netshoot@sha256:2"]);
  assert.deepEqual(l["k8s:pod:ephemeral-image:name"], ["nicolaka/netshoot:v0.13"]);
  assert.deepEqual(l["k8s:pod:ephemeral-image:count"], ["1"]);
  assert.deepEqual(l["k8s:pod:init-image:name"], ["busybox:1.36"]);
  assert.deepEqual(l["k8s:pod:image:name"], ["nginx:1.27"]);
});
