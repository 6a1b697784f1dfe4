/**
 * Go-style durations; the implementation is shared with plugins through the SDK.
 *
 * @module
 */
export { formatDuration, formatKernelTtl, parseDuration } from "../plugins/sdk/duration.ts";
