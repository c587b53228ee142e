/**
 * The text part of a gemma3 (image and text: Gemma3ForConditionalGeneration, Gemma 3 4B and up) checkpoint: its
 * config nests the language model in text_config and its weights sit under language_model.model. (as released) or
 * model.language_model. (as transformers 4.52+ saves them), next to a vision tower that is left alone. The language
 * model must be exactly the gemma3_text model of the same weights (whose parity with the float64 reference
 * gemma.test.ts checks), and adapters must address the checkpoint's own tensor names.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/backend/load.js";
import { UserError } from "../../../src/errors.js";
import { attachLora } from "../../../src/lora/attach.js";
import { writeGgufAdapter } from "../../../src/gguf/adapter.js";
import { savePeftAdapter } from "../../../src/lora/peft-save.js";
import { parseModelConfig } from "../../../src/model/config.js";
import { loadModel } from "../../../src/model/load-model.js";
import type { Tf } from "../../../src/model/types.js";
import { tempDir } from "../../helpers/run-cli.js";
import { writeSafetensors, writeTokenizerFiles } from "../../helpers/tiny-checkpoint.js";
import { tinyGemmaConfig, tinyGemmaTensors, writeTinyGemma, type TinyGemmaSpec } from "../../helpers/tiny-gemma.js";
import { logitsOf } from "../../helpers/logits.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const IDS = [1, 5, 17, 42, 3, 8, 60, 21, 9, 33, 14, 2];
const SPEC: TinyGemmaSpec = { kind: "gemma3_text", seed: 71 };
let tf: Tf;
beforeAll(async () => {
  tf = (await loadBackend({ forced: "wasm" })).tf;
});

/** The SPEC model as a gemma3 (image and text) checkpoint: text_config, prefixed weights, a small vision tower. */
function writeMultimodal(name: string, prefix: string): string {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  const { model_type: _, ...text } = tinyGemmaConfig(SPEC);
  const config = { architectures: ["Gemma3ForConditionalGeneration"], model_type: "gemma3", text_config: { ...text, model_type: "gemma3_text" }, vision_config: { model_type: "siglip_vision_model", hidden_size: 8 }, mm_tokens_per_image: 4 };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const tensors = Object.fromEntries(Object.entries(tinyGemmaTensors(SPEC)).map(([key, t]) => [key.replace(/^model\./, prefix), t]));
  tensors["vision_tower.vision_model.embeddings.patch_embedding.weight"] = { shape: [8, 3, 2, 2], data: Float64Array.from({ length: 96 }, (_, i) => i / 96) };
  tensors["multi_modal_projector.mm_input_projection_weight"] = { shape: [8, 32], data: Float64Array.from({ length: 256 }, (_, i) => i / 256) };
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  writeTokenizerFiles(dir, 96);
  return dir;
}


describe("gemma3 (image and text) checkpoints: the language model", () => {
  it.each([["as released", "language_model.model."], ["as transformers 4.52+ saves it", "model.language_model."]])(
    "%s (%s…) gives exactly the gemma3_text model's logits, with projections named as in the checkpoint",
    async (_, prefix) => {
      const textDir = join(tmp.path, "text");
      writeTinyGemma(textDir, SPEC);
      const text = await loadModel(tf, textDir);
      const multimodal = await loadModel(tf, writeMultimodal(`mm-${prefix}`, prefix));
      try {
        expect(multimodal.config.modelType).toBe("gemma3");
        expect(Array.from(logitsOf(tf, multimodal, IDS))).toEqual(Array.from(logitsOf(tf, text, IDS)));
        expect([...multimodal.projections.keys()][0]).toBe(`${prefix}layers.0.self_attn.q_proj`);
        expect(multimodal.parameterCount).toBe(text.parameterCount);
      } finally {
        text.dispose();
        multimodal.dispose();
      }
    },
  );

  it("a LoRA on it exports to GGUF as gemma3 with llama.cpp's per-layer names", async () => {
    const dir = writeMultimodal("mm-gguf", "language_model.model.");
    const model = await loadModel(tf, dir);
    const lora = attachLora(tf, model, { r: 2, alpha: 4, dropout: 0, targetModules: ["q_proj", "v_proj"], layers: "all", rslora: false, seed: 3 });
    const adapterDir = join(tmp.path, "mm-adapter");
    await savePeftAdapter(tf, adapterDir, lora, model.config, { nameOrPath: dir, revision: null });
    const out = join(tmp.path, "mm.gguf");
    expect(await writeGgufAdapter({ adapterDir, modelConfig: model.config, out })).toEqual({ tensors: 12, alpha: 4, architecture: "gemma3" });
    lora.dispose();
    model.dispose();
  });

  it("refuses a gemma3 config without text_config, and weights without a language model", async () => {
    expect(() => parseModelConfig({ model_type: "gemma3" }, "config.json")).toThrow(UserError);
    expect(() => parseModelConfig({ model_type: "gemma3" }, "config.json")).toThrow("needs a text_config object");
    const dir = writeMultimodal("mm-renamed", "text_model.");
    await expect(loadModel(tf, dir)).rejects.toThrow("has no language model weights (neither language_model.model.embed_tokens.weight nor model.language_model.embed_tokens.weight)");
  });
});
