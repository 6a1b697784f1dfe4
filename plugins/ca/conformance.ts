/**
 * The conformance suite every CA plugin runs (one suite, many implementations): call
 * {@linkcode caConformance} from the plugin's test file. It signs the real kernel CSR from the
 * camblet-driver capture, refuses tampered CSRs, checks TTL caps, has `openssl verify` check the
 * chain, and checks the kernel answer built from it (shape and trust) with the kernel protocol's
 * own builder and checker (driver/). Only what a CA promises is here: how the identity manager
 * uses a CA is the agent's to test (agent/identity/manager_test.ts, and per CA the kernel path of
 * tests/fakes/ca_kernel_path.ts in each plugin's fault tests), since plugins never import agent/.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Clock } from "../types.ts";
import { type CertificateAuthority, CsrRejectedError } from "./types.ts";
import { encodePem } from "../sdk/pem.ts";
import { parseCsr } from "../sdk/csr.ts";
import { x509 } from "../sdk/x509.ts";
import { checkKernelAnswer } from "../../driver/answer_check.ts";
import { kernelCsrAnswer, kernelTrustAnchor } from "../../driver/kernel_answer.ts";
import { CAPTURE_TIME, pki } from "../../tests/fakes/identity_capture.ts";

/** The cases, in order. */
export const CONFORMANCE_CASES = [
  "signs the real kernel CSR",
  "serials are random and at least 128 bits",
  "refuses a tampered CSR",
  "honours the requested TTL and its maximum",
  "openssl verify accepts the chain",
  "the kernel answer is well formed and trusted",
  "trustBundle matches the anchors of sign",
] as const;

/** A case name. */
export type ConformanceCase = typeof CONFORMANCE_CASES[number];

/** The CA under test and the clock it runs on. */
export interface CaUnderTest {
  ca: CertificateAuthority;
  /** The suite's fixed clock if the CA took it; `systemClock` for a CA in another process. */
  clock: Clock;
}

/** Options for {@linkcode caConformance}. */
export interface CaConformanceOptions {
  /** Creates the CA. `clock` is fixed at the capture time; in-process CAs should use it. */
  setup(clock: Clock): Promise<CaUnderTest>;
  /** Cases to skip, each with its reason (printed in the step name). */
  skip?: Partial<Record<ConformanceCase, string>>;
  /** Skip the whole suite (e.g. `skip(peerMissing("vault"))` from tests/_skip.ts). */
  ignore?: boolean;
  /** Allowed difference between the CA's clock and `clock` (default 0; use ~5 s for processes). */
  clockSkewMs?: number;
}

const WEB = "spiffe://acme.test/web";
const HOUR = 3_600_000;

async function kernelCsr(): Promise<Uint8Array> {
  return new Uint8Array(parseCsr(await pki("csr-web.pem")).rawData);
}

/** The kernel CSR with its requested SPIFFE ID changed (`web` → `wec`): the signature fails. */
async function tamperedCsr(): Promise<Uint8Array> {
  const der = (await kernelCsr()).slice();
  const needle = new TextEncoder().encode("acme.test/web");
  for (let i = 0; i < der.length - needle.length; i++) {
    if (needle.every((b, j) => der[i + j] === b)) {
      der[i + needle.length - 1] = "c".charCodeAt(0);
      return der;
    }
  }
  throw new Error("Cannot tamper the kernel CSR: SPIFFE ID not found");
}

const cert = (der: Uint8Array) => new x509.X509Certificate(der.slice().buffer as ArrayBuffer);

async function openssl(args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** Registers the suite as one `Deno.test` with a step per case. */
export function caConformance(name: string, options: CaConformanceOptions): void {
  Deno.test(`ca conformance: ${name}`, { ignore: options.ignore ?? false }, async (t) => {
    const fixed: Clock = { now: () => CAPTURE_TIME };
    const { ca, clock } = await options.setup(fixed);
    const skew = options.clockSkewMs ?? 0;
    const signal = new AbortController().signal;
    const csr = await kernelCsr();
    const csrKey = new Uint8Array(parseCsr(csr).publicKey.rawData);
    const sign = (over: Partial<Parameters<CertificateAuthority["sign"]>[0]> = {}) =>
      ca.sign({ csr, spiffeId: WEB, dnsNames: [], ttlMs: HOUR, ...over }, signal);
    const step = async (c: ConformanceCase, fn: () => Promise<void>) => {
      const why = options.skip?.[c];
      if (why) await t.step({ name: `${c} (skipped: ${why})`, ignore: true, fn: () => {} });
      else await t.step(c, fn);
    };
    try {
      await step("signs the real kernel CSR", async () => {
        const before = clock.now();
        const r = await sign({ dnsNames: ["web.acme.test"] });
        const leaf = cert(r.certificate);
        assert.deepEqual(new Uint8Array(leaf.publicKey.rawData), csrKey, "leaf key is the CSR's");
        const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
        assert.deepEqual(san.names.items.map((n) => `${n.type}:${n.value}`).sort(), [
          "dns:web.acme.test",
          `url:${WEB}`,
        ]);
        assert.equal(leaf.getExtension(x509.BasicConstraintsExtension)?.ca, false);
        const ku = leaf.getExtension(x509.KeyUsagesExtension)!.usages;
        assert.equal(ku, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
        assert.deepEqual(
          [...leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages].sort(),
          [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth].sort(),
        );
        const root = cert(r.trustAnchors[0]!);
        if (root.publicKey.algorithm.name !== "ECDSA") {
          assert.equal(leaf.signatureAlgorithm.name, "RSASSA-PKCS1-v1_5", "PKCS#1 v1.5, not PSS");
          assert.equal(
            (leaf.signatureAlgorithm as { hash?: { name: string } }).hash?.name,
            "SHA-256",
          );
        }
        const nb = leaf.notBefore.getTime();
        assert.ok(nb <= before + skew, "notBefore is not in the future");
        assert.ok(nb >= before - 10 * 60_000 - skew, "notBefore is backdated by minutes at most");
      });

      await step("serials are random and at least 128 bits", async () => {
        const a = cert((await sign()).certificate).serialNumber.replace(/^0+/, "");
        const b = cert((await sign()).certificate).serialNumber.replace(/^0+/, "");
        assert.notEqual(a, b);
        assert.ok(a.length >= 32 && b.length >= 32, `serials ${a}, ${b} have fewer than 128 bits`);
      });

      await step("refuses a tampered CSR", async () => {
        await assert.rejects(sign({ csr: await tamperedCsr() }), CsrRejectedError);
        const badSig = csr.slice();
        badSig[badSig.length - 3]! ^= 0x01;
        await assert.rejects(sign({ csr: badSig }), CsrRejectedError);
      });

      await step("honours the requested TTL and its maximum", async () => {
        let now = clock.now();
        const short = cert((await sign({ ttlMs: 60_000 })).certificate);
        assert.ok(short.notAfter.getTime() <= now + 60_000 + skew + 1000, "60 s TTL honoured");
        assert.ok(short.notAfter.getTime() >= now + 60_000 - skew - 1000, "60 s TTL not cut short");
        now = clock.now();
        const long = cert((await sign({ ttlMs: ca.maxTtlMs * 10 })).certificate);
        assert.ok(long.notAfter.getTime() <= now + ca.maxTtlMs + skew + 1000, "capped at maxTtlMs");
      });

      await step("openssl verify accepts the chain", async () => {
        const r = await sign();
        const dir = await Deno.makeTempDir({ prefix: "ca-conformance-" });
        try {
          const pem = (ders: Uint8Array[]) => ders.map((d) => encodePem("CERTIFICATE", d)).join("");
          await Deno.writeTextFile(`${dir}/leaf.pem`, pem([r.certificate]));
          await Deno.writeTextFile(`${dir}/anchors.pem`, pem(r.trustAnchors));
          await Deno.writeTextFile(`${dir}/chain.pem`, pem(r.chain));
          const at = String(Math.floor(clock.now() / 1000));
          for (const purpose of ["sslserver", "sslclient"]) {
            const args = ["verify", "-x509_strict", "-purpose", purpose, "-attime", at];
            args.push("-CAfile", `${dir}/anchors.pem`);
            if (r.chain.length > 0) args.push("-untrusted", `${dir}/chain.pem`);
            const v = await openssl([...args, `${dir}/leaf.pem`]);
            assert.equal(v.code, 0, `openssl verify (${purpose}): ${v.out}`);
            assert.match(v.out, /: OK/);
          }
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      });

      await step("the kernel answer is well formed and trusted", async () => {
        const r = await sign();
        const answer = kernelCsrAnswer(
          r.certificate,
          r.chain,
          r.trustAnchors.map(kernelTrustAnchor),
        );
        const check = await checkKernelAnswer(answer, { now: clock.now() });
        assert.deepEqual(check.problems, []);
        assert.ok(check.trusted, check.untrustedReason);
      });

      await step("trustBundle matches the anchors of sign", async () => {
        const r = await sign();
        const bundle = await ca.trustBundle();
        const b64 = (ds: Uint8Array[]) => ds.map((d) => btoa(String.fromCharCode(...d))).sort();
        assert.deepEqual(b64(bundle), b64(r.trustAnchors));
        assert.ok(bundle.length >= 1);
      });
    } finally {
      await ca.dispose?.();
    }
  });
}
