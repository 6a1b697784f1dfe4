/**
 * Parsing and compiling policy sets on a worker thread, off the thread that answers the control
 * socket, the proxy data plane and the kernel's requests: a large set (megabytes of YAML) takes
 * seconds to parse and compile, and the set in force must keep being served at full speed
 * meanwhile. Hostnames are still looked up on the calling thread (it caches them); OPA hooks never
 * cross (only their path and digest do).
 *
 * The worker runs this module (or the bundle, whose top level starts the worker's loop because of
 * the worker's name, as for the kernel worker). It is started for the first large delivery or
 * set (small ones take less time here than the copy) and ended after five quiet minutes; when a
 * worker cannot run, the same work runs here, a file per turn of the event loop.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { isWorkerNamed } from "../../driver/worker_code.ts";
import { workerModuleUrl } from "../../driver/worker_code.ts";
import type { KernelPayloads } from "../../driver/payloads.ts";
import type { PolicyDelivery } from "../../plugins/policy_source/types.ts";
import type { Problem } from "../errors.ts";
import { compilePolicies } from "../policy/compile.ts";
import { entryCountProblem, kernelPayloadProblems } from "../policy/limits.ts";
import type { Resolutions } from "../policy/services.ts";
import { type AcceptedSource, type CompiledSet, compileSet } from "./compile_set.ts";
import {
  type LabelTarget,
  type ParsedDelivery,
  parseDelivery,
  parseDeliverySliced,
  sourceProblem,
} from "./parse_delivery.ts";
import type { SourceSpec } from "./spec.ts";

/** Name of the policy worker; the module's top level serves requests when it runs under it. */
export const POLICY_WORKER_NAME = "camblet-policy-compiler";

type SpecRef = Pick<SourceSpec, "id" | "implicit">;

/** An accepted source as it crosses to the worker: no OPA hook. */
interface AcceptedRef {
  spec: SpecRef;
  parsed: ParsedDelivery;
  issuance?: { path: string; entrypoint: string; digest: string };
}

type Request =
  | { t: "parse"; id: number; spec: SpecRef; delivery: PolicyDelivery; trustDomain: string }
  | {
    t: "compile";
    id: number;
    accepted: AcceptedRef[];
    trustDomain: string;
    resolutions: Resolutions;
    labels: [string, LabelTarget][];
  };

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

interface ParseReply {
  parsed: ParsedDelivery;
  labels: [string, LabelTarget][];
}

/**
 * The kernel problems of `parsed`'s policies on their own. Merging only adds policies, so a
 * delivery refused alone (a message too large, an entry the kernel cannot hold) is refused in
 * any set: then its items need not travel back to the calling thread at all.
 */
function refusedAlone(spec: SpecRef, parsed: ParsedDelivery, trustDomain: string): Problem[] {
  let entries = 0;
  for (const p of parsed.policies) entries += 1 + (p.policy.egress?.length ?? 0);
  const tooMany = entryCountProblem(entries);
  if (tooMany) return [sourceProblem(spec, { message: `refused before compiling: ${tooMany}` })];
  const payloads: KernelPayloads = {
    load_config: { trust_domain: trustDomain },
    load_sd_info: {},
    load_policies: compilePolicies(parsed.policies).payload,
  };
  return kernelPayloadProblems(payloads).filter((p) => p.source?.startsWith("load_policies"));
}

async function serve(m: Request): Promise<unknown> {
  if (m.t === "parse") {
    const labels = new Map<string, LabelTarget>();
    const parsed = parseDelivery(m.spec, m.delivery, m.trustDomain, labels);
    const refused = parsed.problems.length ? [] : refusedAlone(m.spec, parsed, m.trustDomain);
    if (refused.length) {
      const reply: ParsedDelivery = { ...parsed, policies: [], services: [], problems: refused };
      return { parsed: reply, labels: [...labels] } satisfies ParseReply;
    }
    return { parsed, labels: [...labels] } satisfies ParseReply;
  }
  const set = await compileSet(
    m.accepted as AcceptedSource[],
    m.trustDomain,
    () => Promise.resolve(m.resolutions),
    new Map(m.labels),
  );
  // The hook stays on the calling thread; it is put back there.
  if (set.issuance) delete (set.issuance as { hook?: unknown }).hook;
  // A refused set's payloads are never used: not worth copying back (they may be megabytes).
  if (set.problems.length) {
    return {
      ...set,
      payloads: {
        load_config: set.payloads.load_config,
        load_sd_info: {},
        load_policies: { policies: [] },
      },
      policies: [],
      services: [],
    };
  }
  return set;
}

if (isWorkerNamed(POLICY_WORKER_NAME)) {
  const scope = self as unknown as {
    onmessage: ((e: MessageEvent<Request>) => void) | null;
    postMessage(m: Reply): void;
  };
  scope.onmessage = (e) => {
    const m = e.data;
    serve(m).then(
      (value) => scope.postMessage({ id: m.id, ok: true, value }),
      (err) => scope.postMessage({ id: m.id, ok: false, error: String(err?.stack ?? err) }),
    );
  };
}

/** Options of {@linkcode PolicyWorker}. */
export interface PolicyWorkerOptions {
  log?: Logger;
  /** Ends the worker after this long without work, ms (default 5 min). */
  idleMs?: number;
  /** Run everything here instead. */
  inThread?: boolean;
  /** Deliveries of at most this many characters are parsed here (default 64 Ki). */
  inThreadBytes?: number;
  /** Sets of at most this many policy and egress entries are compiled here (default 500). */
  inThreadEntries?: number;
}

/** The calling side: parse and compile requests, answered by the worker (or here). */
export class PolicyWorker {
  readonly #o: PolicyWorkerOptions;
  #worker: Worker | undefined;
  #broken = false;
  #next = 1;
  readonly #calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #idle: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(o: PolicyWorkerOptions = {}) {
    this.#o = o;
  }

  /** {@linkcode parseDelivery} off this thread; fills `labels` like it. */
  async parse(
    spec: SpecRef,
    delivery: PolicyDelivery,
    trustDomain: string,
    labels: Map<string, LabelTarget>,
  ): Promise<ParsedDelivery> {
    // A small delivery takes less here than the copy to the worker (and needs no thread).
    let bytes = 0;
    for (const f of delivery.files) bytes += f.text.length;
    if (bytes <= (this.#o.inThreadBytes ?? 64 * 1024)) {
      return parseDelivery(spec, delivery, trustDomain, labels);
    }
    const r = await this.#call<ParseReply>(
      { t: "parse", id: 0, spec: { id: spec.id, implicit: spec.implicit }, delivery, trustDomain },
    );
    if (!r) return await parseDeliverySliced(spec, delivery, trustDomain, labels);
    for (const [k, v] of r.labels) labels.set(k, v);
    return r.parsed;
  }

  /** {@linkcode compileSet} off this thread, with hostnames already looked up here. */
  async compile(
    accepted: readonly AcceptedSource[],
    trustDomain: string,
    resolutions: Resolutions,
    labels: ReadonlyMap<string, LabelTarget>,
  ): Promise<CompiledSet> {
    let entries = 0;
    for (const a of accepted) {
      for (const p of a.parsed.policies) entries += 1 + (p.policy.egress?.length ?? 0);
    }
    if (entries <= (this.#o.inThreadEntries ?? 500)) {
      return await compileSet(accepted, trustDomain, () => Promise.resolve(resolutions), labels);
    }
    const refs: AcceptedRef[] = accepted.map((a) => ({
      spec: { id: a.spec.id, implicit: a.spec.implicit },
      parsed: a.parsed,
      ...(a.issuance
        ? {
          issuance: {
            path: a.issuance.path,
            entrypoint: a.issuance.entrypoint,
            digest: a.issuance.digest,
          },
        }
        : {}),
    }));
    const set = await this.#call<CompiledSet>({
      t: "compile",
      id: 0,
      accepted: refs,
      trustDomain,
      resolutions,
      labels: [...labels],
    });
    if (!set) {
      return await compileSet(accepted, trustDomain, () => Promise.resolve(resolutions), labels);
    }
    // Structured clone gives plain objects: maps keyed by policy id are null-prototype again.
    set.provenance = Object.assign(Object.create(null), set.provenance);
    if (set.issuance) {
      const owner = accepted.find((a) => a.spec.id === set.issuance!.source && a.issuance);
      set.issuance.hook = owner!.issuance!.hook;
    }
    return set;
  }

  /** Ends the worker; calls after this run here. */
  close(): void {
    this.#closed = true;
    this.#stop(new Error("the policy worker was closed"));
  }

  /** `undefined`: no worker, do it here. */
  async #call<T>(m: Request): Promise<T | undefined> {
    const w = this.#spawn();
    if (!w) return undefined;
    clearTimeout(this.#idle);
    const id = this.#next++;
    try {
      return await new Promise<T>((resolve, reject) => {
        this.#calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
        w.postMessage({ ...m, id });
      });
    } catch (e) {
      // Whatever went wrong there, the work is still done (here).
      this.#o.log?.warn("The policy worker did not answer; doing the work here", { error: e });
      return undefined;
    } finally {
      if (this.#calls.size === 0 && this.#worker) {
        this.#idle = setTimeout(() => this.#stop(), this.#o.idleMs ?? 300_000);
        Deno.unrefTimer(this.#idle as unknown as number);
      }
    }
  }

  /**
   * Whether large work goes to the worker (default true). Off while nothing is being served yet
   * (the agent's start): a cold worker adds about a second.
   */
  offThread = true;

  #spawn(): Worker | undefined {
    if (this.#o.inThread || !this.offThread || this.#broken || this.#closed) return undefined;
    if (this.#worker) return this.#worker;
    try {
      const w = new Worker(workerModuleUrl(POLICY_WORKER_NAME, import.meta.url), {
        type: "module",
        name: POLICY_WORKER_NAME,
      });
      w.onmessage = (e: MessageEvent<Reply>) => {
        const c = this.#calls.get(e.data.id);
        if (!c) return;
        this.#calls.delete(e.data.id);
        if (e.data.ok) c.resolve(e.data.value);
        else c.reject(new Error(e.data.error));
      };
      w.onerror = (e) => {
        e.preventDefault();
        this.#broken = true;
        this.#o.log?.error("The policy worker failed; parsing and compiling on the main thread", {
          error: e.message,
        });
        this.#stop(new Error(`the policy worker failed: ${e.message}`));
      };
      this.#worker = w;
      return w;
    } catch (e) {
      this.#broken = true;
      this.#o.log?.warn("Cannot start the policy worker; parsing and compiling here", {
        error: e,
      });
      return undefined;
    }
  }

  #stop(reason?: Error): void {
    clearTimeout(this.#idle);
    this.#worker?.terminate();
    this.#worker = undefined;
    for (const c of this.#calls.values()) c.reject(reason ?? new Error("the policy worker ended"));
    this.#calls.clear();
  }
}
