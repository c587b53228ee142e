// `npm run bench -- webgpu`: matrix products on the webgpu backend, in GFLOP/s, with the adapter they ran on, so a
// user with a real GPU can report numbers (here only a software Vulkan driver exists: speed on GPUs is unmeasured).
import { loadBackend } from "../dist/backend/load.js";
import { median } from "./shared.js";

export async function webgpuBench() {
  const backend = await loadBackend({ forced: "webgpu", env: process.env });
  const { tf } = backend;
  const lines = [`## ${backend.label}`, "| product | GFLOP/s (median of 5, after a warm-up) |", "| --- | --- |"];
  for (const [m, k, n] of [[1, 2048, 2048], [64, 576, 1536], [256, 576, 576], [512, 512, 512], [1024, 1024, 1024]]) {
    const a = tf.randomNormal([m, k]);
    const b = tf.randomNormal([k, n]);
    const run = async () => {
      const t0 = performance.now();
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
      return (performance.now() - t0) / 1000;
    };
    await run();
    const times = [];
    for (let i = 0; i < 5; i += 1) times.push(await run());
    lines.push(`| [${m}×${k}]·[${k}×${n}] | ${((2 * m * k * n) / median(times) / 1e9).toFixed(2)} |`);
    tf.dispose([a, b]);
  }
  return lines;
}
