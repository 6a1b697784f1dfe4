/**
 * Real RSA test PKI made with the openssl CLI: a root CA and SPIFFE leaf certificates (URI SAN,
 * EKU server+client auth), like the ones camblet issues. The identity manager supplies these in
 * production; the tests write them to a temporary directory.
 *
 * @module
 */

/** PEM material of one workload, the shape `IdentitySource.certificateFor` returns. */
export interface TestIdentity {
  spiffeId: string;
  certPem: string;
  keyPem: string;
  chainPem: string;
  bundlePem: string;
  /** Files in the PKI directory (for openssl s_client/s_server). */
  certFile: string;
  keyFile: string;
  caFile: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A CA in `dir` that issues {@linkcode TestIdentity}s. */
export class TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly caPem: string;
  #serial = 1;

  private constructor(dir: string, caPem: string) {
    this.dir = dir;
    this.caFile = `${dir}/ca.crt`;
    this.caPem = caPem;
  }

  /** Makes a fresh RSA-2048 root CA named `name` in a new temporary directory. */
  static async create(name = "camblet test root"): Promise<TestPki> {
    const dir = await Deno.makeTempDir({ prefix: "camblet-pki-" });
    await openssl([
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-sha256",
      "-days",
      "2",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:true",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ], dir); // deno-fmt-ignore
    return new TestPki(dir, await Deno.readTextFile(`${dir}/ca.crt`));
  }

  /**
   * Issues a leaf for `spiffeId`: RSA-2048, or ECDSA P-256 with `ecdsa` (signed by the RSA
   * root). `exponent3` makes the RSA key like camblet-driver's (public exponent 3).
   */
  async issue(
    spiffeId: string,
    options: { exponent3?: boolean; ecdsa?: boolean } = {},
  ): Promise<TestIdentity> {
    const n = this.#serial++;
    const base = `leaf${n}`;
    const keyOpts = options.ecdsa ? ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"] : [
      "-algorithm",
      "RSA",
      "-pkeyopt",
      "rsa_keygen_bits:2048",
      ...(options.exponent3 ? ["-pkeyopt", "rsa_keygen_pubexp:3"] : []),
    ]; // deno-fmt-ignore
    await openssl(["genpkey", ...keyOpts, "-out", `${base}.key`], this.dir);
    await Deno.writeTextFile(
      `${this.dir}/${base}.ext`,
      `subjectAltName=URI:${spiffeId}\nkeyUsage=critical,digitalSignature${
        options.ecdsa ? "" : ",keyEncipherment"
      }\n` +
        `extendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:false\n`,
    );
    await openssl([
      "req",
      "-new",
      "-key",
      `${base}.key`,
      "-subj",
      "/CN=camblet-protected-workload",
      "-out",
      `${base}.csr`,
    ], this.dir); // deno-fmt-ignore
    await openssl([
      "x509", "-req", "-in", `${base}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key",
      "-set_serial", String(1000 + n), "-days", "1", "-sha256", "-extfile", `${base}.ext`,
      "-out", `${base}.crt`,
    ], this.dir); // deno-fmt-ignore
    return {
      spiffeId,
      certPem: await Deno.readTextFile(`${this.dir}/${base}.crt`),
      keyPem: await Deno.readTextFile(`${this.dir}/${base}.key`),
      chainPem: "",
      bundlePem: this.caPem,
      certFile: `${this.dir}/${base}.crt`,
      keyFile: `${this.dir}/${base}.key`,
      caFile: this.caFile,
    };
  }

  /** Removes the directory. */
  async remove(): Promise<void> {
    await Deno.remove(this.dir, { recursive: true });
  }
}
