/**
 * A collector that has some labels but not all (e.g. a binary hash still being computed) rejects
 * with {@linkcode PartialLabelsError}: the runner uses `labels`, reports the message as a warning
 * and treats the answer as incomplete (cached briefly, retried soon). Recognised by shape, so
 * external plugins can do the same: an error with a `labels` object.
 *
 * @module
 */
import type { Labels } from "../../types.ts";

/** Some labels, plus why the rest is missing. */
export class PartialLabelsError extends Error {
  override name = "PartialLabelsError";
  readonly labels: Labels;
  constructor(message: string, labels: Labels) {
    super(message);
    this.labels = labels;
  }
}
