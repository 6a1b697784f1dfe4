/**
 * `camblet-agent schema`: the JSON Schema of the policy and service file formats, generated from
 * the same zod schemas the agent validates with.
 *
 * @module
 */
import type { Command } from "commander";
import {
  jsonSchemaText,
  SCHEMA_NAMES,
  schemaFile,
  type SchemaName,
} from "../policy/json_schema.ts";
import { usageError } from "./options.ts";

const HELP = `
Description:
  Prints the JSON Schema (draft 2020-12) of a camblet-agent file format, for editors and CI
  linters. Formats: policy (policy files: a YAML list of policies), service (service files: a
  YAML list of addresses and labels). The schema covers the shape; camblet-agent validate also
  checks what JSON Schema cannot express (SPIFFE IDs, TTLs, kernel limits, hostnames).

  --write DIR writes every schema into DIR as <name>.schema.json (the repository keeps them in
  policies/schema/; regenerate with: deno task start schema --write policies/schema).

Examples:
  camblet-agent schema policy > policy.schema.json
  camblet-agent schema service
  camblet-agent schema --write policies/schema
`;

function isSchemaName(name: string): name is SchemaName {
  return (SCHEMA_NAMES as readonly string[]).includes(name);
}

/** Registers `schema`. */
export function registerSchema(program: Command): void {
  program.command("schema")
    .description(`print the JSON Schema of a file format (${SCHEMA_NAMES.join(", ")})`)
    .argument("[format]", SCHEMA_NAMES.join(" or "))
    .option("--write <dir>", "write every format's schema into <dir>/<format>.schema.json")
    .addHelpText("after", HELP)
    .action(async (format: string | undefined, opts: { write?: string }, cmd: Command) => {
      if (opts.write !== undefined) {
        if (format !== undefined) {
          throw usageError(cmd, "give either a format or --write, not both");
        }
        for (const name of SCHEMA_NAMES) {
          const path = `${opts.write.replace(/\/+$/, "")}/${schemaFile(name).split("/").pop()}`;
          await Deno.writeTextFile(path, jsonSchemaText(name));
          console.error(`wrote ${path}`);
        }
        return;
      }
      if (format === undefined) throw usageError(cmd, "missing format: policy or service");
      if (!isSchemaName(format)) {
        throw usageError(
          cmd,
          `unknown format "${format}"; known: ${SCHEMA_NAMES.join(", ")}`,
        );
      }
      await Deno.stdout.write(new TextEncoder().encode(jsonSchemaText(format)));
    });
}
