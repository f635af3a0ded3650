import { DataUsageError } from "./errors.js";

export interface ParsedArgs {
  flags: Map<string, string | true>;
  positional: string[];
}

/**
 * Parse `--name value`, `--name=value` and boolean `--name` flags. `booleans`
 * lists the flags that take no value; any other flag needs one.
 */
export function parseArgs(argv: string[], booleans: readonly string[], known: readonly string[]): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    if (!booleans.includes(name) && !known.includes(name)) throw new DataUsageError(`unknown flag --${name}`);
    if (booleans.includes(name)) {
      flags.set(name, true);
    } else if (eq >= 0) {
      flags.set(name, a.slice(eq + 1));
    } else {
      const v = argv[++i];
      if (v === undefined) throw new DataUsageError(`--${name} needs a value`);
      flags.set(name, v);
    }
  }
  return { flags, positional };
}

export function stringFlag(p: ParsedArgs, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === "string" ? v : undefined;
}

export function numberFlag(
  p: ParsedArgs,
  name: string,
  opts: { integer?: boolean; min?: number; max?: number } = {},
): number | undefined {
  const s = stringFlag(p, name);
  if (s === undefined) return undefined;
  const v = Number(s);
  if (!Number.isFinite(v) || (opts.integer && !Number.isInteger(v)))
    throw new DataUsageError(`--${name} must be ${opts.integer ? "an integer" : "a number"}, got ${s}`);
  if (opts.min !== undefined && v < opts.min)
    throw new DataUsageError(`--${name} must be >= ${opts.min}, got ${s}`);
  if (opts.max !== undefined && v > opts.max)
    throw new DataUsageError(`--${name} must be <= ${opts.max}, got ${s}`);
  return v;
}
