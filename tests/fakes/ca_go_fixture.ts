/**
 * Builds a `ca.pem` the way the Camblet Go agent wrote it, with the openssl CLI: certificate
 * blocks with `Issuer:`/`Subject:`/`Type:` PEM headers, and the RSA key as PKCS#1 under a
 * `PRIVATE KEY` label (which OpenSSL itself would reject). None is shipped, so tests make one.
 *
 * @module
 */

async function openssl(args: string[], cwd: string): Promise<void> {
  const r = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (r.code !== 0) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
}

function body(pem: string): string {
  return pem.replace(/-----[A-Z ]+-----/g, "").trim();
}

function goBlock(label: string, headers: Record<string, string>, pem: string): string {
  const h = Object.entries(headers).map(([k, v]) => `${k}: ${v}\n`).join("");
  return `-----BEGIN ${label}-----\n${h}${h ? "\n" : ""}${body(pem)}\n-----END ${label}-----\n`;
}

/** Options for {@linkcode writeGoCaPem}. */
export interface GoCaOptions {
  /** Also an intermediate (as `camblet ca create-intermediate` printed it; no root key). */
  intermediate?: boolean;
  /** A key that does not belong to the certificate. */
  wrongKey?: boolean;
}

/** Writes a Go-agent style CA file into `dir` and returns its path (and the root PEM for trust). */
export async function writeGoCaPem(
  dir: string,
  options: GoCaOptions = {},
): Promise<{ path: string; rootPem: string }> {
  await openssl(["genrsa", "-traditional", "-out", "root.key", "2048"], dir);
  await openssl([
    "req",
    "-x509",
    "-new",
    "-key",
    "root.key",
    "-subj",
    "/CN=Camblet root CA",
    "-days",
    "3650",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,digitalSignature,keyCertSign",
    "-addext",
    "extendedKeyUsage=serverAuth,clientAuth",
    "-out",
    "root.crt",
  ], dir);
  const rootPem = await Deno.readTextFile(`${dir}/root.crt`);
  const rootKey = await Deno.readTextFile(`${dir}/root.key`);
  if (!rootKey.includes("BEGIN RSA PRIVATE KEY")) throw new Error("openssl did not write PKCS#1");
  const root = goBlock("CERTIFICATE", {
    Issuer: "CN=Camblet root CA",
    Subject: "CN=Camblet root CA",
    Type: "ROOT CA",
  }, rootPem);
  let text: string;
  if (options.intermediate) {
    await openssl(["genrsa", "-traditional", "-out", "int.key", "2048"], dir);
    await openssl(
      ["req", "-new", "-key", "int.key", "-subj", "/CN=node-1 CA", "-out", "int.csr"],
      dir,
    );
    await Deno.writeTextFile(
      `${dir}/int.ext`,
      "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,keyCertSign\n" +
        "subjectAltName=URI:spiffe://acme.test/node-1\n",
    );
    await openssl([
      "x509",
      "-req",
      "-in",
      "int.csr",
      "-CA",
      "root.crt",
      "-CAkey",
      "root.key",
      "-CAcreateserial",
      "-days",
      "365",
      "-extfile",
      "int.ext",
      "-out",
      "int.crt",
    ], dir);
    const intPem = await Deno.readTextFile(`${dir}/int.crt`);
    const intKey = await Deno.readTextFile(`${dir}/int.key`);
    text = goBlock("CERTIFICATE", {
      Issuer: "CN=Camblet root CA",
      Subject: "CN=node-1 CA",
      Type: "INTERMEDIATE CA",
    }, intPem) + goBlock("PRIVATE KEY", {}, intKey) + root;
  } else {
    let key = rootKey;
    if (options.wrongKey) {
      await openssl(["genrsa", "-traditional", "-out", "other.key", "2048"], dir);
      key = await Deno.readTextFile(`${dir}/other.key`);
    }
    text = root + goBlock("PRIVATE KEY", {}, key);
  }
  const path = `${dir}/ca.pem`;
  await Deno.writeTextFile(path, text, { mode: 0o644 });
  return { path, rootPem };
}
