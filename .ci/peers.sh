#!/usr/bin/env bash
# Builds the real peer servers the tests run against (opa, Vault, SPIRE server and agent) from
# their Go modules, cached by version in ${CAMBLET_PEERS_DIR:-$HOME/.cache/camblet-agent/peers}.
# The versions and build commands live in tests/peers/catalog.ts; this runs `deno task peers`, the
# step the README names before `deno task test` (tests never build a peer).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null; then
  echo "peers: go is not on PATH; the peer servers are built from Go modules" >&2
  exit 1
fi
if ! command -v deno >/dev/null; then deno() { npx -y deno@2.9.6 "$@"; }; fi
go version
start=$(date +%s)
deno task peers
dir="${CAMBLET_PEERS_DIR:-$HOME/.cache/camblet-agent/peers}"
echo "peers: ready in $(( $(date +%s) - start ))s; cache $(du -sh "$dir" | cut -f1) in $dir"
echo "peers: go build cache $(du -sh "$(go env GOCACHE)" 2>/dev/null | cut -f1)"
