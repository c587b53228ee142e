/**
 * The real llama.cpp, through node-llama-cpp's prebuilt CPU binary (a devDependency; its postinstall is denied in
 * package.json's allowScripts, so nothing is ever downloaded or compiled). Loading is tried once per test file:
 * where the binary cannot load on this platform, tests that need it skip with the loader's reason, except on CI on
 * linux-x64, where the prebuilt binary is known to load and a failure to load is a failure.
 */
import type { Llama } from "node-llama-cpp";
import type { Need } from "./needs.js";
import { onCi } from "./needs.js";

let loading: Promise<{ llama: Llama | null; reason: string | null }> | undefined;

/** node-llama-cpp's Llama on the CPU, loaded from the prebuilt binary only; null with the reason when it cannot load. */
export function loadLlamaCpp(): Promise<{ llama: Llama | null; reason: string | null }> {
  loading ??= (async () => {
    try {
      const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
      const llama = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, progressLogs: false, logLevel: LlamaLogLevel.error, skipDownload: true });
      return { llama, reason: null };
    } catch (error) {
      return { llama: null, reason: `llama.cpp (node-llama-cpp's prebuilt binary) cannot load: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}` };
    }
  })();
  return loading;
}

/** The need for the real llama.cpp: load it first (`await loadLlamaCpp()` at the top of the test file). */
export function llamaCppNeed(loaded: { reason: string | null }, env: NodeJS.ProcessEnv = process.env): Need {
  return {
    missing: loaded.reason,
    required: onCi(env) && process.platform === "linux" && process.arch === "x64",
    requiredBecause: "on CI on linux-x64 node-llama-cpp's prebuilt CPU binary (@node-llama-cpp/linux-x64) must load",
  };
}
