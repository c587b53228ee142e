import { describe, expect, it } from "vitest";
import { argmax, checkSampling, sampleToken, seededRandom } from "../../../src/model/sampling.js";

const logits = Float32Array.from([1, 3, 2, 0.5]);

describe("sampling", () => {
  it("temperature 0 is greedy; top-k 1 and a tiny top-p pick the argmax too", () => {
    const r = seededRandom(1);
    expect(sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, r)).toBe(1);
    for (let i = 0; i < 50; i += 1) {
      expect(sampleToken(logits, { temperature: 1, topK: 1, topP: 1 }, r)).toBe(1);
      expect(sampleToken(logits, { temperature: 1, topK: 0, topP: 0.01 }, r)).toBe(1);
    }
    expect(argmax(logits)).toBe(1);
  });

  it("is deterministic for a seed and follows softmax(logits / T)", () => {
    const draw = (seed: number) => {
      const r = seededRandom(seed);
      return Array.from({ length: 20000 }, () => sampleToken(logits, { temperature: 2, topK: 0, topP: 1 }, r));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    const counts = [0, 0, 0, 0];
    for (const id of draw(7)) counts[id] = (counts[id] ?? 0) + 1;
    const exp = Array.from(logits, (l) => Math.exp(l / 2));
    const total = exp.reduce((a, b) => a + b, 0);
    counts.forEach((count, i) => expect(count / 20000).toBeCloseTo((exp[i] ?? 0) / total, 1));
  });

  it("top-k 2 never picks outside the two best; top-p 0.7 keeps the smallest set reaching 70%", () => {
    const r = seededRandom(3);
    const picks = new Set(Array.from({ length: 500 }, () => sampleToken(logits, { temperature: 1, topK: 2, topP: 1 }, r)));
    expect([...picks].sort()).toEqual([1, 2]);
    // softmax ≈ [0.10, 0.64, 0.24, 0.06]: 0.64 < 0.7, so the nucleus is {1, 2}
    const nucleus = new Set(Array.from({ length: 500 }, () => sampleToken(logits, { temperature: 1, topK: 0, topP: 0.7 }, r)));
    expect([...nucleus].sort()).toEqual([1, 2]);
  });

  it.each([
    [{ temperature: -1, topK: 0, topP: 1 }, "--temperature -1 is out of range"],
    [{ temperature: 1, topK: 0, topP: 1.5 }, "--top-p 1.5 is out of range: use a number in (0, 1]"],
    [{ temperature: 1, topK: 0, topP: 0 }, "--top-p 0 is out of range"],
    [{ temperature: 1, topK: 1.5, topP: 1 }, "--top-k 1.5 is out of range"],
  ])("refuses %j", (options, message) => {
    expect(() => checkSampling(options)).toThrow(message);
  });
});
