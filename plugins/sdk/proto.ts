/**
 * Just enough protobuf for the few gRPC messages plugins read and write (containerd, CRI, the
 * SPIFFE Workload API, the SPIRE Server API): field lists off the wire (`@bufbuild/protobuf/wire`)
 * and an encoder for flat messages.
 *
 * @module
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** A decoded field: length-delimited fields as bytes, varints as bigint. */
export type ProtoValue = Uint8Array | bigint;

/** Field number → values in wire order (repeated fields have several). */
export type ProtoFields = Map<number, ProtoValue[]>;

/** Splits a message into its fields; unknown wire types are skipped. */
export function decodeFields(bytes: Uint8Array): ProtoFields {
  const out: ProtoFields = new Map();
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    let v: ProtoValue | undefined;
    if (wt === WireType.LengthDelimited) v = r.bytes();
    else if (wt === WireType.Varint) v = BigInt(r.uint64());
    else r.skip(wt);
    if (v !== undefined) {
      const list = out.get(no) ?? [];
      list.push(v);
      out.set(no, list);
    }
  }
  return out;
}

const dec = new TextDecoder();

/** First value of field `no` as a string ("" when absent). */
export function str(f: ProtoFields, no: number): string {
  const v = f.get(no)?.[0];
  return v instanceof Uint8Array ? dec.decode(v) : "";
}

/** First value of field `no` as bytes (empty when absent). */
export function bytes(f: ProtoFields, no: number): Uint8Array {
  const v = f.get(no)?.[0];
  return v instanceof Uint8Array ? v : new Uint8Array();
}

/** Every value of a repeated `bytes` (or message) field `no`. */
export function bytesList(f: ProtoFields, no: number): Uint8Array[] {
  return (f.get(no) ?? []).filter((v): v is Uint8Array => v instanceof Uint8Array);
}

/** First value of field `no` as an embedded message (empty when absent). */
export function msg(f: ProtoFields, no: number): ProtoFields {
  const v = f.get(no)?.[0];
  return v instanceof Uint8Array ? decodeFields(v) : new Map();
}

/** A `map<string,string>` field (repeated entries with key = 1, value = 2). */
export function stringMap(f: ProtoFields, no: number): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const v of f.get(no) ?? []) {
    if (!(v instanceof Uint8Array)) continue;
    const e = decodeFields(v);
    out[str(e, 1)] = str(e, 2);
  }
  return out;
}

/** A `map<string,bytes>` field (repeated entries with key = 1, value = 2). */
export function bytesMap(f: ProtoFields, no: number): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = Object.create(null);
  for (const v of f.get(no) ?? []) {
    if (!(v instanceof Uint8Array)) continue;
    const e = decodeFields(v);
    out[str(e, 1)] = bytes(e, 2);
  }
  return out;
}

/**
 * Encodes a flat message by field number: strings and bytes length-delimited, booleans and
 * integers (int32/int64, non-negative) as varints.
 *
 * @example
 * ```ts
 * import { decodeFields, encodeMessage, str } from "./proto.ts";
 * str(decodeFields(encodeMessage({ 1: "abc", 2: 7 })), 1); // "abc"
 * ```
 */
export function encodeMessage(
  fields: Record<number, string | boolean | number | Uint8Array>,
): Uint8Array {
  const w = new BinaryWriter();
  for (const [no, v] of Object.entries(fields)) {
    if (typeof v === "string") w.tag(Number(no), WireType.LengthDelimited).string(v);
    else if (v instanceof Uint8Array) w.tag(Number(no), WireType.LengthDelimited).bytes(v);
    else if (typeof v === "number") w.tag(Number(no), WireType.Varint).int64(v);
    else w.tag(Number(no), WireType.Varint).bool(v);
  }
  return w.finish();
}
