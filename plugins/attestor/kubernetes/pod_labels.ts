/**
 * A kubelet `/pods` Pod (core/v1) + the container id from the cgroup path → `k8s:*` labels. Pure.
 *
 * @module
 */
import type { Labels } from "../../types.ts";
import { LabelBuilder } from "../_lib/labels.ts";

/** The parts of core/v1 Pod we read. */
export interface Pod {
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string }[];
  };
  spec?: {
    nodeName?: string;
    serviceAccountName?: string;
    containers?: { name: string; image?: string }[];
    initContainers?: { name: string; image?: string }[];
    ephemeralContainers?: { name: string; image?: string }[];
  };
  status?: {
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
    ephemeralContainerStatuses?: ContainerStatus[];
  };
}

/** core/v1 ContainerStatus (the parts we read). */
export interface ContainerStatus {
  name: string;
  /** `containerd://<64 hex>`, `docker://…`, `cri-o://…`. */
  containerID?: string;
  image?: string;
  imageID?: string;
}

/** Annotation values longer than this are skipped (e.g. kubectl's last-applied-configuration). */
export const MAX_ANNOTATION_LENGTH = 1024;

/** The container status of `containerId` in `pod`, if listed. */
export function findContainerStatus(pod: Pod, containerId: string): ContainerStatus | undefined {
  const s = pod.status ?? {};
  for (
    const cs of [
      ...s.containerStatuses ?? [],
      ...s.initContainerStatuses ?? [],
      ...s.ephemeralContainerStatuses ?? [],
    ]
  ) {
    const id = (cs.containerID ?? "").replace(/^[a-z-]+:\/\//, "").trim();
    if (id === containerId) return cs;
  }
  return undefined;
}

/**
 * Labels as the Go collector named them: `k8s:pod:{name,namespace,serviceaccount}`,
 * `k8s:pod:owner:{kind,kind-with-version,name}`, `k8s:node:name`, `k8s:container:name`,
 * `k8s:container:image:id`, `k8s:label:<k>`, `k8s:annotation:<k>`,
 * `k8s:pod:image:{id,name,count}`, `k8s:pod:init-image:{name,count}`,
 * `k8s:pod:ephemeral-image:{name,count}`; plus `k8s:container:image:name` (the spec image of this
 * container, which the Go agent's generate-policy asked for as `k8s:container:image` but never
 * produced).
 */
export function podLabels(pod: Pod, container: ContainerStatus | undefined): Labels {
  const b = new LabelBuilder("k8s");
  const m = pod.metadata;
  b.add("pod:name", m.name).add("pod:namespace", m.namespace)
    .add("pod:serviceaccount", pod.spec?.serviceAccountName);
  for (const o of m.ownerReferences ?? []) {
    b.add("pod:owner:kind", o.kind.toLowerCase())
      .add("pod:owner:kind-with-version", `${o.apiVersion.toLowerCase()}/${o.kind.toLowerCase()}`)
      .add("pod:owner:name", o.name);
  }
  b.add("node:name", pod.spec?.nodeName);
  if (container) {
    const specs = [
      ...pod.spec?.containers ?? [],
      ...pod.spec?.initContainers ?? [],
      ...pod.spec?.ephemeralContainers ?? [],
    ];
    b.add("container:name", container.name)
      .add("container:image:id", container.imageID)
      .add(
        "container:image:name",
        specs.find((c) => c.name === container.name)?.image ?? container.image,
      );
  }
  b.addMap("label", m.labels);
  for (const [k, v] of Object.entries(m.annotations ?? {})) {
    if (v.length <= MAX_ANNOTATION_LENGTH) b.add(`annotation:${k}`, v);
  }
  b.add("pod:image:id", ...(pod.status?.containerStatuses ?? []).map((c) => c.imageID));
  const images = (segment: string, list: { image?: string }[] | undefined) => {
    b.add(`pod:${segment}:name`, ...(list ?? []).map((c) => c.image));
    b.add(`pod:${segment}:count`, String((list ?? []).length));
  };
  images("image", pod.spec?.containers);
  images("init-image", pod.spec?.initContainers);
  images("ephemeral-image", pod.spec?.ephemeralContainers);
  return b.build();
}
