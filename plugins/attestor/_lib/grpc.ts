/**
 * The gRPC client moved to the plugin SDK (`plugins/sdk/grpc.ts`) so CA plugins share it; this
 * re-export keeps the attestors' imports working.
 *
 * @module
 */
export { GRPC_NOT_FOUND, GrpcError, GrpcUnixClient } from "../../sdk/grpc.ts";
