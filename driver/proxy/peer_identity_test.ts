import assert from "node:assert/strict";
import { peerDenial, uriSans } from "./peer_identity.ts";

Deno.test("uriSans: URI entries in order, quoted values unquoted", () => {
  assert.deepEqual(uriSans(undefined), []);
  assert.deepEqual(uriSans("DNS:web, URI:spiffe://acme.corp/web, URI:https://x"), [
    "spiffe://acme.corp/web",
    "https://x",
  ]);
  assert.deepEqual(uriSans('URI:"spiffe://td/a, b", DNS:x'), ["spiffe://td/a, b"]);
  assert.deepEqual(uriSans("IP Address:10.0.0.1"), []);
});

Deno.test("peerDenial: verification, SPIFFE ID presence, allowedSPIFFEIDs at / boundaries", () => {
  const ok = { verified: true, spiffeId: "spiffe://td/ns/a/sa/web" };
  assert.equal(peerDenial(ok, []), undefined);
  assert.equal(peerDenial(ok, ["spiffe://td/ns/a"]), undefined);
  assert.equal(peerDenial(ok, ["spiffe://td/ns/a/sa/web"]), undefined);
  assert.match(peerDenial(ok, ["spiffe://td/ns/a/sa/we"])!, /not in allowedSPIFFEIDs/);
  assert.match(peerDenial({ verified: true }, [])!, /no SPIFFE ID/);
  assert.match(
    peerDenial({
      verified: false,
      verifyError: "DEPTH_ZERO_SELF_SIGNED_CERT",
      spiffeId: ok.spiffeId,
    }, [])!,
    /not trusted: DEPTH_ZERO_SELF_SIGNED_CERT/,
  );
  assert.equal(
    peerDenial({ verified: false, verifyError: "peer sent no certificate" }, []),
    "peer sent no certificate",
  );
});
