/**
 * Build identity of this agent.
 *
 * @module
 */
import meta from "../deno.json" with { type: "json" };

/** The agent's version, from deno.json. */
export const VERSION: string = meta.version;

/** `camblet-agent 0.1.0 (deno 2.9.6, v8 …, typescript …, x86_64-unknown-linux-gnu)`. */
export function versionLine(): string {
  const d = Deno.version;
  return `camblet-agent ${VERSION} (deno ${d.deno}, v8 ${d.v8}, typescript ${d.typescript}, ${Deno.build.target})`;
}
