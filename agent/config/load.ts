/**
 * Loads configuration from its layers with precedence flags > env > file > defaults, validates it
 * with one schema and reports every problem at once, each naming the layer it came from.
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { type Problem, ValidationError } from "../errors.ts";
import { logger } from "../log.ts";
import { issuesToProblems } from "../problems.ts";
import { readRegularFile } from "../../plugins/sdk/regular_file.ts";
import { type Config, CONFIG_DIR, configSchema } from "./schema.ts";

/** Where the config file is looked for when `--config` is not given. */
export const CONFIG_SEARCH = ["./config.yaml", `${CONFIG_DIR}/config.yaml`];

type Raw = Record<string, unknown>;

const log = logger("config");

/** Flag values already mapped to config paths, e.g. `{ "agent.trustDomain": "acme" }`. */
export type FlagValues = Record<string, unknown>;

/** Options for {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** Explicit config file (`--config` / `CONFIG`); must exist. */
  configPath?: string | undefined;
  /** Environment to read `AGENT_*` from; defaults to `Deno.env.toObject()`. */
  env?: Record<string, string>;
  /** Flag values by config path; only flags the user set. */
  flags?: FlagValues;
  /** Flag names by config path, for messages (`flag --trust-domain`). */
  flagNames?: Record<string, string>;
  /** Paths searched when `configPath` is absent (tests override). */
  search?: readonly string[];
}

/** A loaded configuration and where it came from. */
export interface LoadedConfig {
  config: Config;
  /** The config file read, if any. */
  file: string | undefined;
  /** Layer of every value that did not come from defaults, by dotted path. */
  origins: Record<string, string>;
  /** What is wrong but not fatal (also logged), e.g. secrets in a file others can read. */
  warnings?: string[];
}

interface ZodLike {
  def: { type: string; innerType?: ZodLike; shape?: Record<string, ZodLike> };
}

function unwrap(s: ZodLike): ZodLike {
  while (s.def.innerType) s = s.def.innerType;
  return s;
}

/** Leaf paths of the `agent` section with their zod type, for the `AGENT_*` env mapping. */
function leaves(s: ZodLike, path: string[], out: Map<string, { path: string[]; type: string }>) {
  const u = unwrap(s);
  if (u.def.type === "object" && u.def.shape) {
    for (const [k, v] of Object.entries(u.def.shape)) leaves(v, [...path, k], out);
    return;
  }
  out.set(path.join("_").toUpperCase(), { path, type: u.def.type });
}

const ENV_KEYS = (() => {
  const out = new Map<string, { path: string[]; type: string }>();
  const agent = (configSchema as unknown as ZodLike).def.shape!["agent"]!;
  leaves(agent, ["agent"], out);
  return out;
})();

/** The env var names the agent reads, e.g. `AGENT_TRUSTDOMAIN`. */
export function envVariableNames(): string[] {
  return [...ENV_KEYS.keys()].sort();
}

function setPath(obj: Raw, path: readonly string[], value: unknown) {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    const next = o[k];
    if (next === null || typeof next !== "object" || Array.isArray(next)) o[k] = {};
    o = o[k] as Raw;
  }
  o[path[path.length - 1]!] = value;
}

function coerceEnv(value: string, type: string): unknown {
  switch (type) {
    case "boolean":
      return /^(1|true|yes|on)$/i.test(value)
        ? true
        : /^(0|false|no|off)$/i.test(value)
        ? false
        : value;
    case "number":
      return value.trim() !== "" && !Number.isNaN(Number(value)) ? Number(value) : value;
    case "union":
    case "array":
      return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
    default:
      return value;
  }
}

function deepMerge(base: Raw, over: Raw): Raw {
  const out: Raw = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" &&
        !Array.isArray(b)
      ? deepMerge(b as Raw, v as Raw)
      : v;
  }
  return out;
}

function recordOrigins(obj: unknown, path: string[], origin: string, out: Record<string, string>) {
  if (obj && typeof obj === "object" && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) recordOrigins(v, [...path, k], origin, out);
  } else if (path.length) out[path.join(".")] = origin;
}

// Keys whose string values are secrets; `…File`/`…Path` keys name files instead.
const SECRET_KEY = /token|secret|password|passwd|credential|authorization|apikey/i;

/** Dotted paths of the non-empty secret values in a config document. */
export function secretKeys(doc: unknown, path: string[] = [], out: string[] = []): string[] {
  if (Array.isArray(doc)) doc.forEach((v, i) => secretKeys(v, [...path, String(i)], out));
  else if (doc && typeof doc === "object") {
    for (const [k, v] of Object.entries(doc)) {
      if (typeof v === "string" && v !== "" && SECRET_KEY.test(k) && !/(file|path)$/i.test(k)) {
        out.push([...path, k].join("."));
      } else secretKeys(v, [...path, k], out);
    }
  }
  return out;
}

async function readFileLayer(
  options: LoadConfigOptions,
  problems: Problem[],
  warnings: string[],
): Promise<{ file: string | undefined; raw: Raw }> {
  const candidates = options.configPath ? [options.configPath] : options.search ?? CONFIG_SEARCH;
  for (const file of candidates) {
    let text: string;
    let mode = 0;
    try {
      // Regular files only: a FIFO named config.yaml must not hang the start.
      const bytes = await readRegularFile(file, { check: (info) => void (mode = info.mode) });
      text = new TextDecoder().decode(bytes);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound && !options.configPath) continue;
      problems.push({ file, message: `cannot read config file: ${(e as Error).message}` });
      return { file, raw: {} };
    }
    try {
      const doc = parseYaml(text, { maxAliasCount: 100 }) as unknown;
      if (doc === null || doc === undefined) return { file, raw: {} };
      if (typeof doc !== "object" || Array.isArray(doc)) {
        problems.push({ file, message: "config file must be a YAML map with an `agent:` key" });
        return { file, raw: {} };
      }
      const secrets = secretKeys(doc);
      if (secrets.length && (mode & 0o044) !== 0) {
        warnings.push(
          `config file "${file}" is readable by group or others (mode 0${
            (mode & 0o777).toString(8)
          }) and holds secrets at ${secrets.join(", ")}: they may have leaked; make it ` +
            `readable by the agent's user only (chmod 600 ${file}), or move them to files`,
        );
      }
      return { file, raw: doc as Raw };
    } catch (e) {
      problems.push({ file, message: `cannot parse YAML: ${(e as Error).message.split("\n")[0]}` });
      return { file, raw: {} };
    }
  }
  return { file: undefined, raw: {} };
}

/**
 * Loads and validates the configuration. Throws {@linkcode ValidationError} listing every problem,
 * each prefixed with the layer it came from (file path, `env AGENT_X`, `flag`).
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const origins: Record<string, string> = {};
  const { file, raw: fileRaw } = await readFileLayer(options, problems, warnings);
  for (const w of warnings) log.warn(w);
  if (file) recordOrigins(fileRaw, [], file, origins);

  const envRaw: Raw = {};
  const env = options.env ?? Deno.env.toObject();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("AGENT_")) continue;
    const leaf = ENV_KEYS.get(name);
    if (!leaf) {
      problems.push({
        source: `env ${name}`,
        message: `unknown variable; known: ${envVariableNames().join(", ")}`,
      });
      continue;
    }
    setPath(envRaw, leaf.path, coerceEnv(value, leaf.type));
    origins[leaf.path.join(".")] = `env ${name}`;
  }

  const flagRaw: Raw = {};
  for (const [path, value] of Object.entries(options.flags ?? {})) {
    if (value === undefined) continue;
    setPath(flagRaw, path.split("."), value);
    const name = options.flagNames?.[path];
    origins[path] = name ? `flag ${name}` : "flag";
  }

  const merged = deepMerge(deepMerge(fileRaw, envRaw), flagRaw);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    for (const p of issuesToProblems(result.error.issues, {}, { input: merged })) {
      const origin = originOf(p.field ?? "", origins) ?? file ?? "config";
      problems.push({ ...p, source: origin });
    }
  }
  if (problems.length || !result.success) {
    throw new ValidationError("Cannot load configuration", problems);
  }
  return { config: result.data, file, origins, warnings };
}

function originOf(field: string, origins: Record<string, string>): string | undefined {
  const dotted = field.replace(/\[(\d+)\]/g, "").replace(/\["([^"]*)"\]/g, ".$1");
  for (let p = dotted; p; p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "") {
    if (origins[p]) return origins[p];
  }
  // An unknown key below a known one: attribute to any layer that set something under it.
  const hit = Object.keys(origins).find((k) => k.startsWith(dotted + "."));
  return hit ? origins[hit] : undefined;
}

/** Parses a config document without touching the environment (used by `validate` on a file). */
export function parseConfigObject(raw: unknown): z.ZodSafeParseResult<Config> {
  return configSchema.safeParse(raw);
}
