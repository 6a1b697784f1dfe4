/**
 * eBPF steering of the user-space data plane: `steer.bpf.c`, embedded, loaded through libbpf.
 *
 * @module
 */
export {
  CGROUP2_CANDIDATES,
  type OriginalDestination,
  type ProtectedDestination,
  type StatName,
  Steering,
  type SteeringOptions,
} from "./steering.ts";
export { loadLibbpf } from "./libbpf.ts";
