/**
 * The `self-signed` CA at run time: signs leaves in process, keeps the trust bundle, rotates
 * without a restart (its {@linkcode SelfSignedCa.rotate} API, its hourly maintenance, and a reload
 * when `camblet-agent ca rotate` rewrites ca.pem).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Clock, HealthResult } from "../../types.ts";
import { signLeafDer } from "../../sdk/leaf_signer.ts";
import type { CertificateAuthority, SignedCertificate, SignRequest } from "../types.ts";
import {
  bundleOf,
  caPaths,
  type CaState,
  type CaSummary,
  ensureCa,
  readCaState,
  refreshBundle,
  rotateCa,
  summarizeCa,
} from "./ca_store.ts";
import type { SelfSignedConfig } from "./config.ts";
import type { RotationTarget } from "./rotation.ts";

/** Options for {@linkcode SelfSignedCa.open}. */
export interface SelfSignedCaOptions {
  clock: Clock;
  log: Logger;
  /** How often to check for due rotations and expired retired anchors (default 1 h; 0 = never). */
  maintenanceIntervalMs?: number;
}

interface Prepared {
  state: CaState;
  chainDer: Uint8Array[];
  anchorsDer: Uint8Array[];
}

const der = (c: { rawData: ArrayBuffer }) => new Uint8Array(c.rawData);

function prepare(state: CaState): Prepared {
  const m = state.material;
  const signerIsRoot = m.signer.certificate.equal(m.root);
  return {
    state,
    chainDer: signerIsRoot ? [] : [der(m.signer.certificate), ...m.intermediates.map(der)],
    anchorsDer: bundleOf(state).map(der),
  };
}

function warnLooseMode(log: Logger, loose: { path: string; mode: number } | undefined): void {
  if (!loose) return;
  log.warn(
    "CA file {path} was readable by group or others (mode {mode}); made 0600. Its private key " +
      "may have leaked: rotate the root (camblet-agent ca rotate) if others could read it",
    { path: loose.path, mode: `0${loose.mode.toString(8)}` },
  );
}

/** The self-signed CA. Create it with {@linkcode SelfSignedCa.open}. */
export class SelfSignedCa implements CertificateAuthority {
  readonly name = "self-signed";
  readonly maxTtlMs: number;
  #config: SelfSignedConfig;
  #clock: Clock;
  #log: Logger;
  #prepared: Prepared;
  #lastIssuedNotAfter: number | undefined;
  #bundlePending = false;
  #bundleWrite: Promise<unknown> | undefined;
  #watcher: Deno.FsWatcher | undefined;
  #watchLoop: Promise<void> | undefined;
  #debounce: ReturnType<typeof setTimeout> | undefined;
  #interval: ReturnType<typeof setInterval> | undefined;

  private constructor(config: SelfSignedConfig, options: SelfSignedCaOptions, state: CaState) {
    this.#config = config;
    this.#clock = options.clock;
    this.#log = options.log;
    this.maxTtlMs = config.maxCertTtlMs;
    this.#prepared = prepare(state);
  }

  /** Loads (or creates) the CA files, applies due rotations, starts watching. */
  static async open(config: SelfSignedConfig, options: SelfSignedCaOptions): Promise<SelfSignedCa> {
    // public_ca.crt waits until the agent has accepted this CA (its first health check): a CA
    // then refused (an ECDSA root with camblet-driver) never replaces the bundle peers trust.
    const update = await ensureCa(config, options.clock, { deferBundle: true });
    const ca = new SelfSignedCa(config, options, update.state);
    ca.#bundlePending = update.bundlePending === true;
    warnLooseMode(options.log, update.looseMode);
    if (update.created) {
      options.log.info("Created a new CA", { path: config.caPemPath, ...ca.#brief() });
    } else {
      options.log.info("Loaded CA", {
        path: config.caPemPath,
        format: update.state.format,
        ...ca.#brief(),
      });
      if (update.plan && update.plan.action !== "none") {
        options.log.warn("Rotated CA at start", {
          what: update.plan.action,
          reason: update.plan.reason,
        });
      }
      if (update.plan?.error) {
        options.log.warn("CA needs attention: {reason}", { reason: update.plan.error });
      }
    }
    if (config.watch) ca.#startWatch();
    const every = options.maintenanceIntervalMs ?? 3_600_000;
    if (every > 0) {
      const interval = setInterval(() => void ca.maintain(), every);
      Deno.unrefTimer(interval as unknown as number);
      ca.#interval = interval;
    }
    return ca;
  }

  #bundlePath(): string {
    return caPaths(this.#config.caPemPath).publicCa;
  }

  #brief() {
    const m = this.#prepared.state.material;
    return {
      root: m.root.subject,
      rootNotAfter: m.root.notAfter.toISOString(),
      signer: m.signer.certificate.subject,
      retiredAnchors: this.#prepared.state.retired.length,
    };
  }

  /** Signs a leaf for the CSR's key with exactly the SANs requested. */
  async sign(request: SignRequest, signal: AbortSignal): Promise<SignedCertificate> {
    signal.throwIfAborted();
    const p = this.#prepared;
    // The DER fast path: under a burst the pure-JS certificate build cost more than the signature.
    const leaf = await signLeafDer(p.state.material.signer, request, {
      now: this.#clock.now(),
      maxTtlMs: this.maxTtlMs,
      backdateMs: this.#config.backdateMs,
    });
    // Only count leaves of the root that is still active (a rotation may have happened meanwhile).
    if (this.#prepared === p) {
      this.#lastIssuedNotAfter = Math.max(this.#lastIssuedNotAfter ?? 0, leaf.notAfter.getTime());
    }
    return { certificate: leaf.der, chain: p.chainDer, trustAnchors: p.anchorsDer };
  }

  /** The active root and the retired roots still kept. */
  trustBundle(): Promise<Uint8Array[]> {
    return Promise.resolve(this.#prepared.anchorsDer);
  }

  /**
   * Not ok once the signing certificate or the root has expired (the hourly maintenance rotates
   * before that; this catches a rotation that keeps failing): leaves would no longer verify.
   */
  health(): HealthResult {
    if (this.#bundlePending) {
      this.#bundlePending = false;
      this.#bundleWrite = refreshBundle(this.#config.caPemPath).then(
        (wrote) => wrote && this.#log.info("Wrote the trust bundle", { path: this.#bundlePath() }),
        (e) => this.#log.error("Cannot write the trust bundle", { error: e }),
      );
    }
    const m = this.#prepared.state.material;
    const now = this.#clock.now();
    const certs = [["signing certificate", m.signer.certificate], ["root", m.root]] as const;
    for (const [what, cert] of certs) {
      if (cert.notAfter.getTime() <= now) {
        return {
          ok: false,
          message: `The CA's ${what} "${cert.subject}" expired at ${cert.notAfter.toISOString()}`,
        };
      }
    }
    return { ok: true };
  }

  /** What the CA looks like now. */
  summary(): CaSummary {
    return summarizeCa(this.#prepared.state);
  }

  /** Rotates the root or the intermediate now; the old root stays trusted until its last leaf expires. */
  async rotate(target: RotationTarget): Promise<CaSummary> {
    const rootBefore = this.#prepared.state.material.root;
    const update = await rotateCa(this.#config, this.#clock, {
      force: target,
      ...(this.#lastIssuedNotAfter !== undefined
        ? { lastIssuedNotAfter: this.#lastIssuedNotAfter }
        : {}),
    });
    this.#adopt(update.state, rootBefore);
    this.#log.warn("Rotated CA", { what: target, ...this.#brief() });
    return this.summary();
  }

  /** Applies due rotations and drops retired anchors whose leaves have expired. */
  async maintain(): Promise<void> {
    const rootBefore = this.#prepared.state.material.root;
    try {
      const update = await ensureCa(this.#config, this.#clock, {
        ...(this.#lastIssuedNotAfter !== undefined
          ? { lastIssuedNotAfter: this.#lastIssuedNotAfter }
          : {}),
      });
      this.#adopt(update.state, rootBefore);
      warnLooseMode(this.#log, update.looseMode);
      if (update.plan && update.plan.action !== "none") {
        this.#log.warn("Rotated CA", { what: update.plan.action, reason: update.plan.reason });
      }
      if (update.plan?.error) this.#log.error("Cannot rotate CA", { reason: update.plan.error });
    } catch (e) {
      this.#log.error("CA maintenance failed; keeping the current CA", { error: e });
    }
  }

  /** Re-reads the files (after `camblet-agent ca rotate`); keeps the current CA when they are bad. */
  async reload(): Promise<boolean> {
    const rootBefore = this.#prepared.state.material.root;
    try {
      const state = await readCaState(caPaths(this.#config.caPemPath));
      if (!state) throw new Error(`"${this.#config.caPemPath}" disappeared`);
      const changed = !state.material.signer.certificate.equal(
        this.#prepared.state.material.signer.certificate,
      ) || state.retired.length !== this.#prepared.state.retired.length;
      this.#adopt(state, rootBefore);
      if (changed) this.#log.info("Reloaded CA", this.#brief());
      return changed;
    } catch (e) {
      this.#log.error("Cannot reload CA; keeping the current one", { error: e });
      return false;
    }
  }

  #adopt(state: CaState, rootBefore: CaState["material"]["root"]): void {
    if (!state.material.root.equal(rootBefore)) this.#lastIssuedNotAfter = undefined;
    this.#prepared = prepare(state);
  }

  #startWatch(): void {
    const paths = caPaths(this.#config.caPemPath);
    const dir = paths.caPem.slice(0, paths.caPem.lastIndexOf("/")) || "/";
    const watched = new Set([paths.caPem, paths.retired]);
    this.#watcher = Deno.watchFs(dir, { recursive: false });
    const watcher = this.#watcher;
    this.#watchLoop = (async () => {
      try {
        for await (const event of watcher) {
          if (!event.paths.some((p) => watched.has(p))) continue;
          clearTimeout(this.#debounce);
          this.#debounce = setTimeout(() => void this.reload(), 200);
        }
      } catch { /* closed */ }
    })();
  }

  /** Stops watching and the maintenance timer. */
  async dispose(): Promise<void> {
    await this.#bundleWrite;
    clearInterval(this.#interval);
    clearTimeout(this.#debounce);
    if (this.#watcher) {
      try {
        this.#watcher.close();
      } catch { /* already closed */ }
      await this.#watchLoop;
    }
  }
}
