/**
 * The protobuf wire helpers moved to the plugin SDK (`plugins/sdk/proto.ts`); this re-export keeps
 * the attestors' imports working.
 *
 * @module
 */
export {
  decodeFields,
  encodeMessage,
  msg,
  type ProtoFields,
  type ProtoValue,
  str,
  stringMap,
} from "../../sdk/proto.ts";
