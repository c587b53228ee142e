import { describe, expect, it } from "vitest";
import { isLocalPath, modelName } from "../../../src/model/model-name.js";

describe("modelName", () => {
  it.each([
    ["HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M"],
    ["gpt2", "gpt2"],
    ["/home/ann/models/TinyLlama-1.1B/", "TinyLlama-1.1B"],
    ["../models/qwen", "qwen"],
    ["./m", "m"],
    ["~/m/x", "x"],
    ["C:\\Users\\ann\\models\\phi", "phi"],
    ["data/models/a", "a"],
  ])("%s → %s", (input, name) => {
    expect(modelName(input)).toBe(name);
  });

  it("tells hub ids from paths", () => {
    expect(isLocalPath("org/name")).toBe(false);
    expect(isLocalPath("/abs")).toBe(true);
  });
});
