// PLACEHOLDER until the policy compiler lands (owned by the policy helper, who replaces the body
// but keeps this exported interface).
import type { LoadedConfig } from "../config/load.ts";
import type { KernelPayloads } from "../../driver/payloads.ts";
import type { Problem } from "../errors.ts";

/** Where a compiled policy (or egress entry) came from. */
export interface PolicyProvenance {
  file: string;
  /** 0-based item index in the file's YAML list. */
  item: number;
  line?: number;
  /** For egress entries: 0-based index in the parent's `egress` list. */
  egress?: number;
}

/** Compiled payloads plus where each policy came from. */
export interface LoadedPayloads {
  payloads: KernelPayloads;
  /** By compiled policy id and egress id. */
  provenance: Record<string, PolicyProvenance>;
  /** Non-fatal findings (e.g. a default policies directory that does not exist). */
  warnings: Problem[];
}

/** Loads, validates and compiles policies and services; throws ValidationError with every problem. */
export function loadPayloads(loaded: LoadedConfig): Promise<LoadedPayloads> {
  return Promise.resolve({
    payloads: {
      load_config: { trust_domain: loaded.config.agent.trustDomain },
      load_sd_info: {},
      load_policies: { policies: [] },
    },
    provenance: {},
    warnings: [],
  });
}
