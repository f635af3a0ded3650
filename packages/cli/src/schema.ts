/**
 * A small validator for YAML configs: a schema is a tree of field specs,
 * and `validate` collects every problem as `key: got <value>; expected <what>`,
 * unknown keys included, before anything runs.
 */
import { Time, TimeStringError } from "@mbert/train";

export type Spec =
  | { kind: "string"; enum?: readonly string[]; nullable?: boolean; optional?: boolean; doc?: string }
  | {
      kind: "number";
      min?: number;
      max?: number;
      exclusiveMin?: boolean;
      integer?: boolean;
      optional?: boolean;
      nullable?: boolean;
    }
  | { kind: "boolean"; optional?: boolean }
  | { kind: "time"; units?: readonly string[]; integerAs?: string; optional?: boolean; nullable?: boolean }
  | { kind: "object"; fields: Record<string, Spec>; optional?: boolean; nullable?: boolean }
  /** Keys chosen from `entries`, each with its own options object (callbacks, loggers, algorithms). */
  | { kind: "named"; entries: Record<string, Spec>; optional?: boolean; nullable?: boolean }
  | { kind: "array"; items: Spec; length?: number; optional?: boolean; nullable?: boolean }
  | { kind: "union"; options: Spec[]; expected: string; optional?: boolean }
  | { kind: "literal"; value: string; optional?: boolean }
  | { kind: "any"; optional?: boolean };

export interface Issue {
  key: string;
  message: string;
}

export function describe(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === "object") return "a mapping";
  return String(v);
}

function expectedOf(s: Spec): string {
  switch (s.kind) {
    case "string":
      return s.enum ? `one of ${s.enum.join(", ")}` : "a string";
    case "number": {
      const parts = [s.integer ? "an integer" : "a number"];
      if (s.min !== undefined) parts.push(`${s.exclusiveMin ? ">" : ">="} ${s.min}`);
      if (s.max !== undefined) parts.push(`<= ${s.max}`);
      return parts.join(" ");
    }
    case "boolean":
      return "true or false";
    case "time":
      return `a time string such as ${(s.units ?? ["ep", "ba", "sp", "tok", "dur"]).map((u) => `'1${u}'`).join(", ")}`;
    case "object":
    case "named":
      return "a mapping";
    case "array":
      return s.length ? `a list of ${s.length}` : "a list";
    case "union":
      return s.expected;
    case "literal":
      return JSON.stringify(s.value);
    case "any":
      return "anything";
  }
}

function optional(s: Spec): boolean {
  return "optional" in s && s.optional === true;
}

function nullable(s: Spec): boolean {
  return "nullable" in s && s.nullable === true;
}

export function validate(value: unknown, spec: Spec, key: string, issues: Issue[]): void {
  const bad = (extra?: string) =>
    issues.push({ key, message: `got ${describe(value)}; expected ${extra ?? expectedOf(spec)}` });
  if (value === undefined) {
    if (!optional(spec)) issues.push({ key, message: `is missing; expected ${expectedOf(spec)}` });
    return;
  }
  if (value === null) {
    if (!nullable(spec) && !optional(spec)) bad();
    return;
  }
  switch (spec.kind) {
    case "any":
      return;
    case "literal":
      if (value !== spec.value) bad();
      return;
    case "string":
      if (typeof value !== "string" || (spec.enum && !spec.enum.includes(value))) bad();
      return;
    case "boolean":
      if (typeof value !== "boolean") bad();
      return;
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value)) return void bad();
      if (spec.integer && !Number.isInteger(value)) return void bad();
      if (spec.min !== undefined && (spec.exclusiveMin ? value <= spec.min : value < spec.min))
        return void bad();
      if (spec.max !== undefined && value > spec.max) bad();
      return;
    }
    case "time": {
      if (typeof value === "number" && spec.integerAs && Number.isInteger(value) && value >= 0) return;
      if (typeof value !== "string") return void bad();
      try {
        const t = Time.parse(value);
        if (spec.units && !spec.units.includes(t.unit)) bad();
      } catch (e) {
        if (e instanceof TimeStringError) bad();
        else throw e;
      }
      return;
    }
    case "array": {
      if (!Array.isArray(value)) return void bad();
      if (spec.length !== undefined && value.length !== spec.length) return void bad();
      for (let i = 0; i < value.length; i++) validate(value[i], spec.items, `${key}[${i}]`, issues);
      return;
    }
    case "object":
    case "named": {
      if (typeof value !== "object" || Array.isArray(value)) return void bad();
      const fields = spec.kind === "object" ? spec.fields : spec.entries;
      const obj = value as Record<string, unknown>;
      for (const k of Object.keys(obj)) {
        const sub = key ? `${key}.${k}` : k;
        if (!(k in fields)) {
          const known = Object.keys(fields);
          issues.push({ key: sub, message: `unknown key; expected one of ${known.join(", ")}` });
          continue;
        }
        const v = obj[k];
        // `lr_monitor: {}` and `lr_monitor:` (null) both mean "on with defaults".
        validate(spec.kind === "named" && v === null ? {} : v, fields[k]!, sub, issues);
      }
      if (spec.kind === "object") {
        for (const [k, s] of Object.entries(fields)) {
          if (!(k in obj) && !optional(s)) {
            issues.push({ key: key ? `${key}.${k}` : k, message: `is missing; expected ${expectedOf(s)}` });
          }
        }
      }
      return;
    }
    case "union": {
      for (const o of spec.options) {
        const trial: Issue[] = [];
        validate(value, o, key, trial);
        if (trial.length === 0) return;
      }
      bad();
      return;
    }
  }
}
