/**
 * The real peer servers the tests run against, pinned by Go module version. Each build comes from
 * its module's source on the Go module proxy; {@linkcode ensurePeer} builds and caches it.
 *
 * @module
 */

/**
 * A binary the tests can ask for. `bao` is accepted for OpenBao and resolves to the `vault` binary
 * (see {@linkcode VAULT_NOTE}); both CLIs and servers share the same API.
 */
export type PeerName = "opa" | "vault" | "bao" | "spire-server" | "spire-agent";

/**
 * How a module is built:
 * - `install`: `go install <pkg>@<version>` (needs the proxy's version list for its deprecation
 *   check and a go.mod without replace directives).
 * - `source`: `go mod download <module>@<version>`, then `go build` in a writable copy of the
 *   module with its local-path replace directives dropped (nested modules such as `api/` and
 *   `sdk/` are not in the parent's zip, so their published versions from go.mod are used).
 */
export type BuildStrategy = "install" | "source";

/** One pinned Go module and the binaries built from it. */
export interface PeerBuild {
  /** Cache directory key: `<key>-<version>`. */
  key: string;
  module: string;
  version: string;
  strategy: BuildStrategy;
  /** Package paths relative to the module root (`.` is the root). */
  packages: string[];
  /** Extra `go build` arguments (tags). */
  buildArgs: string[];
  /** Why this module and version, for the report in BUILD.json. */
  note: string;
}

/** Why Vault stands in for OpenBao. */
export const VAULT_NOTE =
  "OpenBao's server module (github.com/openbao/openbao) is not installable from the Go module proxy; " +
  "HashiCorp Vault, which OpenBao forked and whose HTTP API it keeps, is built instead";

/**
 * OpenBao's root module (`github.com/openbao/openbao`) carries v2 tags without a `/v2` module path,
 * so no tagged version of it is installable through the module proxy (the proxy answers 403 for
 * its list, tags and pseudo-versions here). HashiCorp Vault serves the same HTTP API the vault
 * plugin uses and is on the proxy, so it stands in for OpenBao.
 */
const VAULT: PeerBuild = {
  key: "vault",
  module: "github.com/hashicorp/vault",
  version: "v1.21.2",
  strategy: "source",
  packages: ["."],
  // Vault's own `minimal` tag: only approle/cert/jwt/userpass auth and kv/pki/ssh/transit engines,
  // dropping the cloud and database plugins that make up a third of the build.
  buildArgs: ["-tags", "minimal"],
  note: `${VAULT_NOTE}; built with Vault's "minimal" tag (auth: approle, cert, jwt, oidc, ` +
    "userpass; secrets: kv, pki, ssh, transit)",
};

const SPIRE: PeerBuild = {
  key: "spire",
  module: "github.com/spiffe/spire",
  version: "v1.13.3",
  // The proxy has no version list for spire, which `go install pkg@version` needs.
  strategy: "source",
  packages: ["./cmd/spire-server", "./cmd/spire-agent"],
  buildArgs: [],
  note: "SPIRE server and agent",
};

const OPA: PeerBuild = {
  key: "opa",
  module: "github.com/open-policy-agent/opa",
  version: "v1.22.2",
  strategy: "install",
  packages: ["."],
  buildArgs: [],
  note: "opa CLI (build -t wasm, test)",
};

/** Every pinned build, in prebuild order (smallest first so failures show early). */
export const PEER_BUILDS: readonly PeerBuild[] = [OPA, SPIRE, VAULT];

/** Which build provides each binary. */
export const PEERS: Readonly<Record<PeerName, PeerBuild>> = {
  "opa": OPA,
  "vault": VAULT,
  "bao": VAULT,
  "spire-server": SPIRE,
  "spire-agent": SPIRE,
};

/** The file name of a peer's binary inside its build directory. */
export function binaryName(name: PeerName): string {
  return name === "bao" ? "vault" : name;
}

/** Names accepted by {@linkcode ensurePeer}, for argument checking. */
export const PEER_NAMES = Object.keys(PEERS) as PeerName[];
