import { describe, expect, it } from "vitest";
import { planHandoff, type DataFacts, type HandoffTarget } from "../../../src/handoff/mapping.js";
import type { PinnedModel } from "../../../src/handoff/pin-model.js";
import { parseRecipe } from "../../../src/recipe/load.js";
import { SHA } from "./cache-fixture.js";

const MODEL: PinnedModel = { kind: "hub", repo: "org/tiny", sha: SHA, dir: "/cache/snap", pinnedBy: "cache" };
const CHAT: DataFacts = { kind: "chat", promptCompletionChat: true, hasValidation: true, validationFrom: "split" };

function recipe(extra = "") {
  return parseRecipe(`model: org/tiny\ndata:\n  train: data.jsonl\noutput: runs/demo\ntrain:\n  max_steps: 100\n${extra}`, "recipe.yaml", [], {});
}
function plan(extra = "", target: HandoffTarget = "axolotl", data: DataFacts = CHAT, model: PinnedModel = MODEL) {
  return planHandoff({ recipe: recipe(extra), target, model, data });
}
const row = (p: ReturnType<typeof plan>, option: string) => p.rows.find((r) => r.option === option);

describe("the recipe → Axolotl / TRL mapping", () => {
  it("maps the defaults field by field to both targets", () => {
    const p = plan();
    expect(p.axolotl).toMatchObject({
      base_model: "org/tiny",
      revision_of_model: SHA,
      adapter: "lora",
      lora_r: 8,
      lora_alpha: 16,
      lora_dropout: 0.05,
      lora_target_modules: ["q_proj", "v_proj"],
      peft_use_rslora: false,
      max_steps: 100,
      micro_batch_size: 4,
      gradient_accumulation_steps: 1,
      learning_rate: 2e-4,
      lr_scheduler: "cosine",
      weight_decay: 0,
      max_grad_norm: 1,
      sequence_len: 512,
      excess_length_strategy: "truncate",
      train_on_inputs: false,
      sample_packing: false,
      gradient_checkpointing: true,
      seed: 42,
      eval_steps: 50,
      save_steps: 50,
      val_set_size: 0,
      optimizer: "adamw_torch",
      adam_beta1: 0.9,
      adam_beta2: 0.999,
      adam_epsilon: 1e-8,
      output_dir: "./demo",
    });
    expect(p.axolotl).not.toHaveProperty("num_epochs");
    expect(p.axolotl).not.toHaveProperty("early_stopping_patience");
    expect(p.sft).toMatchObject({
      max_steps: 100,
      per_device_train_batch_size: 4,
      gradient_accumulation_steps: 1,
      learning_rate: 2e-4,
      lr_scheduler_type: "cosine",
      max_length: 512,
      completion_only_loss: true,
      assistant_only_loss: false,
      packing: false,
      seed: 42,
      data_seed: 42,
      eval_strategy: "steps",
      eval_steps: 50,
      save_strategy: "steps",
      save_steps: 50,
      max_grad_norm: 1,
      optim: "adamw_torch",
      output_dir: "./demo",
    });
    expect(p.lora).toEqual({ task_type: "CAUSAL_LM", bias: "none", r: 8, lora_alpha: 16, lora_dropout: 0.05, target_modules: ["q_proj", "v_proj"], use_rslora: false });
    expect(p.model).toEqual({ id: "org/tiny", revision: SHA, quantize: "none" });
    expect(row(p, "model.name")).toEqual({ option: "model.name", value: "org/tiny", axolotl: `base_model: org/tiny, revision_of_model: ${SHA}`, trl: `from_pretrained("org/tiny", revision="${SHA}")` });
    expect(row(p, "lora.r")).toEqual({ option: "lora.r", value: "8", axolotl: "lora_r: 8", trl: "r=8" });
  });

  it("covers every recipe option with a row", () => {
    const options = plan("  warmup_steps: 5\n  early_stopping_patience: 2").rows.map((r) => r.option);
    for (const option of ["model.name", "model.quantize", "data.train", "data.validation", "data.format", "data.fields", "lora.r", "lora.alpha", "lora.dropout", "lora.target_modules", "lora.layers", "lora.rslora", "train.max_steps", "train.batch_size", "train.grad_accum", "train.lr", "train.schedule", "train.warmup_steps", "train.weight_decay", "train.max_grad_norm", "train.max_seq_len", "train.completion_only", "train.packing", "train.gradient_checkpointing", "train.seed", "train.eval_every", "train.save_every", "train.early_stopping_patience", "output"]) {
      expect(options).toContain(option);
    }
  });

  it("maps epochs, warmup ratio, all-linear, layers, rslora and a float alpha", () => {
    const text = (steps: string) => parseRecipe(`model: org/tiny\ndata: {train: d.jsonl}\noutput: o\nlora: {target_modules: all-linear, layers: [0, 2], rslora: true, alpha: 16.5}\ntrain:\n  ${steps}\n  warmup_ratio: 0.1\n  schedule: linear`, "r.yaml", [], {});
    const p = planHandoff({ recipe: text("epochs: 1.5"), target: "trl", model: MODEL, data: CHAT });
    expect(p.sft).toMatchObject({ num_train_epochs: 1.5, warmup_ratio: 0.1, lr_scheduler_type: "linear" });
    expect(p.sft).not.toHaveProperty("max_steps");
    expect(p.lora).toMatchObject({ target_modules: "all-linear", layers_to_transform: [0, 2], use_rslora: true, lora_alpha: 16.5 });
    expect(p.axolotl).toMatchObject({ num_epochs: 1.5, warmup_ratio: 0.1, lora_target_linear: true, peft_layers_to_transform: [0, 2], peft_use_rslora: true });
    expect(p.axolotl).not.toHaveProperty("lora_target_modules");
  });

  it("refuses a fractional lora.alpha for Axolotl, whose lora_alpha is an integer", () => {
    const r = parseRecipe("model: org/tiny\ndata: {train: d.jsonl}\noutput: o\nlora: {alpha: 16.5}\ntrain: {max_steps: 1}", "r.yaml", [], {});
    expect(() => planHandoff({ recipe: r, target: "axolotl", model: MODEL, data: CHAT })).toThrow(
      "lora.alpha is 16.5, but Axolotl 0.18.0 takes lora_alpha as a whole number; set lora.alpha to an integer (e.g. 17) or export with --to trl (PEFT takes any number).",
    );
  });

  it("uses constant_with_warmup for a constant schedule with warmup, and 0 for no clipping", () => {
    const p = plan("  schedule: constant\n  warmup_steps: 10\n  max_grad_norm: null");
    expect(p.axolotl).toMatchObject({ lr_scheduler: "constant_with_warmup", warmup_steps: 10, max_grad_norm: 0 });
    expect(p.sft).toMatchObject({ lr_scheduler_type: "constant_with_warmup", warmup_steps: 10, max_grad_norm: 0 });
    expect(plan("  schedule: constant").axolotl.lr_scheduler).toBe("constant");
  });

  it("maps quantized base weights: nf4 → qlora + 4-bit, int8 → 8-bit, bf16 → bf16", () => {
    const q = (kind: string) => planHandoff({ recipe: parseRecipe(`model: {name: org/tiny, quantize: ${kind}}\ndata: {train: d.jsonl}\noutput: o\ntrain: {max_steps: 1}`, "r.yaml", [], {}), target: "axolotl", model: MODEL, data: CHAT });
    expect(q("nf4").axolotl).toMatchObject({ adapter: "qlora", load_in_4bit: true, bf16: "auto" });
    expect(q("int8").axolotl).toMatchObject({ adapter: "lora", load_in_8bit: true });
    expect(q("bf16").axolotl).toMatchObject({ adapter: "lora", bf16: true });
    expect(q("nf4").model.quantize).toBe("nf4");
    expect(q("none").reported).toContain("model.quantize: finetune computes in float32; on GPUs both trainers run bf16 mixed precision where the hardware has it (float32 otherwise), so losses agree only to a few digits.");
    expect(q("bf16").reported.some((line) => line.startsWith("model.quantize"))).toBe(false);
  });

  it("maps the masking modes per data kind", () => {
    const masking = (kind: DataFacts["kind"], promptCompletionChat: boolean, completionOnly: boolean) => {
      const p = planHandoff({ recipe: recipe(`  completion_only: ${completionOnly}`), target: "trl", model: MODEL, data: { ...CHAT, kind, promptCompletionChat } });
      return { train_on_inputs: p.axolotl.train_on_inputs, completion_only_loss: p.sft.completion_only_loss, assistant_only_loss: p.sft.assistant_only_loss, row: row(p, "train.completion_only"), reported: p.reported };
    };
    expect(masking("chat", true, true)).toMatchObject({ train_on_inputs: false, completion_only_loss: true, assistant_only_loss: false });
    const multi = masking("chat", false, true);
    expect(multi).toMatchObject({ train_on_inputs: false, completion_only_loss: false, assistant_only_loss: true });
    expect(multi.row?.axolotl).toBe("train_on_inputs: false, roles_to_train: [assistant], train_on_eos: turn");
    expect(multi.reported.some((line) => line.startsWith("train.completion_only: TRL's assistant_only_loss needs a chat template with {% generation %} markers"))).toBe(true);
    expect(masking("chat", false, false)).toMatchObject({ train_on_inputs: true, completion_only_loss: false, assistant_only_loss: false });
    expect(masking("completion", false, true)).toMatchObject({ train_on_inputs: false, completion_only_loss: true });
    expect(masking("completion", false, false)).toMatchObject({ train_on_inputs: true, completion_only_loss: false });
    const text = masking("text", false, true);
    expect(text).toMatchObject({ completion_only_loss: false });
    expect(text.row?.axolotl).toBe("train_on_inputs: false (plain text: every token is trained)");
    expect(row(plan("", "axolotl", { ...CHAT, kind: "completion" }), "data.format")?.axolotl).toBe("type: input_output (segments)");
    expect(row(plan("", "axolotl", { ...CHAT, kind: "text" }), "data.format")?.axolotl).toBe("type: completion (field text)");
  });

  it("maps packing with FlashAttention and reports why it is needed", () => {
    const p = plan("  packing: true");
    expect(p.axolotl).toMatchObject({ sample_packing: true, pad_to_sequence_len: true, flash_attention: true });
    expect(p.sft.packing).toBe(true);
    expect(p.reported).toContain("train.packing: packed examples attend only to themselves in both trainers only with FlashAttention (flash-attn must be installed); without it they would see each other.");
  });

  it("maps early stopping with the best checkpoint kept, and reports save/eval steps that do not line up", () => {
    const p = plan("  early_stopping_patience: 3\n  eval_every: 20\n  save_every: 30", "trl");
    expect(p.axolotl).toMatchObject({ early_stopping_patience: 3, load_best_model_at_end: true });
    expect(p.sft).toMatchObject({ load_best_model_at_end: true, metric_for_best_model: "eval_loss", greater_is_better: false });
    expect(p.earlyStoppingPatience).toBe(3);
    expect(p.reported).toContain("train.early_stopping_patience: transformers needs save_steps (30) to be a multiple of eval_steps (20) to keep the best checkpoint; set train.save_every to a multiple of train.eval_every.");
  });

  it("has no evaluation without validation data", () => {
    const p = plan("", "trl", { ...CHAT, hasValidation: false, validationFrom: "none" });
    expect(p.sft.eval_strategy).toBe("no");
    expect(p.axolotl).not.toHaveProperty("eval_steps");
    expect(row(p, "data.validation")?.axolotl).toBe("val_set_size: 0 (no evaluation)");
  });

  it("reports the global batch under data parallelism, auto checkpointing and the seed", () => {
    const p = plan("  batch_size: 2\n  grad_accum: 8");
    expect(p.reported).toContain("train.batch_size × train.grad_accum: the batch per optimizer step is 16 sequences on one machine, but 16 × the number of GPUs under data parallelism; divide gradient_accumulation_steps by the GPU count to keep it (and the step count per epoch).");
    expect(p.reported.some((line) => line.startsWith('train.gradient_checkpointing: "auto" decides'))).toBe(true);
    expect(plan("  gradient_checkpointing: false").axolotl.gradient_checkpointing).toBe(false);
  });

  it("names a local model folder and reports that no commit pins it", () => {
    const p = plan("", "axolotl", CHAT, { kind: "local", dir: "/models/tiny" });
    expect(p.axolotl.base_model).toBe("/models/tiny");
    expect(p.axolotl).not.toHaveProperty("revision_of_model");
    expect(p.model.revision).toBeNull();
    expect(p.reported).toContain("model.name: /models/tiny is a local folder, so no commit pins it; copy that folder to the same path on every node (or upload it to the hub and name it org/name@sha).");
  });
});
