import assert from "node:assert/strict";
import { jsonSchemaText, SCHEMA_NAMES, schemaFile } from "./json_schema.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("the committed JSON Schemas are fresh", async (t) => {
  for (const name of SCHEMA_NAMES) {
    await t.step(name, async () => {
      const committed = await Deno.readTextFile(new URL(schemaFile(name), ROOT));
      assert.equal(
        committed,
        jsonSchemaText(name),
        `${schemaFile(name)} is stale; run: deno task start schema --write policies/schema`,
      );
    });
  }
});

Deno.test("the policy schema is strict and describes the fields", () => {
  const schema = JSON.parse(jsonSchemaText("policy"));
  assert.equal(schema.type, "array");
  const item = schema.items;
  assert.equal(item.additionalProperties, false);
  assert.deepEqual(item.required, ["selectors", "certificate"]);
  assert.deepEqual(item.properties.connection.properties.mtls.enum, ["STRICT", "DISABLE", "UNSET"]);
  assert.equal(item.properties.connection.properties.allowedSPIFFEIDs.maxItems, 16);
  assert.deepEqual(item.properties.certificate.required, ["workloadID"]);
});

Deno.test("the service schema requires a port in 1..65535", () => {
  const schema = JSON.parse(jsonSchemaText("service"));
  const address = schema.items.properties.addresses.items;
  assert.deepEqual(address.required, ["address", "port"]);
  assert.equal(address.properties.port.minimum, 1);
  assert.equal(address.properties.port.maximum, 65535);
});
