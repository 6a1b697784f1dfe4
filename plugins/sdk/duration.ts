/**
 * Go-style durations (`24h`, `3600s`) for plugin configs and the kernel's TTL strings.
 *
 * Re-exported from the agent's pure, dependency-free duration module so that plugins and the agent
 * can never disagree on what `"87600h"` means.
 *
 * @module
 */
export { formatDuration, formatKernelTtl, parseDuration } from "../../agent/duration.ts";
