/**
 * The validated, normalised form of policy and service items that the compiler consumes: every
 * value already a string in the form the kernel matches, every item carrying where it came from.
 *
 * @module
 */
import type { KernelCertificate, KernelConnection } from "../../driver/payloads.ts";
import type { RuntimeDocument } from "./runtime.ts";

/** Where an item was written. */
export interface SourceRef {
  /** File path as the user wrote it (directory + name). */
  file: string;
  /** 0-based index in the file's YAML list. */
  item: number;
  /** 1-based line of the item. */
  line?: number;
}

/** One selector map, in written order: label name → values (OR). */
export type SelectorEntries = [name: string, values: string[]][];

/** An egress entry, normalised. */
export interface EgressInput {
  /** 1-based line of the entry (not part of its content). */
  line?: number;
  selectors: SelectorEntries[];
  certificate: KernelCertificate;
  connection?: KernelConnection;
}

/** A policy, normalised: TTL in kernel form, zero values dropped, numbers as written. */
export interface PolicyInput extends EgressInput {
  egress?: EgressInput[];
  /** The `runtime:` section as written (validated); the runtime guard resolves it. */
  runtime?: RuntimeDocument;
}

/** A policy and where it came from. */
export interface PolicySource extends SourceRef {
  policy: PolicyInput;
}

/** One service address. */
export interface ServiceAddress {
  /** IP literal or hostname, as written. */
  address: string;
  port: number;
  /** 1-based line of the address entry. */
  line?: number;
}

/** A service, normalised: labels as `name=value` strings. */
export interface ServiceInput {
  addresses: ServiceAddress[];
  labels: string[];
}

/** A service and where it came from. */
export interface ServiceSource extends SourceRef {
  service: ServiceInput;
}

/** Where a compiled policy (or egress entry) came from. */
export interface PolicyProvenance {
  file: string;
  /** 0-based item index in the file's YAML list. */
  item: number;
  line?: number;
  /** For egress entries: 0-based index in the parent's `egress` list. */
  egress?: number;
}

/** Orders sources by file path (code-unit order, locale-independent), then item index. */
export function compareSources(a: SourceRef, b: SourceRef): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.item - b.item;
}
