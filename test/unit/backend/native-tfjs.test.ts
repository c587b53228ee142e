import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { loadNativeMatmul } from "../../../src/backend/native-matmul.js";
import { registeredMatmulPath, registerWasmMatMul, type WasmBackend } from "../../../src/backend/wasm-matmul.js";
import type { Tf } from "../../../src/model/types.js";
import { describeNeeds, nativeAddon } from "../../helpers/needs.js";

// tf.matMul on the wasm backend, once through the native addon (when it is built) and once through the XNNPACK
// fallback, each checked against a JS reference (forward) and the cpu backend (gradients).
const native = loadNativeMatmul();
const expectNative = process.env.FINETUNE_EXPECT_NATIVE === "1";

let tf: Tf;

beforeAll(async () => {
  await loadBackend({ forced: "cpu" });
  tf = (await loadBackend({ forced: "wasm" })).tf;
});

afterAll(() => {
  registerWasmMatMul(tf); // back to the default for anything else in this process
});

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

function values(shape: number[], seed: number): Float32Array {
  const next = random(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, next);
}

/** The same computation on wasm and on cpu, each output flattened. */
async function onBoth(compute: () => Array<{ dataSync(): ArrayLike<number>; shape: number[] }>) {
  const results: Array<Array<{ data: Float32Array; shape: number[] }>> = [];
  for (const backend of ["wasm", "cpu"]) {
    await tf.setBackend(backend);
    results.push(tf.tidy(() => compute().map((t) => ({ data: Float32Array.from(t.dataSync()), shape: t.shape }))));
  }
  await tf.setBackend("wasm");
  const [wasm = [], cpu = []] = results;
  return { wasm, cpu };
}

function expectClose(actual: { data: Float32Array; shape: number[] }, expected: { data: Float32Array; shape: number[] }, what: string) {
  expect(actual.shape, what).toEqual(expected.shape);
  let worst = 0;
  let scale = 1;
  expected.data.forEach((e, i) => {
    worst = Math.max(worst, Math.abs((actual.data[i] ?? NaN) - e));
    scale = Math.max(scale, Math.abs(e));
  });
  expect(worst, what).toBeLessThan(1e-4 * scale);
}

const FLAGS = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

/** [shape of op(A), shape of op(B)]: batch dims broadcast like numpy. */
const SHAPES: Array<[number[], number[]]> = [
  [[7, 33], [33, 65]],
  [[1, 1], [1, 1]],
  [[65, 7], [7, 1]],
  [[3, 7, 33], [3, 33, 5]],
  [[2, 3, 7, 33], [33, 65]],
  [[1, 7, 9], [4, 9, 5]],
  [[4, 7, 9], [1, 9, 5]],
  [[2, 1, 7, 9], [1, 3, 9, 5]],
  [[5, 9], [2, 3, 9, 6]],
];

/** numpy-style matmul of op(A) [..batchA, M, K] and op(B) [..batchB, K, N], where A/B are stored transposed when flagged. */
function referenceMatMul(a: Float32Array, opShapeA: number[], b: Float32Array, opShapeB: number[], transA: boolean, transB: boolean) {
  const [M = 1, K = 1] = opShapeA.slice(-2);
  const N = opShapeB.at(-1) ?? 1;
  const outerA = opShapeA.slice(0, -2);
  const outerB = opShapeB.slice(0, -2);
  const rank = Math.max(outerA.length, outerB.length);
  const pad = (s: number[]) => [...Array<number>(rank - s.length).fill(1), ...s];
  const [pa, pb] = [pad(outerA), pad(outerB)];
  const outer = pa.map((d, i) => Math.max(d, pb[i] ?? 1));
  const batch = outer.reduce((x, y) => x * y, 1);
  const data = new Float32Array(batch * M * N);
  for (let i = 0; i < batch; i += 1) {
    // Flat index of output batch i within A's and B's own batch dims (size-1 dims repeat).
    let [rest, ia, ib, sa, sb] = [i, 0, 0, 1, 1];
    for (let d = rank - 1; d >= 0; d -= 1) {
      const coordinate = rest % (outer[d] ?? 1);
      rest = Math.floor(rest / (outer[d] ?? 1));
      ia += ((pa[d] ?? 1) === 1 ? 0 : coordinate) * sa;
      ib += ((pb[d] ?? 1) === 1 ? 0 : coordinate) * sb;
      sa *= pa[d] ?? 1;
      sb *= pb[d] ?? 1;
    }
    for (let r = 0; r < M; r += 1) {
      for (let c = 0; c < N; c += 1) {
        let sum = 0;
        for (let k = 0; k < K; k += 1) {
          const x = a[ia * M * K + (transA ? k * M + r : r * K + k)] ?? NaN;
          const y = b[ib * K * N + (transB ? c * K + k : k * N + c)] ?? NaN;
          sum += x * y;
        }
        data[i * M * N + r * N + c] = sum;
      }
    }
  }
  return { data, shape: [...outer, M, N] };
}

/** Stored shape for op(x) = x with its last two dims swapped when transposed. */
const stored = (shape: number[], transposed: boolean) => (transposed ? [...shape.slice(0, -2), shape.at(-1) ?? 1, shape.at(-2) ?? 1] : shape);

const paths = [
  { name: "the native addon", useNative: true, need: nativeAddon(native) },
  { name: "the XNNPACK fallback", useNative: false, need: { missing: null, required: false, requiredBecause: "" } },
];

describe("wasm matmul path", () => {
  it(expectNative ? "is native (FINETUNE_EXPECT_NATIVE=1)" : "follows whether the addon is built", () => {
    const path = registerWasmMatMul(tf);
    expect(registeredMatmulPath()).toEqual(path);
    if (expectNative) expect(path.path, path.reason).toMatch(/^native-/);
    expect(path.path === "wasm-xnnpack").toBe(native.addon === null);
  });
});

for (const { name, useNative, need } of paths) {
  describeNeeds(need, `tf.matMul on wasm through ${name}`, () => {
    beforeAll(() => {
      const path = registerWasmMatMul(tf, { native: useNative });
      expect(path.path.startsWith("native-")).toBe(useNative);
    });

    it("really dispatches to the addon only on this path", () => {
      const { addon } = native;
      if (addon === null) return;
      const spy = vi.spyOn(addon, "sgemm");
      try {
        tf.tidy(() => tf.matMul(tf.ones([3, 4]), tf.ones([4, 5])).dataSync());
        expect(spy.mock.calls.length > 0).toBe(useNative);
      } finally {
        spy.mockRestore();
      }
    });

    // Against a JS reference, not cpu: the cpu backend indexes batches modulo their count, which is wrong when both
    // sides broadcast ([2,1,..] x [1,3,..]).
    it("forward: every transpose combination and batch broadcast agrees with a JS reference", () => {
      for (const [shapeA, shapeB] of SHAPES) {
        for (const [transA, transB] of FLAGS) {
          const a = stored(shapeA, transA);
          const b = stored(shapeB, transB);
          const [dataA, dataB] = [values(a, 1), values(b, 2)];
          const actual = tf.tidy(() => {
            const out = tf.matMul(tf.tensor(dataA, a), tf.tensor(dataB, b), transA, transB);
            return { data: Float32Array.from(out.dataSync()), shape: out.shape };
          });
          expectClose(actual, referenceMatMul(dataA, shapeA, dataB, shapeB, transA, transB), `${a}${transA ? "ᵀ" : ""} x ${b}${transB ? "ᵀ" : ""}`);
        }
      }
    });

    // tfjs's BatchMatMul gradient does not reduce broadcast batch dims, on any backend, so only equal batches here.
    it("gradients of a weighted sum of matMul agree with cpu", async () => {
      const cases: Array<[number[], number[]]> = [
        [[7, 33], [33, 65]],
        [[3, 7, 9], [3, 9, 5]],
      ];
      for (const [shapeA, shapeB] of cases) {
        for (const [transA, transB] of FLAGS) {
          const a = stored(shapeA, transA);
          const b = stored(shapeB, transB);
          const { wasm, cpu } = await onBoth(() => {
            const x = tf.tensor(values(a, 3), a);
            const y = tf.tensor(values(b, 4), b);
            const product = tf.matMul(x, y, transA, transB);
            const weights = tf.tensor(values(product.shape, 5), product.shape);
            return tf.grads((p: typeof x, q: typeof x) => tf.sum(tf.mul(tf.matMul(p, q, transA, transB), weights)))([x, y]);
          });
          const what = `d(${a}${transA ? "ᵀ" : ""} x ${b}${transB ? "ᵀ" : ""})`;
          expect(wasm.length, what).toBe(2);
          wasm.forEach((g, i) => expectClose(g, cpu[i] ?? { data: new Float32Array(), shape: [] }, `${what}[${i}]`));
        }
      }
    });

    it("an output that grows the wasm memory is written into the new memory", () => {
      const backend = tf.backend() as unknown as WasmBackend;
      const before = backend.wasm.HEAPU8.buffer.byteLength;
      const N = 4096;
      const M = Math.ceil((before + 32 * 2 ** 20) / (N * 4)); // the output alone exceeds the current heap
      const a = values([M, 3], 6);
      const b = values([3, N], 7);
      // Read inside tidy but return nothing big: tidy walks whatever it returns.
      let samples: ArrayLike<number> = [];
      tf.tidy(() => {
        samples = tf.matMul(tf.tensor(a, [M, 3]), tf.tensor(b, [3, N])).dataSync();
      });
      expect(backend.wasm.HEAPU8.buffer.byteLength).toBeGreaterThan(before);
      for (const [i, j] of [[0, 0], [M - 1, N - 1], [M >> 1, 17]] as const) {
        let expected = 0;
        for (let k = 0; k < 3; k += 1) expected += (a[i * 3 + k] ?? NaN) * (b[k * N + j] ?? NaN);
        expect(samples[i * N + j]).toBeCloseTo(expected, 5);
      }
    });
  });
}
