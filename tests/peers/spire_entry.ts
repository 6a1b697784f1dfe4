/**
 * Registration entries and Workload API fetches against a {@linkcode Spire} from `startSpire`,
 * through the real `spire-server` and `spire-agent` CLIs.
 *
 * @module
 */

import { join } from "node:path";
import type { Spire } from "./spire.ts";
import { run, waitFor } from "./_process.ts";

/** Options for {@linkcode createSpireEntry}. */
export interface SpireEntryOptions {
  /** A full `spiffe://` ID, or a path (`/camblet-agent`) in the trust domain. */
  spiffeId: string;
  /** Selectors such as `unix:uid:0` (at least one). */
  selectors: string[];
  /** Default: the agent started with the deployment. */
  parentId?: string;
  /** SVID lifetime in seconds. */
  x509SvidTtlSeconds?: number;
  /** The workload may ask the server for a downstream X.509 CA (nested-SPIRE style). */
  downstream?: boolean;
  /** The workload may call the server's admin APIs. */
  admin?: boolean;
  dnsNames?: string[];
}

/** A created entry. */
export interface SpireEntry {
  id: string;
  spiffeId: string;
}

/**
 * Creates a registration entry with `spire-server entry create`.
 *
 * @example
 * ```ts ignore
 * await createSpireEntry(spire, { spiffeId: "/agent", selectors: ["unix:uid:0"], downstream: true });
 * ```
 */
export async function createSpireEntry(
  spire: Spire,
  options: SpireEntryOptions,
): Promise<SpireEntry> {
  if (options.selectors.length === 0) {
    throw new TypeError(`Cannot create entry ${options.spiffeId}: no selector given`);
  }
  const spiffeId = options.spiffeId.startsWith("spiffe://")
    ? options.spiffeId
    : `spiffe://${spire.trustDomain}${
      options.spiffeId.startsWith("/") ? "" : "/"
    }${options.spiffeId}`;
  const args = [
    "entry",
    "create",
    "-socketPath",
    spire.serverSocket,
    "-output",
    "json",
    "-parentID",
    options.parentId ?? spire.agentId,
    "-spiffeID",
    spiffeId,
  ];
  for (const s of options.selectors) args.push("-selector", s);
  for (const d of options.dnsNames ?? []) args.push("-dns", d);
  if (options.x509SvidTtlSeconds !== undefined) {
    args.push("-x509SVIDTTL", String(options.x509SvidTtlSeconds));
  }
  if (options.downstream) args.push("-downstream");
  if (options.admin) args.push("-admin");
  const out = await spireServer(spire, args);
  const parsed = JSON.parse(out) as {
    results?: { status?: { code?: number; message?: string }; entry?: { id?: string } }[];
  };
  const result = parsed.results?.[0];
  if (result?.entry?.id === undefined || (result.status?.code ?? 0) !== 0) {
    throw new Error(`Cannot create entry ${spiffeId}: ${result?.status?.message ?? out.trim()}`);
  }
  return { id: result.entry.id, spiffeId };
}

/** Deletes an entry (to test revocation of a workload's identity). */
export async function deleteSpireEntry(spire: Spire, id: string): Promise<void> {
  await spireServer(spire, ["entry", "delete", "-socketPath", spire.serverSocket, "-entryID", id]);
}

/** Runs `spire-server <args>` and returns stdout; throws with the output on failure. */
export async function spireServer(spire: Spire, args: string[]): Promise<string> {
  return (await run(spire.serverBin, args)).stdout;
}

/** The X509-SVID a workload got from the Workload API. */
export interface FetchedSvid {
  /** The SVID and its intermediates (PEM). */
  certificatesPem: string;
  keyPem: string;
  /** The trust domain's bundle (PEM). */
  bundlePem: string;
}

/**
 * Fetches this process's X509-SVID with `spire-agent api fetch x509`, retrying until the agent
 * has synced a matching entry (it syncs every few seconds) or `timeoutMs` passes.
 */
export async function fetchX509Svid(
  spire: Spire,
  options: { timeoutMs?: number } = {},
): Promise<FetchedSvid> {
  const out = await Deno.makeTempDir({ prefix: "camblet-svid-" });
  try {
    let lastOutput = "";
    await waitFor(`an X509-SVID from ${spire.agentSocket}`, async () => {
      const r = await run(spire.agentBin, [
        "api",
        "fetch",
        "x509",
        "-socketPath",
        spire.agentSocket,
        "-write",
        out,
      ], { check: false });
      lastOutput = (r.stderr + r.stdout).trim();
      if (r.code !== 0) throw new Error(lastOutput);
      return true;
    }, { timeoutMs: options.timeoutMs ?? 30_000, intervalMs: 500 });
    return {
      certificatesPem: await Deno.readTextFile(join(out, "svid.0.pem")),
      keyPem: await Deno.readTextFile(join(out, "svid.0.key")),
      bundlePem: await Deno.readTextFile(join(out, "bundle.0.pem")),
    };
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}
