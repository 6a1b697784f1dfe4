/**
 * Test support for the `spire` plugin: a real SPIRE server and agent (tests/peers) in the
 * capture's trust domain, with a downstream registration entry for this process (uid 0 or the
 * current uid), and configs for it.
 *
 * @module
 */
import {
  createSpireEntry,
  type Spire,
  type SpireEntry,
  type SpireOptions,
  startSpire,
} from "../../../tests/peers/mod.ts";
import { getLogger } from "@logtape/logtape";
import { parseSpireConfig, type SpireConfig } from "./config.ts";

/** The capture's trust domain. */
export const TD = "acme.test";

/** The selector matching this test process. */
export const SELF = `unix:uid:${Deno.uid() ?? 0}`;

/** SPIRE with the agent's downstream entry. */
export interface SpireForAgent {
  spire: Spire;
  entry: SpireEntry;
}

/** Starts SPIRE in `acme.test` and registers this process as a downstream workload. */
export async function startSpireForAgent(options: SpireOptions = {}): Promise<SpireForAgent> {
  const spire = await startSpire({ trustDomain: TD, ...options });
  try {
    const entry = await createSpireEntry(spire, {
      spiffeId: "/camblet-agent",
      selectors: [SELF],
      downstream: true,
    });
    return { spire, entry };
  } catch (e) {
    await spire.stop();
    throw e;
  }
}

/** A parsed config for `spire` (socket and server address from it); throws on problems. */
export function spireConfig(spire: Spire, raw: Record<string, unknown> = {}): SpireConfig {
  const r = parseSpireConfig({
    workloadSocket: `unix://${spire.agentSocket}`,
    serverAddress: spire.serverAddress,
    requestTimeout: "2s",
    ...raw,
  });
  if (!r.ok) throw new Error(`Cannot parse test config: ${JSON.stringify(r.problems)}`);
  return r.value;
}

/** The plugin's logger in tests. */
export const testLog = getLogger(["camblet", "plugin", "ca", "spire"]);
