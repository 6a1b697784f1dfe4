/**
 * Real peer servers for tests, built from their Go modules and cached by version: `opa`, a
 * Vault-API server (OpenBao's API), and SPIRE server + agent.
 *
 * @module
 */

export {
  binaryName,
  PEER_BUILDS,
  PEER_NAMES,
  type PeerBuild,
  type PeerName,
  PEERS,
  VAULT_NOTE,
} from "./catalog.ts";
export {
  buildDir,
  ensurePeer,
  type EnsurePeerOptions,
  PeerBuildError,
  peerMissing,
  peerPath,
  type PeerResult,
  PEERS_TASK,
  peersDir,
  tryEnsurePeer,
} from "./ensure_peer.ts";
export { opaBuildBundle, type OpaBuildOptions, opaBuildWasm, opaTest } from "./opa.ts";
export {
  enablePki,
  type EnablePkiOptions,
  type PkiRoot,
  startOpenBao,
  startVault,
  VaultApiError,
  vaultRequest,
  type VaultServer,
  type VaultTarget,
} from "./vault.ts";
export { type Spire, type SpireOptions, startSpire } from "./spire.ts";
export {
  createSpireEntry,
  deleteSpireEntry,
  type FetchedSvid,
  fetchX509Svid,
  type SpireEntry,
  type SpireEntryOptions,
  spireServer,
} from "./spire_entry.ts";
