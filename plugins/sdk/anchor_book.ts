/**
 * The trust anchors a CA plugin with an upstream hands out, gathered from several sources (the
 * chain of the current CA certificate, the upstream's published roots, federated bundles) plus
 * retired roots kept until the last leaf chaining to them expires. Expired roots drop out; with
 * camblet-driver, non-RSA roots are left out (and named) instead of breaking every answer.
 *
 * @module
 */
import { certOf, uniqueDer } from "./ca_chain.ts";
import { toBase64 } from "./pem.ts";
import { keyType } from "./x509.ts";

/** The current anchors and what was left out. */
export interface AnchorSet {
  anchors: Uint8Array[];
  /** `"CN=x": why` for each root left out. */
  dropped: string[];
}

interface Retired {
  der: Uint8Array;
  keepUntil: number;
}

/** Anchors by source. */
export class AnchorBook {
  #sources = new Map<string, Uint8Array[]>();
  #retired: Retired[] = [];
  #rsaOnly: boolean;
  #cache: { set: AnchorSet; validUntil: number } | undefined;

  /** `rsaOnly`: leave out roots whose key is not RSA (the kernel driver is the consumer). */
  constructor(options: { rsaOnly: boolean }) {
    this.#rsaOnly = options.rsaOnly;
  }

  /** Replaces the anchors of `source`. */
  set(source: string, ders: readonly Uint8Array[]): void {
    this.#sources.set(source, uniqueDer(ders));
    this.#cache = undefined;
  }

  /** Keeps `ders` trusted until `keepUntil` (epoch ms) even when no source lists them any more. */
  retire(ders: readonly Uint8Array[], keepUntil: number): void {
    for (const der of ders) {
      const k = toBase64(der);
      const old = this.#retired.find((r) => toBase64(r.der) === k);
      if (old) old.keepUntil = Math.max(old.keepUntil, keepUntil);
      else this.#retired.push({ der, keepUntil });
    }
    this.#cache = undefined;
  }

  /** The anchors to hand out at `now`. */
  current(now: number): AnchorSet {
    if (this.#cache && now < this.#cache.validUntil) return this.#cache.set;
    this.#retired = this.#retired.filter((r) => r.keepUntil > now);
    const dropped: string[] = [];
    const anchors: Uint8Array[] = [];
    let validUntil = Infinity;
    const all = uniqueDer([
      ...[...this.#sources.values()].flat(),
      ...this.#retired.map((r) => r.der),
    ]);
    for (const der of all) {
      const cert = certOf(der);
      const notAfter = cert.notAfter.getTime();
      if (notAfter <= now) {
        dropped.push(`"${cert.subject}": expired at ${cert.notAfter.toISOString()}`);
        continue;
      }
      if (this.#rsaOnly && keyType(cert) !== "RSA") {
        dropped.push(`"${cert.subject}": ${keyType(cert)} key (camblet-driver verifies only RSA)`);
        continue;
      }
      anchors.push(der);
      validUntil = Math.min(validUntil, notAfter);
    }
    for (const r of this.#retired) validUntil = Math.min(validUntil, r.keepUntil);
    const set = { anchors, dropped };
    this.#cache = { set, validUntil };
    return set;
  }
}
