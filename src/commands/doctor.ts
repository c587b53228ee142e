import { cpus, freemem, totalmem } from "node:os";
import type { ChalkInstance } from "chalk";
import { forcedBackend, loadBackend, packageVersionOf, probeBackends } from "../backend/load.js";
import { listNvidiaGpus } from "../backend/gpus.js";
import type { CommandContext } from "../context.js";
import { isKnownError } from "../errors.js";
import { SUPPORTED_MODEL_TYPES } from "../model/config.js";
import { cacheRoot } from "../hub/cache-paths.js";
import { scanCache } from "../hub/cache-scan.js";
import { hubEndpoint, isOffline } from "../hub/endpoint.js";
import { probeEndpoint, type EndpointProbe } from "../hub/probe-endpoint.js";
import { maskUrl, redactSecrets } from "../hub/redact.js";
import { resolveToken } from "../hub/token.js";
import { formatBytes, formatGiB } from "../ui/format.js";
import { describeAdapter, probeWebGpu, WEBGPU_PACKAGE } from "../backend/webgpu.js";
import { checkCudaRuntime, cudaProbe as checkCudaProbe, type CudaRuntime } from "../backend/cuda-runtime.js";

/** `finetune doctor`: what this machine can do, and what is configured. Never prints the token. */
export async function run(context: CommandContext): Promise<void> {
  const { env } = context;
  const backends = (await probeBackends()).map((b) => ({ ...b, version: packageVersionOf(b.package) }));
  let selected: string | null = null;
  let selectedError: string | undefined;
  try {
    selected = (await loadBackend({ forced: forcedBackend(context.globals.backend, env), env })).label;
  } catch (error) {
    selectedError = error instanceof Error ? error.message : String(error);
  }
  const matmul = (await import("../backend/native-matmul.js")).matmulPath();
  const webgpu = await webgpuReport();
  // The CUDA route (tfjs-node-gpu) is Linux only: what it needs, and what to install when the driver is there.
  const cuda = process.platform === "linux" ? checkCudaRuntime(checkCudaProbe(env)) : null;
  const cudaLoaded = backends.some((b) => b.label === "tensorflow (CUDA)" && b.loaded);
  const gpus = cudaLoaded ? await listNvidiaGpus() : [];
  const root = cacheRoot(undefined, env);
  const scan = await scanCache(root);
  const token = tokenStatus(env);
  const offline = isOffline(env);
  let endpoint: string;
  let hub: EndpointProbe | { endpoint: string; reachable: false; error: string };
  try {
    endpoint = hubEndpoint(env);
    hub = offline ? { endpoint: maskUrl(endpoint), reachable: false, error: "not checked: HF_HUB_OFFLINE is set" } : await probeEndpoint(endpoint);
  } catch (error) {
    // Credentials written into HF_ENDPOINT (http://user:pass@host) are never shown.
    endpoint = maskUrl(env.HF_ENDPOINT ?? "");
    hub = { endpoint, reachable: false, error: redactSecrets(error instanceof Error ? error.message : String(error)) };
  }

  const report = {
    finetune: context.version,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpus: cpus().length,
    memory_bytes: totalmem(),
    // Where bf16/int8/nf4 base weights live (the native store), and what a run's memory budget is checked against.
    ram: { total_bytes: totalmem(), free_bytes: freemem() },
    backends: backends.map((b) => ({ name: b.label, backend: b.backend, package: b.package, version: b.version, loaded: b.loaded, ...(b.reason ? { reason: b.reason } : {}) })),
    selected,
    ...(selectedError ? { selected_error: selectedError } : {}),
    matmul,
    webgpu,
    cuda,
    gpus,
    // config.json model_type values this build loads (SmolLM 1/2, TinyLlama and others are "llama").
    model_types: [...SUPPORTED_MODEL_TYPES],
    cache: { path: root, repos: scan.repos.length, size_bytes: scan.size },
    token,
    offline,
    hub,
  };
  context.reporter.result(report, (c) => human(c, report));
}

function tokenStatus(env: NodeJS.ProcessEnv): { configured: boolean; source: string; valid: boolean } {
  try {
    const { token, source } = resolveToken({ env });
    return { configured: token !== undefined, source, valid: true };
  } catch (error) {
    if (!isKnownError(error)) throw error;
    return { configured: true, source: "set but malformed", valid: false };
  }
}

type Report = {
  finetune: string;
  node: string;
  platform: string;
  arch: string;
  cpus: number;
  memory_bytes: number;
  ram: { total_bytes: number; free_bytes: number };
  backends: Array<{ name: string; package: string; version: string | null; loaded: boolean; reason?: string }>;
  selected: string | null;
  selected_error?: string;
  matmul: { path: string; reason: string };
  webgpu: WebGpuReport;
  cuda: CudaRuntime | null;
  gpus: string[];
  model_types: string[];
  cache: { path: string; repos: number; size_bytes: number };
  token: { configured: boolean; source: string; valid: boolean };
  offline: boolean;
  hub: { endpoint: string; reachable: boolean; status?: number; ms?: number; error?: string };
};

function human(c: ChalkInstance, r: Report): string {
  const ok = c.green("✓");
  const no = c.red("✗");
  const lines = [
    `finetune ${r.finetune} · node ${r.node} · ${r.platform}-${r.arch} · ${r.cpus} cores`,
    `RAM: ${formatGiB(r.ram.total_bytes)} total, ${formatGiB(r.ram.free_bytes)} free (bf16/int8/nf4 base weights live here, outside the wasm heap)`,
    "backends:",
    ...r.backends.map((b) => `  ${b.loaded ? ok : no} ${b.name.padEnd(18)} ${b.package}${b.version ? `@${b.version}` : ""}${b.reason ? `: ${b.reason}` : ""}`),
    `  selected: ${r.selected ?? c.red(r.selected_error ?? "none")}`,
    `matmul on wasm: ${r.matmul.path} — ${r.matmul.reason}`,
    webgpuLine(c, r.webgpu),
    ...(r.cuda ? [cudaLine(c, r.cuda)] : []),
    `GPUs: ${r.gpus.length ? r.gpus.join("; ") : "none seen by the tensorflow backend"}`,
    `model types: ${r.model_types.join(", ")}`,
    `HF cache: ${r.cache.path} · ${r.cache.repos} repos · ${formatBytes(r.cache.size_bytes)}`,
    `token: ${r.token.valid ? (r.token.configured ? `configured (${r.token.source})` : "not configured (set HF_TOKEN for gated or private repos)") : c.red("HF_TOKEN or the token file is malformed: tokens start with hf_")}`,
    `hub: ${r.hub.endpoint} · ${r.hub.reachable ? `${ok} answers (HTTP ${r.hub.status ?? "?"}, ${r.hub.ms ?? "?"} ms)` : `${no} ${r.hub.error ?? "unreachable"}`}`,
  ];
  if (r.offline) lines.push("offline: HF_HUB_OFFLINE is set, models resolve from the cache only");
  return lines.join("\n");
}

type WebGpuReport =
  | { available: true; vendor: string; architecture: string; description: string; fallback: boolean; max_buffer_size: number; max_storage_buffer_binding_size: number; package_version: string | null }
  | { available: false; reason: string; package_version: string | null };

/** The WebGPU adapter (`--backend webgpu`, opt-in), with the buffer limits that bound what fits, or why there is none. */
async function webgpuReport(): Promise<WebGpuReport> {
  const version = packageVersionOf(WEBGPU_PACKAGE);
  const { adapter, reason } = await probeWebGpu();
  if (!adapter) return { available: false, reason: reason ?? "no adapter", package_version: version };
  return {
    available: true,
    vendor: adapter.vendor,
    architecture: adapter.architecture,
    description: adapter.description,
    fallback: adapter.isFallbackAdapter,
    max_buffer_size: adapter.maxBufferSize,
    max_storage_buffer_binding_size: adapter.maxStorageBufferBindingSize,
    package_version: version,
  };
}

function webgpuLine(c: ChalkInstance, w: WebGpuReport): string {
  if (!w.available) return `webgpu (opt-in, --backend webgpu): ${c.red("✗")} ${w.reason}`;
  const adapter = { vendor: w.vendor, architecture: w.architecture, description: w.description, isFallbackAdapter: w.fallback, maxBufferSize: w.max_buffer_size, maxStorageBufferBindingSize: w.max_storage_buffer_binding_size };
  const note = w.fallback ? " — refused unless FINETUNE_WEBGPU_ALLOW_FALLBACK=1" : "";
  return `webgpu (opt-in, --backend webgpu): ${c.green("✓")} ${describeAdapter(adapter)}; buffers up to ${formatBytes(w.max_buffer_size)}, bindings up to ${formatBytes(w.max_storage_buffer_binding_size)}${note}`;
}

function cudaLine(c: ChalkInstance, r: CudaRuntime): string {
  if (r.driver === null) return "CUDA (tensorflow backend): no NVIDIA driver loaded";
  const lib = (name: string, path: string | null) => (path ? `${c.green("✓")} ${name}` : `${c.red("✗")} ${name}`);
  return `CUDA (tensorflow backend): ${r.driver}; ${lib("libcudart.so.11.0", r.cudart)}, ${lib("libcudnn.so.8", r.cudnn)}${r.advice ? ` — ${r.advice}` : ""}`;
}
