/**
 * The one template the Camblet policy format knows: `{{.TrustDomain}}`, replaced over the whole
 * file text before YAML parsing (as the Go agent's text/template pass). Anything else between
 * `{{` and `}}` is an error with its line; the Go agent silently fell back to the raw text.
 *
 * @module
 */

/** Values a template may use. */
export interface TemplateValues {
  TrustDomain: string;
}

/** A template problem: 1-based line, character offset and reason. */
export interface TemplateProblem {
  line: number;
  offset: number;
  message: string;
}

const ACTION = /\{\{(.*?)\}\}/gs;

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

/**
 * Replaces `{{.TrustDomain}}` (spaces inside the braces allowed) and reports every other action.
 * Replacements contain no newline, so lines keep their numbers.
 *
 * @example
 * ```ts
 * import { renderTemplate } from "./template.ts";
 * renderTemplate('id: "spiffe://{{ .TrustDomain }}/web"', { TrustDomain: "acme.corp" }).text;
 * // 'id: "spiffe://acme.corp/web"'
 * ```
 */
export function renderTemplate(
  text: string,
  values: TemplateValues,
): { text: string; problems: TemplateProblem[] } {
  if (!text.includes("{{")) return { text, problems: [] };
  const problems: TemplateProblem[] = [];
  const out = text.replace(ACTION, (whole, inner: string, offset: number) => {
    if (inner.trim() === ".TrustDomain") return values.TrustDomain;
    problems.push({
      line: lineAt(text, offset),
      offset,
      message: `unsupported template action ${
        JSON.stringify(whole)
      }: only {{.TrustDomain}} is supported`,
    });
    return whole;
  });
  // An opening `{{` left without its `}}`.
  const rest = text.replace(ACTION, (whole) => " ".repeat(whole.length));
  const open = rest.indexOf("{{");
  if (open >= 0) {
    problems.push({
      line: lineAt(text, open),
      offset: open,
      message: 'unclosed template action: "{{" without "}}"',
    });
  }
  return { text: out, problems };
}
