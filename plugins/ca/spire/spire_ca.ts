/**
 * The `spire` CA: the agent joins a SPIRE deployment as a downstream CA, as nested SPIRE servers
 * do. It holds its own X509-SVID from the local SPIRE agent's Workload API, asks the SPIRE server
 * for a downstream X.509 CA with it (`NewDownstreamX509CA`), signs leaves in process in SPIRE's
 * trust domain, and renews the CA at half its life. Trust anchors (the trust domain's bundle and
 * federated bundles) follow the Workload API stream. While the server is down, signing continues
 * until the CA certificate expires.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Clock, HealthResult, PluginMetrics } from "../../types.ts";
import type { CertificateAuthority, SignedCertificate, SignRequest } from "../types.ts";
import { AnchorBook } from "../../sdk/anchor_book.ts";
import { certOf, derOf, requireRsa } from "../../sdk/ca_chain.ts";
import { createCsr } from "../../sdk/csr.ts";
import { formatDuration } from "../../sdk/duration.ts";
import { generateRsaKeyPair } from "../../sdk/keys.ts";
import { signLeafLocally } from "../../sdk/leaf_signer.ts";
import { planCaRenewal } from "../../sdk/renewal.ts";
import { UpstreamHealth } from "../../sdk/upstream_health.ts";
import { type CaCredentials, isSelfSigned } from "../../sdk/x509.ts";
import type { SpireConfig } from "./config.ts";
import { newDownstreamX509Ca } from "./server_api.ts";
import { WorkloadWatcher, type X509Svid, type X509SvidUpdate } from "./workload_api.ts";

/** How to fix a non-RSA SPIRE CA, for error messages. */
export const SPIRE_RSA_FIX =
  'set ca_key_type = "rsa-2048" in the SPIRE server\'s config (server { … }) and let it rotate, ' +
  "or set kernelDriver: false when no kernel module consumes the certificates";

/** Options for {@linkcode SpireCa.open}. */
export interface SpireCaOptions {
  clock: Clock;
  log: Logger;
  metrics?: PluginMetrics | undefined;
  /** The agent's trust domain: it must be SPIRE's. */
  trustDomain: string;
  signal?: AbortSignal;
  /** Run {@linkcode SpireCa.maintain} on a timer (default true; tests drive it). */
  timer?: boolean;
}

interface Current {
  credentials: CaCredentials;
  chain: Uint8Array[];
  notBefore: number;
  notAfter: number;
}

/** The downstream CA's state. */
export interface SpireCaStatus {
  spiffeId: string;
  notAfter: string;
  timeLeftMs: number;
  renewals: number;
  failures: number;
  lastError?: string;
}

function pickSvid(update: X509SvidUpdate, id: string | undefined): X509Svid {
  const svid = id === undefined ? update.svids[0] : update.svids.find((s) => s.spiffeId === id);
  if (!svid) {
    throw new Error(
      `Cannot find the X509-SVID ${id} among the workload's SVIDs (${
        update.svids.map((s) => s.spiffeId).join(", ")
      })`,
    );
  }
  return svid;
}

/** The downstream CA. */
export class SpireCa implements CertificateAuthority {
  readonly name = "spire";
  readonly maxTtlMs: number;
  readonly trustDomain: string;
  /** The SPIRE server's health as this CA has seen it. */
  readonly upstream: UpstreamHealth;
  readonly anchors: AnchorBook;
  #config: SpireConfig;
  #o: SpireCaOptions;
  #watcher: WorkloadWatcher;
  #current!: Current;
  #failures = 0;
  #lastFailureAt: number | undefined;
  #renewals = 0;
  #ac = new AbortController();
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;
  #reportedDrops = "";

  private constructor(config: SpireConfig, o: SpireCaOptions, watcher: WorkloadWatcher) {
    this.#config = config;
    this.#o = o;
    this.#watcher = watcher;
    this.maxTtlMs = config.maxTtlMs;
    this.trustDomain = o.trustDomain;
    this.upstream = new UpstreamHealth({
      ca: "spire",
      upstream: "the SPIRE server",
      log: o.log,
      metrics: o.metrics,
    });
    this.anchors = new AnchorBook({ rsaOnly: config.kernelDriver });
  }

  /**
   * Gets the agent's X509-SVID and the first downstream CA. Throws when either fails, when
   * SPIRE's trust domain is not the agent's, and ({@linkcode CapabilityError}) for a non-RSA CA
   * with the kernel driver.
   */
  static async open(config: SpireConfig, options: SpireCaOptions): Promise<SpireCa> {
    let ca: SpireCa | undefined;
    const watcher = new WorkloadWatcher({
      socket: config.workloadSocket,
      log: options.log,
      onUpdate: (u) => {
        if (ca) ca.#onUpdate(u);
      },
    });
    try {
      const first = await watcher.start(config.startTimeoutMs);
      const svid = pickSvid(first, config.svidId);
      const td = new URL(svid.spiffeId).host;
      if (td !== options.trustDomain) {
        throw new Error(
          `Cannot use SPIRE: its trust domain is "${td}" (SVID ${svid.spiffeId}) but the agent's is "${options.trustDomain}"; set --trust-domain ${td}`,
        );
      }
      if (config.kernelDriver) {
        requireRsa(svid.bundle, `SPIRE's trust bundle for "${td}"`, SPIRE_RSA_FIX);
      }
      ca = new SpireCa(config, options, watcher);
      ca.#onUpdate(first);
      ca.#current = await ca.#request(options.signal ?? ca.#ac.signal);
      ca.#adopted("Got a downstream CA from the SPIRE server");
    } catch (e) {
      await watcher.close();
      throw e;
    }
    options.signal?.addEventListener("abort", () => ca.#ac.abort(), { once: true });
    if (options.timer !== false) {
      ca.#timer = setInterval(() => void ca.maintain(), config.checkIntervalMs);
      Deno.unrefTimer(ca.#timer as unknown as number);
    }
    return ca;
  }

  get #serverId(): string {
    return this.#config.serverId ?? `spiffe://${this.trustDomain}/spire/server`;
  }

  #onUpdate(update: X509SvidUpdate): void {
    const svid = update.svids.find((s) => s.spiffeId === this.#config.svidId) ?? update.svids[0];
    this.anchors.set("bundle", svid?.bundle ?? []);
    this.anchors.set("federated", Object.values(update.federatedBundles).flat());
    const { dropped } = this.anchors.current(this.#o.clock.now());
    const key = dropped.join("\n");
    if (key !== this.#reportedDrops && dropped.length > 0) {
      this.#o.log.warn("Leaving SPIRE roots out of the trust bundle", {
        roots: dropped.join("; "),
      });
    }
    this.#reportedDrops = key;
  }

  /** Asks the server for a new downstream CA with the latest SVID. */
  async #request(signal: AbortSignal): Promise<Current> {
    const latest = this.#watcher.latest;
    if (!latest) {
      throw new Error("Cannot ask for a downstream CA: no X509-SVID from the Workload API yet");
    }
    const svid = pickSvid(latest, this.#config.svidId);
    const keys = await generateRsaKeyPair(2048);
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new Error(`no answer within ${this.#config.requestTimeoutMs} ms`)),
      this.#config.requestTimeoutMs,
    );
    const where = `${this.#config.serverHost}:${this.#config.serverPort}`;
    let ds;
    try {
      ds = await newDownstreamX509Ca(
        { host: this.#config.serverHost, port: this.#config.serverPort, serverId: this.#serverId },
        svid,
        {
          csr: await createCsr(keys, "CN=camblet-agent"),
          preferredTtlSeconds: Math.floor(this.#config.caTtlMs / 1000),
        },
        AbortSignal.any([signal, timeout.signal]),
      );
    } catch (e) {
      const why = timeout.signal.aborted
        ? (timeout.signal.reason as Error).message
        : (e as Error).message;
      throw new Error(`Cannot get a downstream CA from the SPIRE server at ${where}: ${why}`, {
        cause: e,
      });
    } finally {
      clearTimeout(timer);
    }
    const certificate = certOf(ds.caCertChain[0]!);
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
    const got = new Uint8Array(certificate.publicKey.rawData);
    if (got.length !== spki.length || !got.every((b, i) => b === spki[i])) {
      throw new Error(
        `Cannot use the downstream CA from ${where}: it does not carry the agent's key`,
      );
    }
    if (this.#config.kernelDriver) {
      requireRsa(
        [...ds.caCertChain.slice(1), ...ds.x509Authorities],
        "the SPIRE server's CA",
        SPIRE_RSA_FIX,
      );
    }
    // The authorities are the anchors; send only the non-root part of the chain.
    const intermediates: Uint8Array[] = [];
    for (const d of ds.caCertChain.slice(1)) {
      if (!(await isSelfSigned(certOf(d)))) intermediates.push(d);
    }
    this.anchors.set("authorities", ds.x509Authorities);
    return {
      credentials: { certificate, keys },
      chain: [ds.caCertChain[0]!, ...intermediates],
      notBefore: certificate.notBefore.getTime(),
      notAfter: certificate.notAfter.getTime(),
    };
  }

  #adopted(message: string): void {
    const c = this.#current;
    const now = this.#o.clock.now();
    this.upstream.signer(c.notAfter, now);
    this.#o.log.info(message, {
      subject: c.credentials.certificate.subject,
      serial: c.credentials.certificate.serialNumber,
      notAfter: new Date(c.notAfter).toISOString(),
      renewIn: formatDuration(Math.max(0, (c.notBefore + c.notAfter) / 2 - now)),
    });
  }

  /** Signs a leaf in process: no call to SPIRE on the kernel's path. */
  async sign(request: SignRequest, signal: AbortSignal): Promise<SignedCertificate> {
    signal.throwIfAborted();
    const prefix = `spiffe://${this.trustDomain}/`;
    if (!request.spiffeId.startsWith(prefix)) {
      throw new Error(
        `Cannot sign "${request.spiffeId}": outside SPIRE's trust domain "${this.trustDomain}"`,
      );
    }
    const c = this.#current;
    const now = this.#o.clock.now();
    let leaf;
    try {
      leaf = await signLeafLocally(c.credentials, request, {
        now,
        maxTtlMs: this.maxTtlMs,
        backdateMs: this.#config.backdateMs,
      });
    } catch (e) {
      if (now < c.notAfter) throw e;
      throw new Error(
        `Cannot sign CSR: the SPIRE downstream CA expired at ${
          new Date(c.notAfter).toISOString()
        } and could not be renewed (${this.upstream.status().lastError ?? "no renewal yet"})`,
        { cause: e },
      );
    }
    return {
      certificate: derOf(leaf),
      chain: c.chain,
      trustAnchors: this.anchors.current(now).anchors,
    };
  }

  /** The trust domain's bundle, federated bundles and the server's authorities. */
  trustBundle(): Promise<Uint8Array[]> {
    return Promise.resolve(this.anchors.current(this.#o.clock.now()).anchors);
  }

  /** Renews the downstream CA when due. Never throws; one run at a time. */
  maintain(): Promise<void> {
    this.#running ??= this.#maintain().finally(() => this.#running = undefined);
    return this.#running;
  }

  async #maintain(): Promise<void> {
    const signal = this.#ac.signal;
    const c = this.#current;
    const now = this.#o.clock.now();
    this.upstream.tick(now);
    const plan = planCaRenewal({
      now,
      notBefore: c.notBefore,
      notAfter: c.notAfter,
      failures: this.#failures,
      ...(this.#lastFailureAt !== undefined ? { lastFailureAt: this.#lastFailureAt } : {}),
    });
    if (!plan.renew || signal.aborted) return;
    try {
      this.#current = await this.#request(signal);
      this.#failures = 0;
      this.#lastFailureAt = undefined;
      this.#renewals++;
      this.upstream.success();
      this.upstream.renewal("ok");
      this.#adopted(`Renewed the downstream CA (${plan.reason})`);
    } catch (e) {
      if (signal.aborted) return;
      this.#failures++;
      this.#lastFailureAt = this.#o.clock.now();
      this.upstream.renewal("error");
      this.upstream.failure(
        "renew the downstream CA from the SPIRE server",
        e,
        this.#o.clock.now(),
      );
    }
  }

  /** Up while the SPIRE server answered the last renewal; else its error. */
  health(): HealthResult {
    return this.upstream.result();
  }

  /** The downstream CA's state. */
  status(): SpireCaStatus {
    const c = this.#current;
    const h = this.upstream.status();
    const s: SpireCaStatus = {
      spiffeId: this.#watcher.latest?.svids[0]?.spiffeId ?? "",
      notAfter: new Date(c.notAfter).toISOString(),
      timeLeftMs: Math.max(0, c.notAfter - this.#o.clock.now()),
      renewals: this.#renewals,
      failures: this.#failures,
    };
    if (h.lastError !== undefined) s.lastError = h.lastError;
    return s;
  }

  /** The downstream CA certificate in use (DER). */
  caCertificate(): Uint8Array {
    return derOf(this.#current.credentials.certificate);
  }

  /** Stops the timer and the Workload API stream, aborts requests in flight. */
  async dispose(): Promise<void> {
    clearInterval(this.#timer);
    this.#ac.abort();
    await this.#running;
    await this.#watcher.close();
  }
}
