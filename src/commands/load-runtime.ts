import { forcedBackend, loadBackend, type LoadedBackend } from "../backend/load.js";
import type { CommandContext } from "../context.js";
import { resolveModelSource, type ModelSource } from "../hub/model-source.js";
import { resolveToken } from "../hub/token.js";
import { resolveAdapterDir } from "../lora/adapter-dir.js";
import { loadPeftAdapter } from "../lora/peft-load.js";
import { nativeDecoderAvailable } from "../backend/native-decoder.js";
import { checkQuantizeOnBackend, checkQuantizeSupport } from "../backend/quantize-support.js";
import { checkWebGpuFit } from "../backend/webgpu.js";
import { loadModel, readModelConfig } from "../model/load-model.js";
import type { Quantize } from "../model/quantize.js";
import type { CausalLM } from "../model/types.js";
import { loadTokenizer, type ModelTokenizer } from "../tokenizer/load.js";
import { transferProgress } from "../ui/transfer-progress.js";

export interface Runtime {
  backend: LoadedBackend;
  source: ModelSource;
  model: CausalLM;
  tokenizer: ModelTokenizer;
  loadSeconds: number;
}

/**
 * Shared by generate and eval: resolve the model (pulling it if needed), pick the backend, load weights (stored as
 * `quantize` says, --quantize) and tokenizer. For generation (`decoding`) float32 weights go into the native store
 * where the native decoder can read them (see nativeDecoderAvailable).
 */
export async function loadRuntime(context: CommandContext, model: string, adapterDir?: string, quantize: Quantize = "none", decoding = false): Promise<Runtime> {
  const { reporter } = context;
  // Before the adapter, the download and the load: a format this machine cannot hold is refused first.
  checkQuantizeSupport({ quantize, setBy: "--quantize", env: context.env });
  // A mistyped --adapter fails before seconds of downloading and loading.
  const adapterPath = adapterDir === undefined ? undefined : await resolveAdapterDir(adapterDir);
  const progress = transferProgress(reporter);
  let source: ModelSource;
  try {
    source = await resolveModelSource({
      model,
      env: context.env,
      token: resolveToken({ env: context.env }).token,
      signal: context.signal,
      onEvent: progress.onEvent,
    });
  } finally {
    progress.finish();
  }
  // The tokenizer first: a missing tokenizer.json should fail before seconds of weight loading.
  const tokenizer = await loadTokenizer(source.dir);
  const backend = await loadBackend({ forced: forcedBackend(context.globals.backend, context.env), env: context.env });
  checkQuantizeOnBackend({ backend: backend.backend, quantize, setBy: "--quantize" });
  if (backend.webgpu) checkWebGpuFit(await readModelConfig(source.dir), backend.webgpu);
  reporter.debug(`matmul: ${backend.matmul ? `${backend.matmul.path} (${backend.matmul.reason})` : "backend's own"}`);
  reporter.debug(`backend: ${backend.label}${backend.attempts.filter((a) => !a.loaded).map((a) => `; skipped ${a.label}: ${a.reason ?? ""}`).join("")}`);
  const started = performance.now();
  const float32In = decoding && nativeDecoderAvailable(backend.tf.getBackend(), context.env) ? "native" : "tensors";
  const loaded = await loadModel(backend.tf, source.dir, { quantize, float32In });
  const loadSeconds = (performance.now() - started) / 1000;
  if (adapterPath !== undefined) {
    const adapter = await loadPeftAdapter(backend.tf, loaded, adapterPath);
    const named = adapter.config.base_model_name_or_path;
    const here = source.repo ?? source.dir;
    if (named && named !== here) reporter.warn(`the adapter was trained on ${named}; applying it to ${here} (the shapes match)`);
    if (adapter.config.revision && source.sha && adapter.config.revision !== source.sha) {
      reporter.warn(`the adapter was trained on revision ${adapter.config.revision.slice(0, 12)}, this model is at ${source.sha.slice(0, 12)}`);
    }
    reporter.debug(`adapter ${adapterDir}: r=${adapter.spec.r} on ${adapter.adapters.length} modules`);
  }
  reporter.event("loaded", { model: source.repo ?? source.dir, sha: source.sha, backend: backend.label, quantize, parameters: loaded.parameterCount, seconds: round(loadSeconds) });
  reporter.debug(`loaded ${source.dir} (${loaded.parameterCount} parameters) in ${loadSeconds.toFixed(2)} s`);
  return { backend, source, model: loaded, tokenizer, loadSeconds };
}

export function round(value: number, digits = 4): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
