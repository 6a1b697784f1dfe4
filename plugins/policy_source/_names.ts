/**
 * Which file names are policy or service files. Re-exported from the agent's pure listing module
 * (as plugins/sdk/duration.ts does for durations) so that a directory, a repository and a bundle
 * can never disagree on what `web.yaml~` or `.web.yaml.swp` is.
 *
 * @module
 */
export { isSourceFileName } from "../../agent/policy/files.ts";
