/**
 * Loads a delivered OPA issuance policy (opa-compiled wasm + data) into an
 * {@linkcode IssuanceHook}, reusing the loaded module while its bytes and data stay the same
 * (polling delivers the same bundle again and again).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { loadIssuanceHook } from "../opa/issuance_hook.ts";
import type { DeliveredOpa } from "../../plugins/policy_source/types.ts";
import type { LoadedIssuance } from "./compile_set.ts";

/** Loads hooks, keeping the last few by digest. */
export class IssuanceLoader {
  #cache = new Map<string, LoadedIssuance>();

  /** Loads `opa` for `entrypoint`; throws (TypeError) when the module lacks it or is not wasm. */
  async load(opa: DeliveredOpa, entrypoint: string): Promise<LoadedIssuance> {
    const digest = createHash("sha256").update(opa.wasm)
      .update(JSON.stringify(opa.data ?? {})).update(entrypoint).digest("hex");
    const hit = this.#cache.get(digest);
    if (hit) return { ...hit, path: opa.path };
    let hook;
    try {
      hook = await loadIssuanceHook(opa.wasm as Uint8Array<ArrayBuffer>, {
        entrypoint,
        data: opa.data ?? {},
      });
    } catch (e) {
      throw new TypeError(
        `Cannot load the OPA issuance policy: ${
          (e as Error).message.replace(/^Cannot load issuance policy: /, "")
        }`,
      );
    }
    const loaded: LoadedIssuance = { hook, path: opa.path, entrypoint, digest };
    this.#cache.set(digest, loaded);
    // The hook in force and the one being tried are all that is needed.
    while (this.#cache.size > 4) this.#cache.delete(this.#cache.keys().next().value!);
    return loaded;
  }
}
