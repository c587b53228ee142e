// `npm install` runs this to build the optional native matmul (native/ → native/build/Release/finetune_matmul.node).
// It never fails the install: without a compiler or headers finetune simply keeps the wasm matmul, so every problem
// ends in one line saying why, and exit code 0.
//   FINETUNE_NATIVE=0       skip the build
//   FINETUNE_NATIVE_BLAS=0  do not link OpenBLAS/Accelerate even when found (use the built-in kernel)
//   --can-build             build nothing; exit 0 when this machine has what the build needs, else say why and
//                           exit 1 (.ci/run: where the build can run, a missing addon is a failure, not a skip)
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const nativeDir = join(dirname(fileURLToPath(import.meta.url)), "..", "native");
const built = join(nativeDir, "build", "Release", "finetune_matmul.node");
const require = createRequire(import.meta.url);
const env = process.env;

if (process.argv.includes("--can-build")) {
  const blocker = env.FINETUNE_NATIVE === "0" ? "disabled by FINETUNE_NATIVE=0" : cannotBuild();
  if (blocker) console.log(blocker);
  process.exit(blocker ? 1 : 0);
}

try {
  build();
} catch (error) {
  notBuilt(error instanceof Error ? error.message : String(error));
}
process.exit(0);

function build() {
  if (env.FINETUNE_NATIVE === "0") return console.log("finetune: native matmul skipped (FINETUNE_NATIVE=0); using the wasm matmul");
  const blocker = cannotBuild();
  if (blocker) return notBuilt(blocker);
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) return notBuilt("node-gyp not found");

  const blas = detectBlas();
  // A BLAS that is found but does not compile or link still leaves the built-in kernel.
  const attempts = blas.defines.length > 0 ? [blas.defines, []] : [[]];
  let note = blas.note;
  let failure = "";
  for (const defines of attempts) {
    failure = compile(nodeGyp, defines);
    if (!failure) {
      const info = loadedInfo();
      if (typeof info !== "string") return console.log(`finetune: native matmul built (${info.kernel}, ${info.threads} threads${note})`);
      failure = info;
    }
    if (defines.length > 0) note = `; the BLAS build failed, so the built-in kernel: ${failure}`;
  }
  notBuilt(failure);
}

/** Why the build cannot even start here (no binding.gyp, compiler, make, python or node-gyp), or null. */
function cannotBuild() {
  if (!existsSync(join(nativeDir, "binding.gyp"))) return "native/binding.gyp is missing from this install";
  const missing = missingTools();
  if (missing) return missing;
  if (!findNodeGyp()) return "node-gyp not found (it ships with npm; run this through `npm install`)";
  return null;
}

function notBuilt(reason) {
  console.warn(`finetune: native matmul not built (${reason}); using the wasm matmul, which is slower`);
}

/** A clear reason when a tool node-gyp needs is absent (node-gyp's own message is buried in a stack). */
function missingTools() {
  if (process.platform === "win32") return null; // node-gyp finds Visual Studio itself
  const cxx = env.CXX ? [env.CXX.trim().split(/\s+/)[0] ?? ""] : ["g++", "c++", "clang++"]; // CXX may be "ccache g++"
  if (!cxx.some(onPath)) return `no C++ compiler (${cxx.join("/")}); install one, e.g. apt-get install -y g++ make`;
  if (!onPath("make")) return "`make` not found; install it, e.g. apt-get install -y make";
  if (!env.PYTHON && !onPath("python3") && !onPath("python")) return "python3 not found (node-gyp needs it)";
  return null;
}

function onPath(command) {
  if (command.includes("/")) return existsSync(command);
  return (env.PATH ?? "").split(delimiter).some((dir) => dir && existsSync(join(dir, command)));
}

function findNodeGyp() {
  const candidates = [
    env.npm_config_node_gyp,
    resolveOrNull("node-gyp/bin/node-gyp.js"),
    join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
    join(dirname(process.execPath), "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  ];
  return candidates.find((path) => path && existsSync(path)) ?? null;
}

function resolveOrNull(id) {
  try {
    return require.resolve(id);
  } catch {
    return null;
  }
}

/** Node's installed headers (`<prefix>/include/node`), so node-gyp does not try to download them. */
function nodedirArgs() {
  if (env.npm_config_nodedir) return [];
  const prefix = join(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? [`--nodedir=${prefix}`] : [];
}

/** The gyp defines for the system BLAS, and a note for the summary line. */
function detectBlas() {
  if (env.FINETUNE_NATIVE_BLAS === "0") return { defines: [], note: "; BLAS disabled by FINETUNE_NATIVE_BLAS=0" };
  if (process.platform === "darwin") return { defines: ["-Dfinetune_blas=accelerate"], note: "" };
  if (process.platform === "win32") return { defines: [], note: "" };
  const found = openBlasFromPkgConfig() ?? openBlasFromSearch();
  if (!found) return { defines: [], note: "; OpenBLAS not found: apt-get install -y libopenblas-dev for a faster kernel" };
  const system = /^\/(usr\/)?lib(64)?(\/|$)/.test(found.libdir);
  const defines = ["-Dfinetune_blas=openblas", `-Dfinetune_blas_include=${found.include}`, `-Dfinetune_blas_libdir=${found.libdir}`];
  if (!system) defines.push(`-Dfinetune_blas_rpath=${found.libdir}`);
  return { defines, note: "" };
}

function openBlasFromPkgConfig() {
  if (!onPath("pkg-config")) return null;
  const result = spawnSync("pkg-config", ["--cflags-only-I", "--libs-only-L", "openblas"], { encoding: "utf8" });
  if (result.status !== 0) return null;
  const flags = result.stdout.trim().split(/\s+/);
  const include = flags.find((f) => f.startsWith("-I"))?.slice(2).replace(/\/$/, "") ?? "/usr/include";
  const libdir = flags.find((f) => f.startsWith("-L"))?.slice(2).replace(/\/$/, "") ?? "";
  if (!existsSync(join(include, "cblas.h"))) return null;
  if (libdir && !existsSync(join(libdir, "libopenblas.so")) && !existsSync(join(libdir, "libopenblas.so.0"))) return null;
  return { include, libdir };
}

function openBlasFromSearch() {
  const triple = { x64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu" }[process.arch] ?? "";
  const includes = [
    `/usr/include/${triple}/openblas-pthread`,
    "/usr/include/openblas",
    "/opt/OpenBLAS/include",
    "/usr/local/include",
    `/usr/include/${triple}`,
    "/usr/include",
  ];
  const libdirs = [`/usr/lib/${triple}/openblas-pthread`, `/usr/lib/${triple}`, "/usr/lib64", "/usr/lib", "/opt/OpenBLAS/lib", "/usr/local/lib"];
  const include = includes.find((dir) => existsSync(join(dir, "cblas.h")));
  const libdir = libdirs.find((dir) => existsSync(join(dir, "libopenblas.so")));
  return include && libdir ? { include, libdir } : null;
}

/** configure + build; returns "" on success, else the reason. */
function compile(nodeGyp, defines) {
  rmSync(join(nativeDir, "build"), { recursive: true, force: true });
  for (const args of [["configure", ...nodedirArgs(), "--", ...defines], ["build", "--jobs=max"]]) {
    const result = spawnSync(process.execPath, [nodeGyp, ...args], { cwd: nativeDir, encoding: "utf8", timeout: 600_000 });
    if (result.error) return `node-gyp ${args[0]}: ${result.error.message}`;
    if (result.status !== 0) return `node-gyp ${args[0]} failed: ${firstError(`${result.stdout}\n${result.stderr}`)}`;
  }
  return "";
}

/** The most telling line of node-gyp's output: a compiler error, then gyp's, make's, node-gyp's own. */
function firstError(output) {
  const lines = output.split("\n").map((line) => line.trim()).filter(Boolean);
  const boilerplate = /^gyp ERR! (System|command|cwd|node -v|node-gyp -v|not ok|configure error|build error|stack\s+at )/;
  const line =
    lines.find((l) => /\berror:/i.test(l) && !l.startsWith("gyp")) ??
    lines.find((l) => l.startsWith("gyp: ")) ??
    lines.find((l) => /\berror\b/i.test(l) && !l.startsWith("gyp")) ??
    lines.find((l) => l.startsWith("gyp ERR!") && !boilerplate.test(l))?.replace(/^gyp ERR! (stack )?/, "") ??
    lines.at(-1) ??
    "no output";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** The built addon's info(), or why it does not load (e.g. a BLAS library missing at run time). */
function loadedInfo() {
  try {
    const info = require(built).info();
    return { kernel: String(info.kernel), threads: Number(info.threads) };
  } catch (error) {
    return `built but does not load: ${(error instanceof Error ? error.message : String(error)).split("\n")[0]}`;
  }
}
