/**
 * Loading plugins, all or nothing. First every selected plugin's config is parsed (pure: the same
 * step `validate` runs) and the kinds' cardinality checked; then instances are created in order,
 * and if one fails, those already created are disposed in reverse order. Errors from a plugin,
 * while loading and afterwards, are prefixed `kind(name): `.
 *
 * @module
 */
import { PLUGIN_KINDS, type PluginContext, type PluginInstance, type PluginKind } from "./types.ts";
import {
  type AnyPluginDefinition,
  BUILTIN_PLUGINS,
  findPlugin,
  type KindInstances,
  pluginNames,
} from "./registry.ts";

/** One plugin the config asks for. */
export interface PluginSelection {
  kind: PluginKind;
  name: string;
  /** Its config, as written. */
  config: unknown;
  /** Where that config lives, for messages (e.g. `plugins.ca.vault`). */
  path: string;
  /** For external plugins; built-ins are looked up in the registry. */
  definition?: AnyPluginDefinition;
}

/** A problem found before anything was started. */
export interface PluginProblem {
  /** Config path, e.g. `plugins.ca.vault.address`. */
  path: string;
  message: string;
}

/** A selection whose config parsed. */
export interface ResolvedPlugin {
  selection: PluginSelection;
  definition: AnyPluginDefinition;
  config: unknown;
}

/** Options for {@linkcode resolvePlugins} and {@linkcode loadPlugins}. */
export interface ResolveOptions {
  registry?: readonly AnyPluginDefinition[];
  /** Kinds whose cardinality is enforced (default: every kind). */
  enforce?: readonly PluginKind[];
}

/** Loading failed; `problems` lists every reason found. */
export class PluginLoadError extends Error {
  override name = "PluginLoadError";
  readonly problems: readonly string[];
  constructor(problems: readonly string[], options?: ErrorOptions) {
    super(
      problems.length === 1 ? problems[0]! : `Cannot load plugins:\n  ${problems.join("\n  ")}`,
      options,
    );
    this.problems = problems;
  }
}

/** The `kind(name): ` prefix of a plugin's errors. */
export function pluginPrefix(kind: PluginKind, name: string): string {
  return `${kind}(${name}): `;
}

function cardinalityProblems(
  selections: readonly PluginSelection[],
  enforce: readonly PluginKind[],
): PluginProblem[] {
  const out: PluginProblem[] = [];
  for (const kind of enforce) {
    const names = selections.filter((s) => s.kind === kind).map((s) => s.name);
    const { cardinality } = PLUGIN_KINDS[kind];
    if (cardinality === "exactly-one" && names.length !== 1) {
      out.push({
        path: `plugins.${kind}`,
        message: names.length === 0
          ? `exactly one ${kind} plugin is required, none is selected`
          : `exactly one ${kind} plugin is required, ${names.length} are selected (${
            names.join(", ")
          })`,
      });
    }
    if (cardinality === "at-least-one" && names.length === 0) {
      out.push({ path: `plugins.${kind}`, message: `at least one ${kind} plugin is required` });
    }
  }
  return out;
}

/**
 * Finds and parses every selection without side effects. Returns every problem at once.
 *
 * @example
 * ```ts
 * import { resolvePlugins } from "./loader.ts";
 * const r = resolvePlugins([{ kind: "ca", name: "nope", config: {}, path: "plugins.ca.nope" }], {
 *   enforce: ["ca"],
 * });
 * r.ok; // false: plugins.ca.nope: unknown ca plugin "nope" (available: self-signed, spire, vault)
 * ```
 */
export function resolvePlugins(
  selections: readonly PluginSelection[],
  options: ResolveOptions = {},
): { ok: true; plugins: ResolvedPlugin[] } | { ok: false; problems: PluginProblem[] } {
  const registry = options.registry ?? BUILTIN_PLUGINS;
  const problems = cardinalityProblems(
    selections,
    options.enforce ?? Object.keys(PLUGIN_KINDS) as PluginKind[],
  );
  const plugins: ResolvedPlugin[] = [];
  for (const selection of selections) {
    const definition = selection.definition ?? findPlugin(selection.kind, selection.name, registry);
    if (!definition) {
      const known = pluginNames(selection.kind, registry);
      problems.push({
        path: selection.path,
        message: `unknown ${selection.kind} plugin "${selection.name}" (available: ${
          known.join(", ") || "none"
        })`,
      });
      continue;
    }
    const parsed = definition.parseConfig(selection.config);
    if (!parsed.ok) {
      for (const p of parsed.problems) {
        problems.push({
          path: p.field ? `${selection.path}.${p.field}` : selection.path,
          message: p.message,
        });
      }
      continue;
    }
    plugins.push({ selection, definition, config: parsed.value });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, plugins };
}

function prefixError(e: unknown, prefix: string): unknown {
  if (e instanceof Error && !e.message.startsWith(prefix)) e.message = prefix + e.message;
  return e;
}

/**
 * Wraps an instance so every error its methods throw or reject with is prefixed (the error keeps
 * its class, so callers can still `instanceof` it).
 */
export function withErrorPrefix<T extends object>(instance: T, prefix: string): T {
  return new Proxy(instance, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        try {
          const result = value.apply(target, args);
          return result instanceof Promise
            ? result.catch((e: unknown) => Promise.reject(prefixError(e, prefix)))
            : result;
        } catch (e) {
          throw prefixError(e, prefix);
        }
      };
    },
  });
}

/** One loaded plugin. */
export interface LoadedPlugin<K extends PluginKind = PluginKind> {
  kind: K;
  name: string;
  instance: KindInstances[K];
}

/** The loaded plugins, by kind, and their disposal. */
export interface LoadedPlugins {
  all: readonly LoadedPlugin[];
  /** Instances of `kind`, in selection order. */
  of<K extends PluginKind>(kind: K): KindInstances[K][];
  /** Disposes everything in reverse order; never throws. */
  dispose(): Promise<void>;
}

async function disposeAll(loaded: readonly LoadedPlugin[], onError?: (e: unknown) => void) {
  for (const p of [...loaded].reverse()) {
    try {
      await (p.instance as PluginInstance).dispose?.();
    } catch (e) {
      onError?.(e);
    }
  }
}

/** Options for {@linkcode loadPlugins}. */
export interface LoadOptions extends ResolveOptions {
  /** The context each plugin is created with (its scoped logger, clock, …). */
  context(kind: PluginKind, name: string): PluginContext;
  /** Called with errors from `dispose` (they never stop the disposal). */
  onDisposeError?(e: unknown): void;
}

/**
 * Resolves, then creates every selected plugin; all or nothing.
 * Throws {@linkcode PluginLoadError} listing every config problem, or the first creation failure
 * (prefixed `kind(name): `) after disposing what was created.
 */
export async function loadPlugins(
  selections: readonly PluginSelection[],
  options: LoadOptions,
): Promise<LoadedPlugins> {
  const resolved = resolvePlugins(selections, options);
  if (!resolved.ok) {
    throw new PluginLoadError(resolved.problems.map((p) => `${p.path}: ${p.message}`));
  }
  const loaded: LoadedPlugin[] = [];
  for (const { selection, definition, config } of resolved.plugins) {
    const prefix = pluginPrefix(selection.kind, selection.name);
    try {
      const instance = await definition.create(
        config,
        options.context(selection.kind, selection.name),
      );
      loaded.push({
        kind: selection.kind,
        name: selection.name,
        instance: withErrorPrefix(instance, prefix) as KindInstances[PluginKind],
      });
    } catch (e) {
      await disposeAll(loaded, options.onDisposeError);
      throw new PluginLoadError([`${prefix}${e instanceof Error ? e.message : String(e)}`], {
        cause: e,
      });
    }
  }
  return {
    all: loaded,
    of: <K extends PluginKind>(kind: K) =>
      loaded.filter((p) => p.kind === kind).map((p) => p.instance as KindInstances[K]),
    dispose: () => disposeAll(loaded, options.onDisposeError),
  };
}
