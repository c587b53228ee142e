import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadNativeMatmul, matmulPath, type NativeMatmulAddon } from "../../../src/backend/native-matmul.js";
import { describeNeeds, nativeAddon } from "../../helpers/needs.js";
import { lcg } from "../../helpers/lcg.js";

// The addon is optional; CI builds it and sets FINETUNE_EXPECT_NATIVE=1 so a broken build fails here instead of
// quietly falling back to the wasm matmul.
const native = loadNativeMatmul();
const expectNative = process.env.FINETUNE_EXPECT_NATIVE === "1";
const ADDON_PATH = fileURLToPath(new URL("../../../native/build/Release/finetune_matmul.node", import.meta.url));

function addon(): NativeMatmulAddon {
  if (native.addon === null) throw new Error(`native addon unavailable: ${native.reason}`);
  return native.addon;
}


/** op(A)·op(B) for one row-major pair, in float64. A is stored [K, M] when transA, B [N, K] when transB. */
function reference(a: Float32Array, b: Float32Array, M: number, N: number, K: number, transA: boolean, transB: boolean): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i += 1) {
    for (let j = 0; j < N; j += 1) {
      let sum = 0;
      for (let k = 0; k < K; k += 1) sum += (a[transA ? k * M + i : i * K + k] ?? NaN) * (b[transB ? j * K + k : k * N + j] ?? NaN);
      c[i * N + j] = sum;
    }
  }
  return c;
}

const GUARD = 16; // floats around and between regions that must stay untouched
const SENTINEL = 12345.5;

interface Case {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  batch?: number;
  /** Which operand is one matrix shared by every batch entry (stride 0). */
  broadcast?: "a" | "b";
  /** Extra floats between consecutive matrices of a batch. */
  gap?: number;
}

/** Runs one sgemm in a fresh buffer and returns the worst error against the reference plus any stray write. */
function run(c: Case): { maxError: number; tolerance: number; strayWrites: number } {
  const { M, N, K, transA, transB } = c;
  const batch = c.batch ?? 1;
  const gap = c.gap ?? 0;
  const [sizeA, sizeB, sizeC] = [M * K, K * N, M * N];
  const strideA = c.broadcast === "a" ? 0 : sizeA + gap;
  const strideB = c.broadcast === "b" ? 0 : sizeB + gap;
  const strideC = sizeC + gap;
  const regionA = c.broadcast === "a" ? sizeA : batch * strideA;
  const regionB = c.broadcast === "b" ? sizeB : batch * strideB;
  const regionC = batch * strideC;
  const offA = GUARD;
  const offB = offA + regionA + GUARD;
  const offC = offB + regionB + GUARD;
  const total = offC + regionC + GUARD;
  const heap = new Float32Array(total).fill(SENTINEL);
  const next = lcg(M * 1_000_003 + N * 1009 + K + batch);
  for (let i = 0; i < regionA; i += 1) heap[offA + i] = next();
  for (let i = 0; i < regionB; i += 1) heap[offB + i] = next();
  const before = heap.slice();

  addon().sgemm(heap.buffer as ArrayBuffer, offA * 4, offB * 4, offC * 4, M, N, K, transA, transB, batch, strideA * 4, strideB * 4, strideC * 4);

  let maxError = 0;
  const written = new Set<number>();
  for (let i = 0; i < batch; i += 1) {
    const a = heap.subarray(offA + i * strideA, offA + i * strideA + sizeA);
    const b = heap.subarray(offB + i * strideB, offB + i * strideB + sizeB);
    const expected = reference(a, b, M, N, K, transA, transB);
    for (let j = 0; j < sizeC; j += 1) {
      const index = offC + i * strideC + j;
      written.add(index);
      maxError = Math.max(maxError, Math.abs((heap[index] ?? NaN) - (expected[j] ?? NaN)));
    }
  }
  let strayWrites = 0;
  for (let i = 0; i < total; i += 1) if (!written.has(i) && !Object.is(heap[i], before[i])) strayWrites += 1;
  return { maxError, tolerance: 1e-5 * (K + 1), strayWrites };
}

const FLAGS = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

describe("native matmul addon", () => {
  it(expectNative ? "is built (FINETUNE_EXPECT_NATIVE=1)" : "is optional, and says why when it is absent", () => {
    if (expectNative) expect(native.addon, native.addon === null ? native.reason : "").not.toBeNull();
    if (native.addon === null) {
      expect(native.reason).toMatch(/not built|failed to load|disabled|unexpected|unknown/);
      expect(matmulPath(native).path).toBe("wasm-xnnpack");
    } else {
      expect(["openblas", "accelerate", "avx2-fma", "portable"]).toContain(native.info.kernel);
      expect(native.info.threads).toBeGreaterThanOrEqual(1);
      expect(matmulPath(native)).toEqual({ path: `native-${native.info.kernel}`, reason: expect.stringContaining(native.info.kernel) });
    }
  });

  it("FINETUNE_NATIVE=0 turns it off", () => {
    const off = loadNativeMatmul({ FINETUNE_NATIVE: "0" });
    expect(off).toEqual({ addon: null, reason: "disabled by FINETUNE_NATIVE=0" });
    expect(matmulPath(off)).toEqual({ path: "wasm-xnnpack", reason: "disabled by FINETUNE_NATIVE=0" });
  });
});

describeNeeds(nativeAddon(native), "native sgemm against a float64 triple loop", () => {
  // Odd sizes hit every edge tile; the last ones cross the cache blocks (mc 168, kc 256, nc 4080) and are large
  // enough to be split across threads, by rows and by columns.
  const sizes = [
    [1, 1, 1],
    [7, 33, 65],
    [33, 65, 7],
    [65, 7, 33],
    [1, 65, 33],
    [65, 1, 7],
    [181, 45, 300],
    [20, 300, 400],
    [5, 4100, 3],
    // Up to 8 rows (decoding: a token's projections, a head group's queries against the KV cache): the streaming
    // kernels, split into row chunks whose sums are added after; the sizes leave partial chunks and rows that are
    // not a multiple of the 4-row unroll or the 8-float vector.
    [1, 600, 577],
    [1, 4099, 61],
    [3, 2050, 67],
    [8, 577, 300],
    [2, 33, 65],
  ] as const;
  for (const [M, N, K] of sizes) {
    it(`${M}x${N}x${K}, all four transpose combinations`, () => {
      for (const [transA, transB] of FLAGS) {
        const result = run({ M, N, K, transA, transB });
        expect(result.strayWrites, `transA=${transA} transB=${transB}`).toBe(0);
        expect(result.maxError, `transA=${transA} transB=${transB}`).toBeLessThan(result.tolerance);
      }
    });
  }

  it("K = 0 writes zeros", () => {
    const heap = new Float32Array(16).fill(7);
    addon().sgemm(heap.buffer as ArrayBuffer, 0, 0, 16, 2, 3, 0, false, false, 1, 0, 0, 0);
    expect(Array.from(heap.subarray(4, 10))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(heap.subarray(10))).toEqual([7, 7, 7, 7, 7, 7]);
  });

  it("batches: separate, broadcast A or B (stride 0), and with gaps between matrices", () => {
    const cases: Case[] = [
      { M: 7, N: 33, K: 65, transA: false, transB: false, batch: 3 },
      { M: 64, N: 64, K: 200, transA: true, transB: false, batch: 3 }, // big enough to be split across threads
      { M: 33, N: 7, K: 65, transA: false, transB: true, batch: 4, broadcast: "a" },
      { M: 65, N: 33, K: 7, transA: true, transB: true, batch: 5, broadcast: "b" },
      { M: 9, N: 17, K: 13, transA: false, transB: true, batch: 3, gap: 5 },
      { M: 9, N: 17, K: 13, transA: true, transB: false, batch: 2, broadcast: "b", gap: 3 },
      { M: 1, N: 37, K: 64, transA: false, transB: true, batch: 12 }, // a decoded token's attention, one head each
      { M: 1, N: 64, K: 37, transA: false, transB: false, batch: 12, gap: 3 },
      { M: 1, N: 300, K: 401, transA: false, transB: false, batch: 3, broadcast: "a" }, // each entry split in chunks
      { M: 1, N: 401, K: 300, transA: true, transB: true, batch: 2, broadcast: "b", gap: 1 },
      { M: 3, N: 150, K: 64, transA: false, transB: true, batch: 9 }, // grouped-query attention of a decoded token
      { M: 3, N: 64, K: 150, transA: true, transB: false, batch: 9, gap: 2 },
      { M: 5, N: 300, K: 401, transA: true, transB: false, batch: 2 }, // rows gathered, then split in chunks
    ];
    for (const c of cases) {
      const result = run(c);
      expect(result.strayWrites, JSON.stringify(c)).toBe(0);
      expect(result.maxError, JSON.stringify(c)).toBeLessThan(result.tolerance);
    }
  });

  it("rejects every out-of-range or malformed request before writing anything", () => {
    const heap = new Float32Array(64).fill(SENTINEL);
    const buffer = heap.buffer as ArrayBuffer;
    const sgemm = (...args: unknown[]) => () => (addon().sgemm as (...a: unknown[]) => void)(...args);
    // 4x4 matrices: A at 0, B at 64 bytes, C at 128 bytes; the buffer is 256 bytes.
    expect(sgemm(buffer, 0, 64, 128, 4, 4, 4, false, false, 1, 0, 0, 0)).not.toThrow();
    heap.fill(SENTINEL);
    const bad: Array<[string, unknown[], RegExp]> = [
      ["C one float past the end", [buffer, 0, 64, 196, 4, 4, 4, false, false, 1, 0, 0, 0], /C reaches byte 260 but the buffer has 256/],
      ["A past the end", [buffer, 256, 64, 128, 4, 4, 4, false, false, 1, 0, 0, 0], /A reaches byte/],
      ["the last batch past the end", [buffer, 0, 64, 128, 4, 4, 4, false, false, 3, 0, 0, 64], /C reaches byte/],
      ["a B stride past the end", [buffer, 0, 64, 128, 2, 2, 2, false, false, 2, 0, 256, 16], /B reaches byte/],
      ["a misaligned offset", [buffer, 2, 64, 128, 4, 4, 4, false, false, 1, 0, 0, 0], /multiples of 4/],
      ["C overlapping A", [buffer, 0, 64, 32, 4, 4, 4, false, false, 1, 0, 0, 0], /overlaps/],
      ["C batches overlapping each other", [buffer, 0, 64, 128, 4, 4, 4, false, false, 2, 0, 0, 32], /batches would overlap/],
      ["a huge size", [buffer, 0, 0, 0, 2 ** 31 - 1, 2 ** 31 - 1, 1, false, false, 1, 0, 0, 0], /reaches byte/],
      ["an extent that overflows 64 bits", [buffer, 0, 64, 128, 1, 1, 1, false, false, 2 ** 31 - 1, 2 ** 52, 0, 4], /A extent overflows/],
      ["a negative size", [buffer, 0, 64, 128, -4, 4, 4, false, false, 1, 0, 0, 0], /M must be a non-negative integer/],
      ["a fractional offset", [buffer, 0.5, 64, 128, 4, 4, 4, false, false, 1, 0, 0, 0], /aOffset must be a non-negative integer/],
      ["NaN", [buffer, 0, 64, 128, 4, NaN, 4, false, false, 1, 0, 0, 0], /N must be a non-negative integer/],
      ["a dimension above 2^31 - 1", [buffer, 0, 64, 128, 4, 4, 2 ** 31, false, false, 1, 0, 0, 0], /K is too large/],
      ["a number for a flag", [buffer, 0, 64, 128, 4, 4, 4, 0, false, 1, 0, 0, 0], /transA must be a boolean/],
      ["a typed array instead of its buffer", [heap, 0, 64, 128, 4, 4, 4, false, false, 1, 0, 0, 0], /must be an ArrayBuffer/],
      ["a SharedArrayBuffer", [new SharedArrayBuffer(256), 0, 64, 128, 4, 4, 4, false, false, 1, 0, 0, 0], /must be an ArrayBuffer/],
      ["too few arguments", [buffer, 0, 64, 128, 4, 4, 4], /expected 13 arguments/],
    ];
    for (const [what, args, message] of bad) {
      expect(sgemm(...args), what).toThrow(message);
      expect(heap.every((v) => v === SENTINEL), `${what}: nothing written`).toBe(true);
    }
  });

  it("a detached buffer (the wasm memory grew) is rejected, not read", () => {
    const buffer = new ArrayBuffer(256);
    structuredClone(buffer, { transfer: [buffer] });
    expect(buffer.byteLength).toBe(0);
    expect(() => addon().sgemm(buffer, 0, 64, 128, 4, 4, 4, false, false, 1, 0, 0, 0)).toThrow(/the buffer has 0 bytes/);
  });

  // The kernel and thread count are fixed when the addon loads, so other choices run in a child process.
  const childScript = `
    const addon = require(process.argv[1]);
    let s = 7;
    const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2 ** 31 - 1);
    let maxError = 0;
    for (const [M, N, K] of [[7, 33, 65], [181, 45, 300], [20, 300, 400], [1, 600, 577], [3, 70, 40]]) {
      for (const tA of [false, true]) for (const tB of [false, true]) {
        const heap = new Float32Array(M * K + K * N + M * N);
        for (let i = 0; i < M * K + K * N; i++) heap[i] = next();
        addon.sgemm(heap.buffer, 0, M * K * 4, (M * K + K * N) * 4, M, N, K, tA, tB, 1, 0, 0, 0);
        for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
          let sum = 0;
          for (let k = 0; k < K; k++) sum += heap[tA ? k * M + i : i * K + k] * heap[M * K + (tB ? j * K + k : k * N + j)];
          maxError = Math.max(maxError, Math.abs(sum - heap[M * K + K * N + i * N + j]));
        }
      }
    }
    console.log(JSON.stringify({ info: addon.info(), maxError }));
  `;
  const inChild = (env: Record<string, string>) => {
    const result = spawnSync(process.execPath, ["-e", childScript, ADDON_PATH], { env: { ...process.env, ...env }, encoding: "utf8" });
    expect(result.stderr).toBe("");
    return JSON.parse(result.stdout) as { info: { kernel: string; threads: number }; maxError: number };
  };

  it("the built-in kernels (FINETUNE_NATIVE_KERNEL) and FINETUNE_THREADS, in a child process", () => {
    const portable = inChild({ FINETUNE_NATIVE_KERNEL: "portable", FINETUNE_THREADS: "3" });
    expect(portable.info).toEqual({ kernel: "portable", threads: 3 });
    expect(portable.maxError).toBeLessThan(5e-3);
    const avx2 = inChild({ FINETUNE_NATIVE_KERNEL: "avx2-fma", FINETUNE_THREADS: "1" });
    expect(["avx2-fma", "portable"]).toContain(avx2.info.kernel); // portable on CPUs without AVX2/FMA
    expect(avx2.info.threads).toBe(1);
    expect(avx2.maxError).toBeLessThan(5e-3);
  });

  it("products with few rows give the same bits whatever the thread count (reproducible decoding)", () => {
    const script = `
      const { createHash } = require("node:crypto");
      const addon = require(process.argv[1]);
      let s = 11;
      const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2 ** 31 - 1);
      const hash = createHash("sha256");
      for (const [M, N, K] of [[1, 600, 577], [1, 1536, 576], [1, 4099, 61], [3, 2048, 64], [3, 64, 2048]]) {
        for (const tB of [false, true]) {
          const heap = new Float32Array(M * K + K * N + M * N);
          for (let i = 0; i < M * K + K * N; i++) heap[i] = next();
          addon.sgemm(heap.buffer, 0, M * K * 4, (M * K + K * N) * 4, M, N, K, false, tB, 1, 0, 0, 0);
          hash.update(new Uint8Array(heap.buffer, (M * K + K * N) * 4));
        }
      }
      console.log(hash.digest("hex"));
    `;
    const digest = (threads: string) => {
      const result = spawnSync(process.execPath, ["-e", script, ADDON_PATH], { env: { ...process.env, FINETUNE_THREADS: threads }, encoding: "utf8" });
      expect(result.stderr).toBe("");
      return result.stdout.trim();
    };
    const one = digest("1");
    expect(one).toMatch(/^[0-9a-f]{64}$/);
    expect(digest("2")).toBe(one);
    expect(digest("3")).toBe(one);
  });
});
