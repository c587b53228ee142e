import { beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import type { Tf } from "../../../src/model/types.js";
import { AdamW } from "../../../src/train/optimizer.js";
import { learningRate, warmupSteps } from "../../../src/train/schedule.js";

let tf: Tf;
beforeAll(async () => {
  tf = (await loadBackend({ forced: "cpu" })).tf;
});

describe("AdamW", () => {
  it("matches two hand-computed steps with bias correction and decoupled weight decay", () => {
    const p = tf.variable(tf.tensor1d([1, -2]), true, "adamw-test-p");
    const opt = new AdamW(tf, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });
    const lr = 0.01;
    const g1 = [0.5, -1];
    const g2 = [0.1, 0.2];
    opt.step([p], new Map([[p.name, tf.tensor1d(g1)]]), lr);
    opt.step([p], new Map([[p.name, tf.tensor1d(g2)]]), lr);
    // By hand, per element.
    const expected = [1, -2].map((p0, i) => {
      let param = p0;
      let m = 0;
      let v = 0;
      for (const [t, g] of [[1, g1[i] ?? 0], [2, g2[i] ?? 0]] as const) {
        m = 0.9 * m + 0.1 * g;
        v = 0.999 * v + 0.001 * g * g;
        const mHat = m / (1 - 0.9 ** t);
        const vHat = v / (1 - 0.999 ** t);
        param = param - lr * 0.1 * param - (lr * mHat) / (Math.sqrt(vHat) + 1e-8);
      }
      return param;
    });
    const got = Array.from(p.dataSync());
    got.forEach((value, i) => expect(value).toBeCloseTo(expected[i] ?? NaN, 6));
    expect(opt.t).toBe(2);
    opt.dispose();
    p.dispose();
  });
});

describe("learning-rate schedules", () => {
  const lr = (step: number, schedule: "cosine" | "linear" | "constant") => learningRate({ step, total: 10, warmup: 2, peak: 1, schedule });
  it("warms up linearly to the peak, then decays (never to exactly 0 before the end)", () => {
    expect([1, 2].map((s) => lr(s, "cosine"))).toEqual([0.5, 1]);
    expect(lr(3, "cosine")).toBe(1);
    expect(lr(3, "linear")).toBe(1);
    expect(lr(7, "cosine")).toBeCloseTo(0.5 * (1 + Math.cos((Math.PI * 4) / 8)), 12);
    expect(lr(7, "linear")).toBeCloseTo(1 - 4 / 8, 12);
    expect(lr(10, "cosine")).toBeGreaterThan(0);
    expect(lr(10, "linear")).toBeCloseTo(1 / 8, 12);
    for (const s of [1, 5, 10]) expect(lr(s, "constant")).toBe(s === 1 ? 0.5 : 1);
  });
  it("reads warmup from steps or ratio", () => {
    expect(warmupSteps({ total: 100, warmupSteps: 10 })).toBe(10);
    expect(warmupSteps({ total: 100, warmupRatio: 0.05 })).toBe(5);
    expect(warmupSteps({ total: 100 })).toBe(0);
    expect(warmupSteps({ total: 5, warmupSteps: 10 })).toBe(5);
  });
});
