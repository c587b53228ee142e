import { availableParallelism, loadavg } from "node:os";
import { loadBackend } from "../dist/backend/load.js";
import { loadNativeMatmul } from "../dist/backend/native-matmul.js";
import { registeredMatmulPath } from "../dist/backend/wasm-matmul.js";

const N = 1024;

function best(times) {
  return Math.min(...times);
}

/** This machine's matmul peak (the best available kernel on a large square GEMM) and its large-copy bandwidth. */
export async function matmulBench() {
  const flops = 2 * N * N * N;
  const lines = [`## machine: ${N}³ fp32 GEMM and memory bandwidth`];
  const results = {};
  // The peak is the machine's, so the addon is measured even when FINETUNE_NATIVE=0 keeps runs on the wasm matmul.
  const native = loadNativeMatmul({ ...process.env, FINETUNE_NATIVE: undefined });
  if (native.addon) {
    const buffer = new ArrayBuffer(3 * N * N * 4);
    new Float32Array(buffer, 0, 2 * N * N).fill(0.5);
    const times = [];
    // The first calls start BLAS threads and fault pages in; the best of ten is the kernel's own speed.
    for (let i = 0; i < 10; i += 1) {
      const t0 = performance.now();
      native.addon.sgemm(buffer, 0, N * N * 4, 2 * N * N * 4, N, N, N, false, false, 1, 0, 0, 0);
      times.push((performance.now() - t0) / 1000);
    }
    results.native = flops / best(times) / 1e9;
    lines.push(`native sgemm (${native.info.kernel}, ${native.info.threads} threads)  ${results.native.toFixed(1)} GFLOP/s`);
  } else {
    lines.push(`native sgemm: not available (${native.reason})`);
  }
  // tfjs-wasm through XNNPACK: force the fallback so the figure is the wasm kernel's own.
  const { tf } = await loadBackend({ forced: "wasm" });
  const a = tf.fill([N, N], 0.5);
  const b = tf.fill([N, N], 0.5);
  const times = [];
  for (let i = 0; i < 4; i += 1) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    times.push((performance.now() - t0) / 1000);
    c.dispose();
  }
  tf.dispose([a, b]);
  results.wasm = flops / best(times.slice(1)) / 1e9;
  results.activePath = registeredMatmulPath()?.path ?? "unknown";
  lines.push(`tf.matMul on wasm (active path: ${results.activePath})  ${results.wasm.toFixed(1)} GFLOP/s`);
  results.peak = Math.max(results.native ?? 0, results.wasm);
  lines.push(`peak (best kernel)                      ${results.peak.toFixed(1)} GFLOP/s`);
  // Bandwidth: a large copy reads and writes every byte once.
  const bytes = 256 * 1024 * 1024;
  const src = Buffer.alloc(bytes, 1);
  const dst = Buffer.alloc(bytes);
  const copies = [];
  for (let i = 0; i < 4; i += 1) {
    const t0 = performance.now();
    src.copy(dst);
    copies.push((performance.now() - t0) / 1000);
  }
  results.bandwidth = (2 * bytes) / best(copies) / 1e9;
  lines.push(`large-copy bandwidth (read + write)     ${results.bandwidth.toFixed(1)} GB/s`);
  // Other work on the machine makes every figure (and the ratios between runs) vary: say how busy it was.
  lines.push(`${availableParallelism()} cores, load average ${loadavg()[0].toFixed(1)} at this point`, "");
  return { lines, results };
}
