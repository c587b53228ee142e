import { describe, expect, it } from "vitest";
import { epochOrder, splitValidation } from "../../../src/data/split-shuffle.js";

const items = Array.from({ length: 20 }, (_, i) => `item${i}`);

describe("splitValidation", () => {
  it("holds out round(fraction × n) items, deterministically for a seed", () => {
    const a = splitValidation(items, 0.2, 42);
    expect(a.validation).toHaveLength(4);
    expect(a.train).toHaveLength(16);
    expect(splitValidation(items, 0.2, 42)).toEqual(a);
    expect(splitValidation(items, 0.2, 7).validation).not.toEqual(a.validation);
  });

  it("both parts keep the original relative order and together hold every item once", () => {
    const { train, validation } = splitValidation(items, 0.25, 3);
    const byIndex = (list: string[]) => [...list].sort((x, y) => items.indexOf(x) - items.indexOf(y));
    expect(train).toEqual(byIndex(train));
    expect(validation).toEqual(byIndex(validation));
    expect([...train, ...validation].sort()).toEqual([...items].sort());
  });

  it("at least one validation item when fraction > 0 and n ≥ 2; never all; none for fraction 0 or one item", () => {
    expect(splitValidation(["a", "b", "c"], 0.01, 1).validation).toHaveLength(1);
    expect(splitValidation(["a", "b"], 0.5, 1).train).toHaveLength(1);
    expect(splitValidation(items, 0, 1)).toEqual({ train: items, validation: [] });
    expect(splitValidation(["only"], 0.5, 1)).toEqual({ train: ["only"], validation: [] });
  });
});

describe("epochOrder", () => {
  it("is a permutation of 0..count-1, the same for the same seed and epoch", () => {
    const order = epochOrder(50, 42, 0);
    expect(Array.from(order).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(epochOrder(50, 42, 0)).toEqual(order);
    expect(Array.from(order)).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it("differs between epochs and seeds", () => {
    expect(epochOrder(50, 42, 1)).not.toEqual(epochOrder(50, 42, 0));
    expect(epochOrder(50, 43, 0)).not.toEqual(epochOrder(50, 42, 0));
  });

  it("handles empty and single-item sets", () => {
    expect(Array.from(epochOrder(0, 1, 0))).toEqual([]);
    expect(Array.from(epochOrder(1, 1, 5))).toEqual([0]);
  });
});

describe("hubPin", () => {
  it("names a cached hub dataset file by repo, commit and path", async () => {
    const { hubPin } = await import("../../../src/data/prepare.js");
    const sha = "a".repeat(40);
    expect(hubPin(`/home/u/.cache/huggingface/hub/datasets--org--data/snapshots/${sha}/sub/train.jsonl`)).toBe(`datasets/org/data@${sha}/sub/train.jsonl`);
    expect(hubPin("/work/data/train.jsonl")).toBeNull();
  });
});
