/**
 * The self-signed CA on disk: `ca.pem` (0600), `public_ca.crt` (0644, what peers trust) and
 * `retired_ca.crt` (roots kept in the bundle after a rotation). Every write is atomic, and the
 * order (retired → ca.pem → public_ca.crt) leaves a loadable set of files after a crash at any
 * point; a lock file serialises the agent and `camblet-agent ca rotate`.
 *
 * @module
 */
import { dirname, join } from "node:path";
import type { Clock } from "../../types.ts";
import { createIntermediateCa, createRootCa } from "../../sdk/x509.ts";
import { readRegularFile } from "../../sdk/regular_file.ts";
import { writeFileAtomic } from "./_atomic_write.ts";
import {
  type CaFileFormat,
  type CaMaterial,
  encodeAnchors,
  encodeCaFile,
  encodeRetired,
  parseCaFile,
  parseRetired,
  type RetiredAnchor,
} from "./ca_file.ts";
import type { SelfSignedConfig } from "./config.ts";
import { planRotation, type RotationPlan, type RotationTarget } from "./rotation.ts";

/** The files of one CA. */
export interface CaPaths {
  caPem: string;
  publicCa: string;
  retired: string;
  lock: string;
}

/** Paths beside `caPemPath` (the Go agent wrote `public_ca.crt` there too). */
export function caPaths(caPemPath: string): CaPaths {
  const dir = dirname(caPemPath);
  return {
    caPem: caPemPath,
    publicCa: join(dir, "public_ca.crt"),
    retired: join(dir, "retired_ca.crt"),
    lock: `${caPemPath}.lock`,
  };
}

/** A loaded CA. */
export interface CaState {
  material: CaMaterial;
  retired: RetiredAnchor[];
  format: CaFileFormat;
}

/** A summary of the CA for logs, `ca rotate` and a status API. */
export interface CaSummary {
  root: { subject: string; notAfter: string; serial: string };
  signer: { subject: string; notAfter: string; serial: string };
  retired: { subject: string; serial: string; keepUntil: string }[];
}

/** Summarises a CA state (no key material). */
export function summarizeCa(state: CaState): CaSummary {
  const { material, retired } = state;
  const info = (c: typeof material.root) => ({
    subject: c.subject,
    notAfter: c.notAfter.toISOString(),
    serial: c.serialNumber,
  });
  return {
    root: info(material.root),
    signer: info(material.signer.certificate),
    retired: retired.map((r) => ({
      subject: r.certificate.subject,
      serial: r.certificate.serialNumber,
      keepUntil: new Date(r.keepUntil).toISOString(),
    })),
  };
}

/** Points where a write completed; tests stop (or kill) the process there. */
export type WriteStep = "retired" | "ca" | "bundle";

/** Options for operations that write. */
export interface WriteOptions {
  /** Called after each file is in place. */
  onStep?: (step: WriteStep) => Promise<void> | void;
}

// Non-blocking and regular files only: a FIFO at ca.pem must not hang the start or the watcher.
async function readText(path: string): Promise<string | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`Cannot read "${path}": ${(e as Error).message}`, { cause: e });
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const at = firstBadUtf8(bytes);
    throw new Error(
      `Cannot load CA file "${path}": it is not UTF-8 text (byte ${at} is 0x${
        bytes[at]!.toString(16).padStart(2, "0")
      }); PEM is ASCII`,
    );
  }
}

/** Offset of the first byte where UTF-8 decoding fails. */
function firstBadUtf8(bytes: Uint8Array): number {
  let lo = 0;
  let hi = bytes.length;
  const ok = (n: number) => {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Reads the CA files; `undefined` when ca.pem does not exist. */
export async function readCaState(paths: CaPaths): Promise<CaState | undefined> {
  const text = await readText(paths.caPem);
  if (text === undefined) return undefined;
  const { material, format } = await parseCaFile(text, paths.caPem);
  const retiredText = await readText(paths.retired);
  const retired = retiredText === undefined ? [] : parseRetired(retiredText, paths.retired)
    // A crash between writing retired_ca.crt and ca.pem can list the active root as retired.
    .filter((r) => !r.certificate.equal(material.root));
  return { material, retired, format };
}

/** The trust bundle: the active root and the retired roots still kept. */
export function bundleOf(state: CaState) {
  return [state.material.root, ...state.retired.map((r) => r.certificate)];
}

async function withLock<T>(paths: CaPaths, fn: () => Promise<T>): Promise<T> {
  // First start on a fresh host: /etc/camblet may not exist yet. Keys live there, so 0700.
  await Deno.mkdir(dirname(paths.caPem), { recursive: true, mode: 0o700 });
  const file = await Deno.open(paths.lock, { create: true, write: true, mode: 0o600 });
  try {
    await file.lock(true);
    return await fn();
  } finally {
    file.close();
  }
}

/** Temp files of writes a crash interrupted (never renamed into place); safe to delete under the lock. */
async function removeStaleTemps(paths: CaPaths): Promise<void> {
  const dir = dirname(paths.caPem);
  const prefixes = [paths.caPem, paths.publicCa, paths.retired].map((p) =>
    `.${p.slice(p.lastIndexOf("/") + 1)}.tmp-`
  );
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && prefixes.some((p) => e.name.startsWith(p))) {
        await Deno.remove(join(dir, e.name)).catch(() => {});
      }
    }
  } catch { /* unreadable directory: reading ca.pem will say so */ }
}

/** Creates a new root (and intermediate when configured), valid from now − backdate. */
export async function generateCa(
  config: SelfSignedConfig,
  now: number,
  commonName = config.commonName,
): Promise<CaMaterial> {
  const root = await createRootCa({
    commonName,
    ...(config.organization ? { organization: config.organization } : {}),
    keySize: config.keySize,
    notBefore: new Date(now - config.backdateMs),
    notAfter: new Date(now + config.rootTtlMs),
  });
  const material: CaMaterial = {
    signer: root,
    intermediates: [],
    root: root.certificate,
    rootKeys: root.keys,
  };
  return config.intermediate ? await withNewIntermediate(material, config, now) : material;
}

async function withNewIntermediate(
  material: CaMaterial,
  config: SelfSignedConfig,
  now: number,
): Promise<CaMaterial> {
  if (!material.rootKeys) {
    throw new Error("Cannot create an intermediate: the root's private key is not in the CA file");
  }
  const inter = config.intermediate ??
    { commonName: "Camblet intermediate CA", ttlMs: 8760 * 3.6e6 };
  const signer = await createIntermediateCa(
    { certificate: material.root, keys: material.rootKeys },
    {
      commonName: inter.commonName,
      keySize: config.keySize,
      notBefore: new Date(now - config.backdateMs),
      notAfter: new Date(now + inter.ttlMs),
      pathLength: 0,
    },
  );
  return { signer, intermediates: [], root: material.root, rootKeys: material.rootKeys };
}

/**
 * Two trust anchors with the same subject make peers (and BearSSL) pick by name and fail on the
 * wrong key: a new root gets a dated CN when its configured CN is still in the bundle.
 */
function distinctName(commonName: string, bundle: readonly RetiredAnchor[], now: number): string {
  const taken = new Set(bundle.map((r) => r.certificate.subject));
  const iso = new Date(now).toISOString();
  for (const name of [commonName, `${commonName} ${iso.slice(0, 10)}`, `${commonName} ${iso}`]) {
    if (![...taken].some((s) => s === `CN=${name}` || s.endsWith(`, CN=${name}`))) return name;
  }
  return `${commonName} ${crypto.randomUUID()}`;
}

async function writeAll(
  paths: CaPaths,
  state: CaState,
  what: { retired: boolean; ca: boolean; bundle?: boolean },
  options: WriteOptions,
): Promise<void> {
  if (what.retired) {
    await writeFileAtomic(paths.retired, encodeRetired(state.retired), 0o644);
    await options.onStep?.("retired");
  }
  if (what.ca) {
    await writeFileAtomic(paths.caPem, await encodeCaFile(state.material), 0o600);
    await options.onStep?.("ca");
  }
  if (what.bundle === false) return;
  await writeFileAtomic(paths.publicCa, encodeAnchors(bundleOf(state)), 0o644);
  await options.onStep?.("bundle");
}

/**
 * Writes public_ca.crt from the CA files as they are now (under the lock), when it differs;
 * resolves with whether it wrote.
 */
export async function refreshBundle(caPemPath: string): Promise<boolean> {
  const paths = caPaths(caPemPath);
  return await withLock(paths, async () => {
    const state = await readCaState(paths);
    if (!state) return false;
    const text = encodeAnchors(bundleOf(state));
    if (await Deno.readTextFile(paths.publicCa).catch(() => undefined) === text) return false;
    await writeFileAtomic(paths.publicCa, text, 0o644);
    return true;
  });
}

/** Result of {@linkcode ensureCa} and {@linkcode rotateCa}. */
export interface CaUpdate {
  state: CaState;
  created: boolean;
  plan?: RotationPlan<RetiredAnchor & { notAfter: number }>;
  /** public_ca.crt is out of date and was left for {@linkcode refreshBundle} (`deferBundle`). */
  bundlePending?: boolean;
  /** ca.pem was readable by group or others (now 0600): its key may have leaked. */
  looseMode?: { path: string; mode: number };
}

/** Options for {@linkcode rotateCa}. */
export interface RotateOptions extends WriteOptions {
  force?: RotationTarget;
  /** Latest notAfter issued under the current root, when the caller knows it. */
  lastIssuedNotAfter?: number;
  /** Only prune and rotate when forced (config `autoRotate: false`). */
  noAutoRotate?: boolean;
  /**
   * Leave public_ca.crt as it is when nothing was rotated or pruned (the caller writes it with
   * {@linkcode refreshBundle} once the agent has accepted the CA); see `bundlePending`.
   */
  deferBundle?: boolean;
}

async function applyPlan(
  paths: CaPaths,
  state: CaState,
  config: SelfSignedConfig,
  now: number,
  options: RotateOptions,
): Promise<CaUpdate> {
  const m = state.material;
  const signerIsRoot = m.signer.certificate.equal(m.root);
  const plan = planRotation({
    now,
    rootNotAfter: m.root.notAfter.getTime(),
    rootKeyAvailable: m.rootKeys !== undefined,
    ...(signerIsRoot ? {} : { intermediateNotAfter: m.signer.certificate.notAfter.getTime() }),
    wantIntermediate: config.intermediate !== undefined,
    retired: state.retired.map((r) => ({ ...r, notAfter: r.certificate.notAfter.getTime() })),
    rotateBeforeMs: config.rotateBeforeMs,
    maxCertTtlMs: config.maxCertTtlMs,
    ...(options.lastIssuedNotAfter !== undefined
      ? { lastIssuedNotAfter: options.lastIssuedNotAfter }
      : {}),
    ...(options.force ? { force: options.force } : {}),
  });
  if (plan.error && options.force) {
    throw new Error(`Cannot rotate the ${options.force}: ${plan.error}`);
  }
  const action = options.noAutoRotate && !options.force ? "none" : plan.action;
  const retired: RetiredAnchor[] = plan.keep.map((r) => ({
    certificate: r.certificate,
    keepUntil: r.keepUntil,
  }));
  let material = m;
  if (action === "root") {
    retired.push({ certificate: m.root, keepUntil: plan.retireRootUntil! });
    material = await generateCa(config, now, distinctName(config.commonName, retired, now));
  } else if (action === "intermediate") {
    material = await withNewIntermediate(m, config, now);
  }
  const next: CaState = {
    material,
    retired,
    format: action === "none" ? state.format : "standard",
  };
  const changed = action !== "none" || plan.drop.length > 0;
  const deferred = options.deferBundle === true && !changed;
  await writeAll(paths, next, {
    retired: action === "root" || plan.drop.length > 0,
    ca: action !== "none",
    bundle: !deferred,
  }, options);
  const suppressed = action !== plan.action
    ? { error: `a ${plan.action} rotation is due (${plan.reason}) but autoRotate is off` }
    : {};
  const update: CaUpdate = {
    state: next,
    created: false,
    plan: { ...plan, ...suppressed, action },
  };
  if (deferred) {
    const onDisk = await Deno.readTextFile(paths.publicCa).catch(() => undefined);
    if (onDisk !== encodeAnchors(bundleOf(next))) update.bundlePending = true;
  }
  return update;
}

/**
 * Loads the CA, creating it when ca.pem is missing, and applies due rotations and pruning.
 * Rewrites public_ca.crt every time (as the Go agent did at start).
 */
export async function ensureCa(
  config: SelfSignedConfig,
  clock: Clock,
  options: RotateOptions = {},
): Promise<CaUpdate> {
  const paths = caPaths(config.caPemPath);
  return await withLock(paths, async () => {
    await removeStaleTemps(paths);
    const now = clock.now();
    const state = await readCaState(paths);
    if (!state) {
      const fresh: CaState = {
        material: await generateCa(config, now),
        retired: [],
        format: "standard",
      };
      await writeAll(paths, fresh, { retired: false, ca: true }, options);
      return { state: fresh, created: true };
    }
    // The Go agent chmods an existing ca.pem to 0600 too; one others could read is reported.
    const found = (await Deno.stat(paths.caPem)).mode! & 0o777;
    await Deno.chmod(paths.caPem, 0o600);
    const update = await applyPlan(paths, state, config, now, {
      ...options,
      noAutoRotate: !config.autoRotate,
    });
    if (found & 0o077) update.looseMode = { path: paths.caPem, mode: found };
    return update;
  });
}

/** Rotates the root or the intermediate now (`ca rotate`, the plugin's API). */
export async function rotateCa(
  config: SelfSignedConfig,
  clock: Clock,
  options: RotateOptions & { force: RotationTarget },
): Promise<CaUpdate> {
  const paths = caPaths(config.caPemPath);
  return await withLock(paths, async () => {
    const state = await readCaState(paths);
    if (!state) throw new Error(`Cannot rotate: CA file "${paths.caPem}" does not exist`);
    return await applyPlan(paths, state, config, clock.now(), options);
  });
}
