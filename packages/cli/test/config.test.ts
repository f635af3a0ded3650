import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { LRMonitor, MemoryMonitor, SpeedMonitor } from "@mbert/train";
import { ConfigError, callbacksFor, loadPretrainConfig, parsePretrainConfig } from "../src/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const cfg = (name: string) => path.join(root, "examples/configs", name);

function issues(text: string, sets: string[] = []): string[] {
  try {
    parsePretrainConfig(text, { file: "t.yaml", sets });
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.key}: ${i.message}`);
    throw e;
  }
  return [];
}

describe("pretrain config", () => {
  it("accepts the published recipes and the demo recipe, resolving references", () => {
    const c = loadPretrainConfig(cfg("mosaic-bert-base.yaml"));
    expect(c.train_loader.dataset.local).toBe("./my-copy-c4");
    expect(c.train_loader.dataset.max_seq_len).toBe(128);
    expect(c.max_duration).toBe("286720000sp");
    expect(c.optimizer.betas).toEqual([0.9, 0.98]);
    loadPretrainConfig(cfg("bert-base.yaml"));
    const d = loadPretrainConfig(cfg("demo.yaml"), { sets: ["optimizer.lr=1e-4", "max_duration=10ba"] });
    expect(d.optimizer.lr).toBe(1e-4);
    expect(d.max_duration).toBe("10ba");
  });

  it("names the key, the value and the expectation", () => {
    const base = loadPretrainConfig(cfg("demo.yaml"));
    const yaml = (patch: string[]) => issues(JSON.stringify(base), patch);
    expect(yaml(["optimizer.lr=fast"])).toEqual(['optimizer.lr: got "fast"; expected a number > 0']);
    expect(yaml(["max_duration=12xy"])[0]).toMatch(/^max_duration: got "12xy"; expected a time string/);
    expect(yaml(["max_duration=0ba"])).toEqual(['max_duration: got "0ba"; expected a duration > 0']);
    expect(yaml(["max_duration=0.5dur"])[0]).toMatch(/^max_duration: got "0.5dur"/);
    expect(yaml(["precision=fp16"])).toEqual(['precision: got "fp16"; expected one of fp32, amp_bf16']);
    expect(yaml(["optimizr.lr=1"])[0]).toMatch(/^optimizr: unknown key; expected one of/);
    expect(yaml(["device_train_microbatch_size=5"])).toEqual([
      "device_train_microbatch_size: got 5; expected a divisor of the per-device batch 16 (global_train_batch_size 16 / 1 processes)",
    ]);
    expect(yaml(["callbacks.wandb={}"])[0]).toMatch(
      /^callbacks.wandb: unknown key; expected one of speed_monitor/,
    );
    expect(yaml(["model.model_config.num_attention_heads=3"])).toEqual([
      "model.model_config.num_attention_heads: got 3; expected a divisor of hidden_size 128",
    ]);
  });

  it("reports invalid YAML, missing keys and bad references", () => {
    expect(issues("a: [1, 2")[0]).toMatch(/^\(yaml\): invalid YAML/);
    expect(issues("- 1\n- 2")).toEqual(["(root): got a list of 2; expected a mapping of keys"]);
    const ref = "$" + "{nope}";
    const missing = issues(`max_seq_len: 128\nrun_name: ${ref}\n`);
    expect(missing).toContain(`run_name: refers to ${ref}, which is not set`);
    expect(missing).toContain("optimizer: is missing; expected a mapping");
  });
});

describe("callbacks from a config", () => {
  it("builds the memory monitor from `callbacks: { memory_monitor: {} }`", () => {
    const base = loadPretrainConfig(cfg("demo.yaml"));
    const c = parsePretrainConfig(
      JSON.stringify({ ...base, callbacks: { memory_monitor: {}, lr_monitor: {} } }),
    );
    const { speed, callbacks } = callbacksFor(c);
    expect(speed).toBeInstanceOf(SpeedMonitor);
    expect(callbacks.some((cb) => cb instanceof LRMonitor)).toBe(true);
    const mm = callbacks.find((cb) => cb instanceof MemoryMonitor) as MemoryMonitor;
    expect(mm.interval).toBe(1);
    const every = parsePretrainConfig(JSON.stringify(base), {
      sets: ["callbacks.memory_monitor.interval=50"],
    });
    expect((callbacksFor(every).callbacks.at(-1) as MemoryMonitor).interval).toBe(50);
    expect(issues(JSON.stringify(base), ["callbacks.memory_monitor.interval=0"])).toEqual([
      "callbacks.memory_monitor.interval: got 0; expected an integer >= 1",
    ]);
  });
});
