/**
 * The device protocol codec (protocol doc §2): parses kernel lines strictly into typed messages
 * (or an error that says where the line is wrong), and encodes the agent's messages as exactly one
 * line each. Pure: no I/O, no clock.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type {
  LoadConfig,
  LoadPolicies,
  LoadSdInfo,
  NamespaceIds,
  TaskContext,
} from "./payloads.ts";

/** `csr_sign` data: the kernel's PEM CSR and, when the policy has one, its ttl (e.g. `"3600s"`). */
export interface CsrSignData {
  csr: string;
  ttl?: string;
}

/** A kernel `log` record: `message`, optional `level` and `correlation_id`, more string fields. */
export interface KernelLog {
  message: string;
  level?: string;
  correlation_id?: string;
  [key: string]: string | undefined;
}

/** `augment`: the kernel wants labels for `task` (answer within 1 s). */
export interface AugmentRequest {
  command: "augment";
  id: string;
  task: TaskContext;
  isMessage: boolean;
}

/** `csr_sign`: the kernel wants `data.csr` signed (answer within 1 s, never with `error`). */
export interface CsrSignRequest {
  command: "csr_sign";
  id: string;
  task: TaskContext;
  data: CsrSignData;
  isMessage: boolean;
}

/** `log`: a trace line; never answered. */
export interface LogMessage {
  command: "log";
  id?: string;
  task: TaskContext;
  data: KernelLog;
  isMessage: boolean;
}

/** Any other command (`accept`/`connect` are defined by the module but never sent). */
export interface OtherMessage {
  command: "other";
  name: string;
  id?: string;
  task?: TaskContext;
  isMessage: boolean;
}

/** A parsed kernel → agent message. */
export type KernelMessage = AugmentRequest | CsrSignRequest | LogMessage | OtherMessage;

/** What could still be read from a line that failed to parse, so it can be answered if possible. */
export interface Recovered {
  id?: string;
  command?: string;
  isMessage?: boolean;
  task?: TaskContext;
  data?: CsrSignData;
}

/** Result of {@linkcode parseKernelLine}. `error` names the field (`task_context.pid: …`). */
export type ParseResult =
  | { ok: true; message: KernelMessage }
  | { ok: false; error: string; recovered: Recovered };

const UUID = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;
const NAMESPACES: (keyof NamespaceIds)[] = ["uts", "ipc", "mnt", "pid", "net", "time", "cgroup"];

class FieldError extends Error {
  constructor(readonly path: string, reason: string) {
    super(`${path}: ${reason}`);
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") {
    return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  }
  return `${typeof v} ${JSON.stringify(v)}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(o: Record<string, unknown>, key: string, path: string): string {
  const v = o[key];
  if (typeof v !== "string") {
    throw new FieldError(
      path + key,
      v === undefined ? "missing" : `expected a string, got ${describe(v)}`,
    );
  }
  return v;
}

function uint(o: Record<string, unknown>, key: string, path: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new FieldError(
      path + key,
      v === undefined ? "missing" : `expected a non-negative integer, got ${describe(v)}`,
    );
  }
  return v;
}

function parseTask(v: unknown): TaskContext {
  if (!isObject(v)) {
    throw new FieldError(
      "task_context",
      v === undefined ? "missing" : `expected an object, got ${describe(v)}`,
    );
  }
  const ns = v["namespace_ids"];
  if (!isObject(ns)) {
    throw new FieldError(
      "task_context.namespace_ids",
      ns === undefined ? "missing" : `expected an object, got ${describe(ns)}`,
    );
  }
  const namespace_ids = {} as NamespaceIds;
  for (const k of NAMESPACES) namespace_ids[k] = uint(ns, k, "task_context.namespace_ids.");
  return {
    uid: uint(v, "uid", "task_context."),
    gid: uint(v, "gid", "task_context."),
    pid: uint(v, "pid", "task_context."),
    command_path: str(v, "command_path", "task_context."),
    command_name: str(v, "command_name", "task_context."),
    cgroup_path: str(v, "cgroup_path", "task_context."),
    namespace_ids,
  };
}

function parseJsonString(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FieldError(path, `not JSON (${(e as Error).message})`);
  }
}

function parseCsrData(text: string): CsrSignData {
  const d = parseJsonString(text, "data");
  if (!isObject(d)) throw new FieldError("data", `expected a JSON object, got ${describe(d)}`);
  const csr = str(d, "csr", "data.");
  if (!csr.includes("-----BEGIN CERTIFICATE REQUEST-----")) {
    throw new FieldError("data.csr", "not a PEM certificate request");
  }
  const out: CsrSignData = { csr };
  if (d["ttl"] !== undefined) out.ttl = str(d, "ttl", "data.");
  return out;
}

function parseLogData(text: string): KernelLog {
  const d = parseJsonString(text, "data");
  if (!isObject(d)) throw new FieldError("data", `expected a JSON object, got ${describe(d)}`);
  const out: KernelLog = { message: str(d, "message", "data.") };
  for (const [k, v] of Object.entries(d)) {
    if (typeof v !== "string") {
      throw new FieldError(`data.${k}`, `expected a string, got ${describe(v)}`);
    }
    out[k] = v;
  }
  return out;
}

/** Reads an id, a command and a CSR out of a line that is not valid JSON, by pattern. */
function recoverFromText(line: string): Recovered {
  const r: Recovered = {};
  const id = /"id"\s*:\s*"([0-9A-Fa-f-]{36})"/.exec(line);
  if (id && UUID.test(id[1]!)) r.id = id[1]!;
  const cmd = /"command"\s*:\s*"([a-z_]{1,32})"/.exec(line);
  if (cmd) r.command = cmd[1]!;
  const msg = /"is_message"\s*:\s*(true|false)/.exec(line);
  if (msg) r.isMessage = msg[1] === "true";
  return r;
}

/**
 * Parses one kernel line (without or with its `\n`). The kernel escapes `/` as `\/`, which is
 * plain JSON. Unknown extra fields are ignored (newer modules may add some); known fields must
 * have the kernel's types.
 *
 * @example
 * ```ts
 * import { parseKernelLine } from "./codec.ts";
 * const r = parseKernelLine('{"id":"x","command":"augment"}');
 * // r.ok === false, r.error === 'Cannot parse kernel message: id: expected a UUID, got string "x"'
 * ```
 */
export function parseKernelLine(line: string): ParseResult {
  const text = line.endsWith("\n") ? line.slice(0, -1) : line;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return {
      ok: false,
      error: `Cannot parse kernel message: not JSON (${(e as Error).message})`,
      recovered: recoverFromText(text),
    };
  }
  if (!isObject(v)) {
    return {
      ok: false,
      error: `Cannot parse kernel message: expected a JSON object, got ${describe(v)}`,
      recovered: {},
    };
  }
  const recovered: Recovered = {};
  try {
    const command = str(v, "command", "");
    recovered.command = command;
    if (v["id"] !== undefined) {
      const id = str(v, "id", "");
      if (!UUID.test(id)) throw new FieldError("id", `expected a UUID, got ${describe(id)}`);
      recovered.id = id;
    }
    const isMessage = v["is_message"];
    if (typeof isMessage !== "boolean") {
      throw new FieldError(
        "is_message",
        isMessage === undefined ? "missing" : `expected a boolean, got ${describe(isMessage)}`,
      );
    }
    recovered.isMessage = isMessage;
    if (command === "csr_sign" && typeof v["data"] === "string") {
      try {
        recovered.data = parseCsrData(v["data"]);
      } catch { /* reported below if it matters */ }
    }
    if (v["task_context"] !== undefined) {
      try {
        recovered.task = parseTask(v["task_context"]);
      } catch { /* known commands re-parse it below and report the field */ }
    }
    const id = recovered.id;
    switch (command) {
      case "augment":
        if (id === undefined) throw new FieldError("id", "missing");
        return {
          ok: true,
          message: { command, id, task: parseTask(v["task_context"]), isMessage },
        };
      case "csr_sign": {
        if (id === undefined) throw new FieldError("id", "missing");
        const task = parseTask(v["task_context"]);
        const data = parseCsrData(str(v, "data", ""));
        return { ok: true, message: { command, id, task, data, isMessage } };
      }
      case "log": {
        const task = parseTask(v["task_context"]);
        const data = parseLogData(str(v, "data", ""));
        const message: LogMessage = { command, task, data, isMessage };
        if (id !== undefined) message.id = id;
        return { ok: true, message };
      }
      default: {
        const message: OtherMessage = { command: "other", name: command, isMessage };
        if (id !== undefined) message.id = id;
        if (recovered.task) message.task = recovered.task;
        return { ok: true, message };
      }
    }
  } catch (e) {
    if (!(e instanceof FieldError)) throw e;
    return { ok: false, error: `Cannot parse kernel message: ${e.message}`, recovered };
  }
}

/** Standard base64 with padding, no newlines: what the module's decoder reads. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

const STRICT_B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes standard padded base64; returns undefined for anything else (URL-safe, unpadded, spaces). */
export function decodeBase64Strict(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!STRICT_B64.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, "base64"));
}

function line(message: Record<string, unknown>): string {
  // JSON.stringify escapes control characters, so the only newline is the terminator.
  return JSON.stringify(message) + "\n";
}

/** `answer` with a result: `answer` is the result JSON as a string. */
export function encodeAnswer(id: string, answer: string): string {
  return line({ command: "answer", id, answer });
}

/** `answer` with an error. Never for `csr_sign` (it crashes the module). */
export function encodeErrorAnswer(id: string, error: string): string {
  return line({ command: "answer", id, error });
}

function encodeCode(command: string, payload: unknown): string {
  const json = new TextEncoder().encode(JSON.stringify(payload));
  return line({ command, code: encodeBase64(json) });
}

/** `load_config`: the trust domain. */
export function encodeLoadConfig(payload: LoadConfig): string {
  return encodeCode("load_config", payload);
}

/** `load_sd_info`: the whole service table (replaces the kernel's). */
export function encodeLoadSdInfo(payload: LoadSdInfo): string {
  return encodeCode("load_sd_info", payload);
}

/** `load_policies`: the whole policy set (replaces the kernel's). */
export function encodeLoadPolicies(payload: LoadPolicies): string {
  return encodeCode("load_policies", payload);
}

/** A kernel trace filter change. The kernel wants `clear`, not the Go agent's `clear_all`. */
export interface TraceRequest {
  action: "add" | "remove" | "clear";
  pid?: number;
  uid?: number;
  command_name?: string;
}

/** `manage_trace_requests`: `data` is the request JSON as a string (not base64). */
export function encodeTraceRequest(request: TraceRequest): string {
  const data: Record<string, unknown> = { action: request.action };
  if (request.pid !== undefined) data["pid"] = request.pid;
  if (request.uid !== undefined) data["uid"] = request.uid;
  if (request.command_name !== undefined) data["command_name"] = request.command_name;
  return line({ command: "manage_trace_requests", data: JSON.stringify(data) });
}
