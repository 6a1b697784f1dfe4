/**
 * `camblet-agent ca …`: the Camblet Go agent's `ca create-root` (`cr`) and `ca create-intermediate`
 * (`cim`), plus `ca rotate` for the self-signed CA files.
 *
 * @module
 */
import type { Command } from "commander";
import { formatProblem, ValidationError } from "../errors.ts";
import { parseDuration } from "../duration.ts";
import { systemClock } from "../../plugins/types.ts";
import { encodePem } from "../../plugins/sdk/pem.ts";
import { exportPkcs8 } from "../../plugins/sdk/keys.ts";
import { createIntermediateCa, createRootCa, type x509 } from "../../plugins/sdk/x509.ts";
import { parseCaFile } from "../../plugins/ca/self_signed/ca_file.ts";
import { caPaths, rotateCa, summarizeCa } from "../../plugins/ca/self_signed/ca_store.ts";
import { parseSelfSignedConfig } from "../../plugins/ca/self_signed/config.ts";
import { caSelection } from "../identity/ca_selection.ts";
import { outputFormat, resolveConfig, usageError } from "./options.ts";

const BACKDATE_MS = 120_000;

const CA_HELP = `
Description:
  Certificate authority tools. create-root and create-intermediate print PEM to stdout, as the
  Camblet Go agent's commands did (save the output as ca.pem to use it). rotate replaces the
  self-signed CA in --ca-pem-path; a running agent picks the new files up without a restart.

Examples:
  camblet-agent ca create-root "Acme root CA" > ca.pem
  camblet-agent ca cim "Acme node CA" node-1 --ca-pem-file ca.pem > node-ca.pem
  camblet-agent ca rotate
`;

function keySize(cmd: Command, value: string): number {
  const n = Number(value);
  if (![2048, 3072, 4096].includes(n)) {
    throw usageError(cmd, `--key-size must be 2048, 3072 or 4096, got "${value}"`);
  }
  return n;
}

function ttl(cmd: Command, value: string): number {
  try {
    const ms = parseDuration(value);
    if (ms > 0) return ms;
  } catch { /* below */ }
  throw usageError(cmd, `--ttl must be a positive duration like "87600h", got "${value}"`);
}

const pemOf = (c: x509.X509Certificate) => encodePem("CERTIFICATE", new Uint8Array(c.rawData));

function registerCreateRoot(ca: Command): void {
  ca.command("create-root")
    .alias("cr")
    .description("print a new self-signed root CA certificate and key (PEM)")
    .argument("<common-name>", "the root's CN")
    .option("--ttl <duration>", "validity", "87600h")
    .option("--key-size <bits>", "RSA key size: 2048, 3072 or 4096", "2048")
    .addHelpText(
      "after",
      `
Description:
  Prints the certificate, then its PKCS#8 private key. RSA keys sign with PKCS#1 v1.5 and
  SHA-256, which camblet-driver can verify.

Examples:
  camblet-agent ca create-root "Acme root CA" > /etc/camblet/ca.pem
  camblet-agent ca cr "Test CA" --ttl 720h --key-size 3072
`,
    )
    .action(async (cn: string, opts: { ttl: string; keySize: string }, cmd: Command) => {
      const now = systemClock.now();
      const root = await createRootCa({
        commonName: cn,
        keySize: keySize(cmd, opts.keySize),
        notBefore: new Date(now - BACKDATE_MS),
        notAfter: new Date(now + ttl(cmd, opts.ttl)),
      });
      const key = encodePem("PRIVATE KEY", await exportPkcs8(root.keys.privateKey));
      await Deno.stdout.write(new TextEncoder().encode(pemOf(root.certificate) + key));
    });
}

function registerCreateIntermediate(ca: Command): void {
  ca.command("create-intermediate")
    .alias("cim")
    .description("print an intermediate CA signed by the CA file, with its key and chain (PEM)")
    .argument("<common-name>", "the intermediate's CN")
    .argument("<identifier>", "path of its URI SAN: spiffe://<trust domain>/<identifier>")
    .option("--ca-pem-file <path>", "the signing CA file (default: the agent's --ca-pem-path)")
    .option("--trust-domain <name>", "SPIFFE trust domain (default: from the config, camblet)")
    .option("--ttl <duration>", "validity (never beyond the signing CA's)", "87600h")
    .option("--key-size <bits>", "RSA key size: 2048, 3072 or 4096", "2048")
    .addHelpText(
      "after",
      `
Description:
  Prints the new intermediate's certificate, its PKCS#8 key, the signing CA's intermediates and
  the root: a complete ca.pem whose signer is the new intermediate (the root key is not in it,
  so that file cannot create further intermediates).

Examples:
  camblet-agent ca create-intermediate "Node 1 CA" node-1 --ca-pem-file ca.pem > node-1.pem
  camblet-agent ca cim "Node 1 CA" node-1 --ca-pem-file ca.pem --trust-domain acme.corp
`,
    )
    .action(
      async (
        cn: string,
        id: string,
        opts: { caPemFile?: string; ttl: string; keySize: string },
        cmd: Command,
      ) => {
        const { config } = await resolveConfig(cmd);
        const file = opts.caPemFile ?? config.agent.caPEMPath;
        const { material } = await parseCaFile(await Deno.readTextFile(file), file);
        const now = systemClock.now();
        const inter = await createIntermediateCa(material.signer, {
          commonName: cn,
          keySize: keySize(cmd, opts.keySize),
          notBefore: new Date(now - BACKDATE_MS),
          notAfter: new Date(now + ttl(cmd, opts.ttl)),
          uri: `spiffe://${config.agent.trustDomain}/${id}`,
        });
        const parentIsRoot = material.signer.certificate.equal(material.root);
        const chain = parentIsRoot ? [] : [material.signer.certificate, ...material.intermediates];
        const out = pemOf(inter.certificate) +
          encodePem("PRIVATE KEY", await exportPkcs8(inter.keys.privateKey)) +
          chain.map(pemOf).join("") + pemOf(material.root);
        await Deno.stdout.write(new TextEncoder().encode(out));
      },
    );
}

function registerRotate(ca: Command): void {
  ca.command("rotate")
    .description("replace the self-signed root (or intermediate); old roots stay trusted a while")
    .option("--ca-pem-path <path>", "self-signed CA file (default: /etc/camblet/ca.pem)")
    .option("--intermediate", "rotate only the intermediate (needs the root key in the CA file)")
    .option("--key-size <bits>", "RSA key size of the new key (default: from the config, 2048)")
    .option("--ttl <duration>", "validity of a new root (default: from the config, 87600h)")
    .option("-o, --output <format>", "text or json", "text")
    .addHelpText(
      "after",
      `
Description:
  Writes a new root (with a new intermediate, if one is configured) or only a new intermediate
  into the CA file. The old root stays in public_ca.crt and in the agent's trust bundle
  (retired_ca.crt records until when) until the last certificate it signed has expired, at most
  plugins.ca.self-signed.maxCertTtl (default 168h) from now. Every file is replaced atomically;
  a running agent reloads them within a second. Settings come from plugins.ca.self-signed.

Examples:
  camblet-agent ca rotate
  camblet-agent ca rotate --intermediate
  camblet-agent ca rotate --ca-pem-path ./ca.pem --output json
`,
    )
    .action(
      async (
        opts: { intermediate?: boolean; keySize?: string; ttl?: string; output?: string },
        cmd: Command,
      ) => {
        const format = outputFormat(cmd, opts.output, ["text", "json"] as const);
        const { config } = await resolveConfig(cmd);
        const selection = caSelection({ ...config, agent: { ...config.agent, ca: "self-signed" } });
        const raw = { ...(selection.config as Record<string, unknown>) };
        if (opts.keySize !== undefined) raw["keySize"] = keySize(cmd, opts.keySize);
        if (opts.ttl !== undefined) raw["rootTtl"] = opts.ttl;
        const parsed = parseSelfSignedConfig(raw);
        if (!parsed.ok) {
          const problems = parsed.problems.map((p) => ({
            field: `${selection.path}.${p.field}`,
            message: p.message,
          }));
          for (const p of problems) console.error(formatProblem(p));
          throw new ValidationError(
            "Cannot rotate the CA: invalid plugins.ca.self-signed",
            problems,
          );
        }
        const target = opts.intermediate ? "intermediate" : "root";
        const update = await rotateCa(parsed.value, systemClock, { force: target });
        const summary = summarizeCa(update.state);
        const paths = caPaths(parsed.value.caPemPath);
        if (format === "json") {
          console.log(JSON.stringify({ rotated: target, files: paths, ...summary }, null, 2));
          return;
        }
        console.log(`rotated the ${target} in ${paths.caPem}`);
        console.log(
          `  root:   ${summary.root.subject} serial ${summary.root.serial}, until ${summary.root.notAfter}`,
        );
        if (summary.signer.serial !== summary.root.serial) {
          console.log(
            `  signer: ${summary.signer.subject} serial ${summary.signer.serial}, until ${summary.signer.notAfter}`,
          );
        }
        for (const r of summary.retired) {
          console.log(`  still trusted until ${r.keepUntil}: ${r.subject} serial ${r.serial}`);
        }
        console.log(
          `wrote ${paths.caPem}, ${paths.publicCa}${target === "root" ? `, ${paths.retired}` : ""}`,
        );
      },
    );
}

/** Registers `ca` and its subcommands. */
export function registerCa(program: Command): void {
  const ca = program.command("ca")
    .description("certificate authority tools (create-root, create-intermediate, rotate)")
    .addHelpText("after", CA_HELP);
  registerCreateRoot(ca);
  registerCreateIntermediate(ca);
  registerRotate(ca);
}
