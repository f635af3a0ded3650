#!/usr/bin/env node
// Builds packages/kernels/build/mbert.node from native/ with g++ (and nvcc when
// found). Objects are cached under build/obj/ keyed by a hash of the source, the
// headers it may include and the flags, so a rebuild only recompiles what changed.
//
// Environment:
//   MBERT_CUDA=0|1        0 skips CUDA; 1 makes a missing nvcc an error (default: auto)
//   MBERT_CUDA_ARCHS      overrides the -gencode list, e.g. "sm_90a" or "sm_90a,compute_80"
//   CUDA_HOME/CUDA_PATH   where to look for bin/nvcc and lib64 (default /usr/local/cuda)
//   CXX                   host compiler (default g++)
//   MBERT_JOBS            parallel compile jobs (default: number of CPUs)

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// Sources: the monorepo's native/ when building in the workspace, or the copy
// a published package carries (packed by `prepack`).
const rootDir = path.resolve(pkgDir, "../..");
const nativeDir =
  [path.join(pkgDir, "native"), path.resolve(pkgDir, "../../native")].find((d) =>
    fs.existsSync(path.join(d, "common")),
  ) ?? path.resolve(pkgDir, "../../native");
const buildDir = path.join(pkgDir, "build");
const objDir = path.join(buildDir, "obj");
const outFile = path.join(buildDir, "mbert.node");
const t0 = Date.now();

function fail(msg) {
  console.error(`build-native: error: ${msg}`);
  process.exit(1);
}

function log(msg) {
  console.log(`build-native: ${msg}`);
}

function listFiles(dir, ext) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(ext))
    .sort()
    .map((f) => path.join(dir, f));
}

// ---- include directories ------------------------------------------------------

function findNodeHeaders() {
  const candidates = [
    process.env.MBERT_NODE_HEADERS,
    "/usr/include/node",
    path.resolve(path.dirname(process.execPath), "..", "include", "node"),
  ].filter(Boolean);
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, "node_api.h"))) return dir;
  }
  fail(
    `Node headers (node_api.h) not found in ${candidates.join(", ")}. ` +
      "Install the Node development headers (e.g. apt-get install libnode-dev) or set MBERT_NODE_HEADERS.",
  );
}

function findAddonApi() {
  try {
    const require = createRequire(path.join(pkgDir, "package.json"));
    return path.dirname(require.resolve("node-addon-api/package.json"));
  } catch {
    fail("node-addon-api is not installed; run `pnpm install` at the repository root.");
  }
}

const nodeHeaders = findNodeHeaders();
const addonApi = findAddonApi();
const includes = [nativeDir, nodeHeaders, addonApi];

// ---- compilers and flags ---------------------------------------------------------

const cxx = process.env.CXX || "g++";
const cxxVersion = (() => {
  const r = spawnSync(cxx, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) fail(`C++ compiler '${cxx}' not found or not working (set CXX).`);
  return r.stdout.split("\n")[0].trim();
})();

const hasAvx2 = (() => {
  if (process.arch !== "x64") return false;
  try {
    return /\bavx2\b/.test(fs.readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    return false;
  }
})();

// Shared by g++ and nvcc (host side): exceptions are on everywhere so that every
// translation unit agrees on node-addon-api's error handling.
const commonDefines = ["-DNAPI_VERSION=8", "-DNAPI_CPP_EXCEPTIONS", "-DNODE_ADDON_API_DISABLE_DEPRECATED"];
const cxxFlags = [
  "-O3",
  "-std=c++17",
  "-fPIC",
  "-pthread",
  "-fvisibility=hidden",
  "-Wall",
  "-Wno-unused-function",
  ...(hasAvx2 ? ["-mavx2", "-mfma", "-mf16c"] : []),
  ...commonDefines,
];

function findNvcc() {
  const homes = [process.env.CUDA_HOME, process.env.CUDA_PATH, "/usr/local/cuda"].filter(Boolean);
  for (const home of homes) {
    const nvcc = path.join(home, "bin", "nvcc");
    if (fs.existsSync(nvcc)) return { nvcc, home };
  }
  const r = spawnSync("sh", ["-c", "command -v nvcc"], { encoding: "utf8" });
  if (r.status === 0 && r.stdout.trim()) {
    const nvcc = fs.realpathSync(r.stdout.trim());
    return { nvcc, home: path.resolve(path.dirname(nvcc), "..") };
  }
  return null;
}

const cudaSources = listFiles(path.join(nativeDir, "cuda"), ".cu");
const cudaMode = process.env.MBERT_CUDA ?? "auto";
let cuda = null;
let cudaReason = "";
if (cudaMode === "0") {
  cudaReason = "built without CUDA (MBERT_CUDA=0)";
} else {
  const found = findNvcc();
  if (!found) {
    if (cudaMode === "1")
      fail("MBERT_CUDA=1 but nvcc was not found (looked in CUDA_HOME, CUDA_PATH, /usr/local/cuda, PATH).");
    cudaReason = "built without CUDA (nvcc not found at build time)";
  } else if (cudaSources.length === 0) {
    if (cudaMode === "1") fail("MBERT_CUDA=1 but native/cuda has no .cu sources.");
    cudaReason = "built without CUDA (no sources in native/cuda)";
  } else {
    const v = spawnSync(found.nvcc, ["--version"], { encoding: "utf8" });
    const version = (v.stdout || "").trim().split("\n").pop() ?? "";
    cuda = { ...found, version };
  }
}

function gencodeFlags() {
  const spec = process.env.MBERT_CUDA_ARCHS;
  if (!spec) {
    return ["-gencode=arch=compute_90a,code=sm_90a", "-gencode=arch=compute_80,code=compute_80"];
  }
  return spec
    .split(/[,\s]+/)
    .filter(Boolean)
    .map((a) => {
      if (a.startsWith("-gencode")) return a;
      const m = /^(sm|compute)_(\w+)$/.exec(a);
      if (!m) fail(`MBERT_CUDA_ARCHS: cannot parse '${a}' (use e.g. sm_90a or compute_80)`);
      return `-gencode=arch=compute_${m[2]},code=${a}`;
    });
}

const nvccFlags = cuda
  ? [
      "-O3",
      "-std=c++17",
      "--expt-relaxed-constexpr",
      "-Xcompiler",
      "-fPIC",
      "-Xcompiler",
      "-fvisibility=hidden",
      ...gencodeFlags(),
      "-DMBERT_WITH_CUDA",
      ...commonDefines,
    ]
  : [];

// binding.cc reports how it was built through buildInfo()/cudaStatus().
const cFlagString = cxxFlags.join(" ");
const bindingDefines = [
  `-DMBERT_BUILD_FLAGS="${(cuda ? `${cFlagString}; nvcc: ${nvccFlags.join(" ")}` : cFlagString).replace(/"/g, "'")}"`,
  `-DMBERT_NO_CUDA_REASON="${cudaReason.replace(/"/g, "'")}"`,
];

// ---- jobs -----------------------------------------------------------------------

const commonHeaders = listFiles(path.join(nativeDir, "common"), ".h");
const headerCache = new Map();
function fileHash(file) {
  let h = headerCache.get(file);
  if (!h) {
    h = createHash("sha256").update(fs.readFileSync(file)).digest("hex");
    headerCache.set(file, h);
  }
  return h;
}

function makeJob(src, kind) {
  const dir = path.dirname(src);
  const headers = [...new Set([...commonHeaders, ...listFiles(dir, ".h"), ...listFiles(dir, ".cuh")])].sort();
  const isBinding = path.basename(src) === "binding.cc";
  const flags = kind === "cu" ? nvccFlags : isBinding ? [...cxxFlags, ...bindingDefines] : cxxFlags;
  const tool = kind === "cu" ? cuda.nvcc : cxx;
  const hash = createHash("sha256");
  hash.update(
    `${tool}\n${kind === "cu" ? cuda.version : cxxVersion}\n${flags.join("\0")}\n${includes.join("\0")}\n`,
  );
  hash.update(fileHash(src));
  for (const h of headers) hash.update(`${path.relative(nativeDir, h)}:${fileHash(h)}`);
  const rel = path.relative(nativeDir, src).replace(/[\\/]/g, "_");
  const obj = path.join(objDir, `${rel}.${hash.digest("hex").slice(0, 16)}.o`);
  const args = [...flags, ...includes.map((i) => `-I${i}`), "-c", src, "-o", `${obj}.${process.pid}.tmp`];
  return { src, obj, tool, args, rel: path.relative(rootDir, src) };
}

const cxxSources = [
  ...listFiles(path.join(nativeDir, "common"), ".cc"),
  ...listFiles(path.join(nativeDir, "cpu"), ".cc"),
];
if (cxxSources.length === 0) fail(`no C++ sources found under ${nativeDir}`);
const jobs = [
  ...cxxSources.map((s) => makeJob(s, "cc")),
  ...(cuda ? cudaSources.map((s) => makeJob(s, "cu")) : []),
];

fs.mkdirSync(objDir, { recursive: true });

function run(tool, args) {
  return new Promise((resolve) => {
    const child = spawn(tool, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    child.on("error", (e) => resolve({ code: -1, output: String(e) }));
    child.on("close", (code) => resolve({ code, output }));
  });
}

const todo = jobs.filter((j) => !fs.existsSync(j.obj));
log(
  `${jobs.length} sources, ${todo.length} to compile, ${jobs.length - todo.length} cached` +
    ` (${hasAvx2 ? "AVX2+FMA" : "baseline x86-64"}, CUDA: ${cuda ? cuda.nvcc : cudaReason})`,
);
const nJobs = Math.max(1, Number(process.env.MBERT_JOBS) || os.cpus().length);
const failures = [];
let next = 0;
async function worker() {
  while (next < todo.length) {
    const job = todo[next++];
    const start = Date.now();
    const r = await run(job.tool, job.args);
    if (r.code !== 0) {
      failures.push(job);
      console.error(`build-native: FAILED ${job.rel}\n  ${job.tool} ${job.args.join(" ")}\n${r.output}`);
      fs.rmSync(`${job.obj}.${process.pid}.tmp`, { force: true });
      continue;
    }
    if (r.output.trim()) process.stderr.write(r.output);
    fs.renameSync(`${job.obj}.${process.pid}.tmp`, job.obj);
    log(`compiled ${job.rel} (${((Date.now() - start) / 1000).toFixed(1)}s)`);
  }
}
await Promise.all(Array.from({ length: Math.min(nJobs, Math.max(1, todo.length)) }, worker));
if (failures.length > 0)
  fail(`${failures.length} file(s) failed to compile: ${failures.map((j) => j.rel).join(", ")}`);

// ---- link -------------------------------------------------------------------------

const linkArgs = ["-shared", "-o", `${outFile}.${process.pid}.tmp`, ...jobs.map((j) => j.obj), "-pthread"];
if (cuda) {
  const libDirs = ["lib64", "lib", "targets/x86_64-linux/lib"]
    .map((d) => path.join(cuda.home, d))
    .filter((d) => fs.existsSync(d));
  linkArgs.push(...libDirs.map((d) => `-L${d}`), "-lcudart_static", "-ldl", "-lrt");
}
const link = await run(cxx, linkArgs);
if (link.code !== 0) {
  fs.rmSync(`${outFile}.${process.pid}.tmp`, { force: true });
  fail(`link failed:\n  ${cxx} ${linkArgs.join(" ")}\n${link.output}`);
}
fs.renameSync(`${outFile}.${process.pid}.tmp`, outFile);

const info = {
  cuda: Boolean(cuda),
  cudaReason: cuda ? null : cudaReason,
  nvcc: cuda ? { path: cuda.nvcc, version: cuda.version, flags: nvccFlags.join(" ") } : null,
  compiler: `${cxx} (${cxxVersion})`,
  flags: cxxFlags.join(" "),
  avx2: hasAvx2,
  nodeHeaders,
  sources: jobs.map((j) => j.rel),
  builtAt: new Date().toISOString(),
  seconds: (Date.now() - t0) / 1000,
};
fs.writeFileSync(path.join(buildDir, "build-info.json"), `${JSON.stringify(info, null, 2)}\n`);

// Drop objects of older source versions so the cache does not grow forever. Objects
// younger than an hour are kept: a concurrent build (e.g. with other CUDA settings)
// may be about to link them.
const live = new Set(jobs.map((j) => path.basename(j.obj)));
const prefixes = jobs.map((j) => path.basename(j.obj).replace(/\.[0-9a-f]{16}\.o$/, "."));
for (const f of fs.readdirSync(objDir)) {
  if (live.has(f) || !prefixes.some((p) => f.startsWith(p)) || !f.endsWith(".o")) continue;
  const file = path.join(objDir, f);
  try {
    if (Date.now() - fs.statSync(file).mtimeMs > 3600_000) fs.rmSync(file, { force: true });
  } catch {
    // removed concurrently
  }
}
log(`wrote ${path.relative(rootDir, outFile)} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
