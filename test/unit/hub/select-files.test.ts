import { describe, expect, it } from "vitest";
import { selectFiles } from "../../../src/hub/select-files.js";

const files = (...paths: string[]) => paths.map((path) => ({ path }));
const names = (list: { path: string }[]) => list.map((f) => f.path);

describe("selectFiles", () => {
  it("takes config, tokenizer, template and safetensors only, top level only", () => {
    const repo = files(
      "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
      "chat_template.jinja", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
      "model.safetensors.index.json", "pytorch_model.bin", "model.gguf", "onnx/model.onnx", "README.md",
      "original/consolidated.safetensors", "vocab.json", "tf_model.h5",
    );
    expect(names(selectFiles(repo, { type: "model", repo: "r" }))).toEqual([
      "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
      "chat_template.jinja", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json",
    ]);
  });

  it("refuses pickle-only weights, naming the files", () => {
    expect(() => selectFiles(files("config.json", "pytorch_model.bin"), { type: "model", repo: "r" })).toThrow(
      "weights only in pickle form (pytorch_model.bin)",
    );
  });

  it("--include replaces the default set (explicit opt-in) and must match something", () => {
    expect(names(selectFiles(files("a.bin", "b.json", "sub/c.json"), { type: "model", include: ["*.json"], repo: "r" }))).toEqual(["b.json", "sub/c.json"]);
    expect(names(selectFiles(files("a.bin", "sub/c.json"), { type: "model", include: ["sub/*"], repo: "r" }))).toEqual(["sub/c.json"]);
    expect(() => selectFiles(files("a.bin"), { type: "model", include: ["*.txt"], repo: "r" })).toThrow("no file matches --include *.txt");
  });

  it("datasets take every file but pickles and foreign binaries", () => {
    expect(names(selectFiles(files("train.jsonl", "data/x.parquet", "a.pkl", "README.md"), { type: "dataset", repo: "d" }))).toEqual([
      "train.jsonl", "data/x.parquet", "README.md",
    ]);
  });
});
