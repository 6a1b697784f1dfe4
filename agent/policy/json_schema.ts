/**
 * JSON Schema of the policy and service file formats, generated from the zod schemas (the files
 * committed under policies/schema/ are this output; a test keeps them fresh).
 *
 * @module
 */
import { z } from "zod";
import { policyFileSchema, serviceFileSchema } from "./schema.ts";

/** The file formats `camblet-agent schema` knows, by name. */
export const SCHEMA_NAMES = ["policy", "service"] as const;
/** One of {@linkcode SCHEMA_NAMES}. */
export type SchemaName = (typeof SCHEMA_NAMES)[number];

const SCHEMAS: Record<SchemaName, z.ZodType> = {
  policy: policyFileSchema,
  service: serviceFileSchema,
};

/** Where the committed copy of a schema lives, relative to the repository root. */
export function schemaFile(name: SchemaName): string {
  return `policies/schema/${name}.schema.json`;
}

/**
 * The JSON Schema (draft 2020-12) of a file format, as pretty-printed text ending in a newline.
 *
 * @example
 * ```ts
 * import { jsonSchemaText } from "./json_schema.ts";
 * JSON.parse(jsonSchemaText("service")).type; // "array"
 * ```
 */
export function jsonSchemaText(name: SchemaName): string {
  const schema = z.toJSONSchema(SCHEMAS[name], { io: "input", unrepresentable: "any" });
  return JSON.stringify(schema, null, 2) + "\n";
}
