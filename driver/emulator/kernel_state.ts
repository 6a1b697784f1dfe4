/**
 * What the emulated module keeps from the agent's configuration messages (`load_config`,
 * `load_sd_info`, `load_policies`, `manage_trace_requests`), decoded the way the module decodes
 * them. A malformed message leaves the previous state in place, as on the real module, and is
 * reported as a problem (our agent must never send one).
 *
 * @module
 */
import { decodeBase64Strict, type TraceRequest } from "../codec.ts";
import type { LoadPolicies, LoadSdInfo } from "../payloads.ts";

/** One trace filter as the kernel stores it. */
export type TraceFilter = Required<Pick<TraceRequest, "pid" | "uid" | "command_name">>;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function decodeCode(msg: Record<string, unknown>): unknown {
  const code = msg["code"];
  if (typeof code !== "string") throw new Error("code: missing or not a string");
  const bytes = decodeBase64Strict(code);
  if (!bytes) throw new Error("code: not standard padded base64");
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new Error(`code: decoded bytes are not JSON (${(e as Error).message})`);
  }
}

function policyProblems(p: LoadPolicies): string[] {
  const out: string[] = [];
  const check = (x: Record<string, unknown>, where: string) => {
    if (typeof x["id"] !== "string" || x["id"] === "") {
      out.push(`${where}.id: missing (kernel oops)`);
    }
    if (typeof x["position"] !== "number") out.push(`${where}.position: missing`);
    const cert = x["certificate"];
    if (!isObject(cert) || typeof cert["workloadID"] !== "string") {
      out.push(`${where}.certificate.workloadID: missing (kernel oops)`);
    }
    const conn = x["connection"];
    if (
      isObject(conn) && Array.isArray(conn["allowedSPIFFEIDs"]) &&
      conn["allowedSPIFFEIDs"].length > 16
    ) {
      out.push(`${where}.connection.allowedSPIFFEIDs: more than 16 (kernel overflow)`);
    }
    if (!Array.isArray(x["selectors"])) out.push(`${where}.selectors: not an array`);
  };
  p.policies.forEach((pol, i) => {
    const x = pol as unknown as Record<string, unknown>;
    check(x, `policies[${i}]`);
    const egress = x["egress"];
    if (Array.isArray(egress)) {
      egress.forEach((e, j) => check(e as Record<string, unknown>, `policies[${i}].egress[${j}]`));
    }
  });
  return out;
}

/** The module's configuration state. */
export class KernelState {
  trustDomain = "camblet";
  sdInfo: LoadSdInfo = {};
  policies: LoadPolicies = { policies: [] };
  traceFilters: TraceFilter[] = [];

  /**
   * Applies one configuration message. Returns the problems (empty when the module would accept
   * it); on problems the state is unchanged.
   */
  apply(command: string, msg: Record<string, unknown>): string[] {
    try {
      switch (command) {
        case "load_config": {
          const v = decodeCode(msg);
          if (!isObject(v) || typeof v["trust_domain"] !== "string") {
            return ["load_config: trust_domain missing"];
          }
          if (v["trust_domain"].length > 255) return ["load_config: trust_domain longer than 255"];
          this.trustDomain = v["trust_domain"];
          return [];
        }
        case "load_sd_info": {
          const v = decodeCode(msg);
          if (!isObject(v)) return ["load_sd_info: not a JSON object"];
          for (const [addr, entry] of Object.entries(v)) {
            const labels = isObject(entry) ? entry["labels"] : undefined;
            if (!Array.isArray(labels) || labels.some((l) => typeof l !== "string")) {
              return [`load_sd_info: ${addr}: labels must be a list of strings`];
            }
            if (labels.length > 127) return [`load_sd_info: ${addr}: more than 127 labels`];
          }
          this.sdInfo = v as LoadSdInfo;
          return [];
        }
        case "load_policies": {
          const v = decodeCode(msg);
          if (!isObject(v) || !Array.isArray(v["policies"])) {
            return ["load_policies: policies missing"];
          }
          const problems = policyProblems(v as unknown as LoadPolicies);
          if (problems.length === 0) this.policies = v as unknown as LoadPolicies;
          return problems.map((p) => `load_policies: ${p}`);
        }
        case "manage_trace_requests":
          return this.#trace(msg);
        default:
          return [`invalid command # command[${command}]`];
      }
    } catch (e) {
      return [`${command}: ${(e as Error).message}`];
    }
  }

  #trace(msg: Record<string, unknown>): string[] {
    if (typeof msg["data"] !== "string") {
      return ["manage_trace_requests: data must be a JSON string"];
    }
    const d = JSON.parse(msg["data"]) as Record<string, unknown>;
    const f: TraceFilter = {
      pid: typeof d["pid"] === "number" ? d["pid"] : 0,
      uid: typeof d["uid"] === "number" ? d["uid"] : 0,
      command_name: typeof d["command_name"] === "string" ? d["command_name"] : "",
    };
    const same = (g: TraceFilter) =>
      g.pid === f.pid && g.uid === f.uid && g.command_name === f.command_name;
    switch (d["action"]) {
      case "clear":
        this.traceFilters = [];
        return [];
      case "add":
        if (!this.traceFilters.some(same)) this.traceFilters.push(f);
        return [];
      case "remove":
        this.traceFilters = this.traceFilters.filter((g) => !same(g));
        return [];
      default:
        return [`manage_trace_requests: unknown action ${JSON.stringify(d["action"])}`];
    }
  }

  /** Whether the kernel would trace a process (driver:src/trace.c semantics). */
  traces(pid: number, uid: number, commandName: string): boolean {
    return this.traceFilters.some((f) =>
      (f.pid <= 0 || f.pid === pid) && (f.uid <= 0 || f.uid === uid) &&
      (f.command_name === "" || f.command_name === commandName)
    );
  }
}
