import { UserError } from "../errors.js";
import { ADAMW_DEFAULTS } from "../train/optimizer.js";
import type { Recipe } from "../recipe/schema.js";
import type { ExampleKind } from "./dataset-convert.js";
import type { PinnedModel } from "./pin-model.js";
import { AXOLOTL_VERSION, TRL_VERSION } from "./versions.js";

export type HandoffTarget = "axolotl" | "trl";

/** One recipe option and what it became in each target: a field with its value, or "reported: why". */
export interface MappingRow {
  option: string;
  value: string;
  axolotl: string;
  trl: string;
}

/** Facts about the converted data the mapping depends on. */
export interface DataFacts {
  kind: ExampleKind;
  /** Chat data written for TRL as conversational prompt-completion (see trlRow). */
  promptCompletionChat: boolean;
  hasValidation: boolean;
  validationFrom: "split" | "file" | "none";
}

export interface HandoffPlan {
  rows: MappingRow[];
  /** Options (or behaviours) of the recipe that the target expresses differently or not at all, one line each. */
  reported: string[];
  /** Axolotl's top-level fields except datasets / test_datasets (axolotl.ts adds those). */
  axolotl: Record<string, unknown>;
  /** SFTConfig keyword arguments. */
  sft: Record<string, unknown>;
  /** PEFT LoraConfig keyword arguments. */
  lora: Record<string, unknown>;
  /** How train_trl.py loads the base model. */
  model: { id: string; revision: string | null; quantize: Recipe["model"]["quantize"] };
  earlyStoppingPatience: number | null;
}

const show = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value));
const field = (name: string, value: unknown): string => `${name}: ${show(value)}`;
const kwarg = (name: string, value: unknown): string => `${name}=${value === null ? "None" : typeof value === "boolean" ? (value ? "True" : "False") : show(value)}`;

/**
 * The mapping from a recipe to Axolotl (v{@link AXOLOTL_VERSION}) and TRL SFTTrainer + PEFT (v{@link TRL_VERSION}).
 * Field names and semantics are those of the versions in versions.ts. An option with no equivalent is reported
 * (the README lists it and the command prints it); an option that cannot be expressed at all is refused here.
 */
export function planHandoff(params: { recipe: Recipe; target: HandoffTarget; model: PinnedModel; data: DataFacts }): HandoffPlan {
  const { recipe, target, model, data } = params;
  const { lora, train } = recipe;
  const rows: MappingRow[] = [];
  const reported: string[] = [];
  const axolotl: Record<string, unknown> = {};
  const sft: Record<string, unknown> = {};
  const peft: Record<string, unknown> = { task_type: "CAUSAL_LM", bias: "none" };
  const add = (option: string, value: unknown, ax: string, trl: string) => rows.push({ option, value: show(value), axolotl: ax, trl });
  const report = (option: string, note: string) => reported.push(`${option}: ${note}`);
  /** One value set as-is in Axolotl's config and in SFTConfig (or PEFT's LoraConfig), with its row. */
  const same = (option: string, value: unknown, axolotlKey: string, trlKey: string, trl: Record<string, unknown> = sft) => {
    axolotl[axolotlKey] = value;
    trl[trlKey] = value;
    add(option, value, field(axolotlKey, value), kwarg(trlKey, value));
  };

  // Refusals first: a config that Axolotl's schema would reject is never written.
  if (target === "axolotl" && !Number.isInteger(lora.alpha)) {
    throw new UserError(`lora.alpha is ${lora.alpha}, but Axolotl ${AXOLOTL_VERSION} takes lora_alpha as a whole number; set lora.alpha to an integer (e.g. ${Math.round(lora.alpha)}) or export with --to trl (PEFT takes any number).`);
  }

  // model
  const id = model.kind === "hub" ? model.repo : model.dir;
  const revision = model.kind === "hub" ? model.sha : null;
  axolotl.base_model = id;
  if (revision !== null) axolotl.revision_of_model = revision;
  add("model.name", recipe.model.name, revision ? `base_model: ${id}, revision_of_model: ${revision}` : field("base_model", id), revision ? `from_pretrained("${id}", revision="${revision}")` : `from_pretrained("${id}")`);
  if (model.kind === "local") report("model.name", `${id} is a local folder, so no commit pins it; copy that folder to the same path on every node (or upload it to the hub and name it org/name@sha).`);
  const quantize = recipe.model.quantize;
  if (quantize === "nf4") {
    axolotl.adapter = "qlora";
    axolotl.load_in_4bit = true;
    add("model.quantize", quantize, "adapter: qlora, load_in_4bit: true", "BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=\"nf4\")");
  } else {
    axolotl.adapter = "lora";
    if (quantize === "int8") axolotl.load_in_8bit = true;
    add("model.quantize", quantize, quantize === "int8" ? "load_in_8bit: true" : quantize === "bf16" ? "bf16: true" : "bf16: auto (reported)", quantize === "int8" ? "BitsAndBytesConfig(load_in_8bit=True)" : quantize === "bf16" ? "torch_dtype=torch.bfloat16, bf16=True" : "bf16 when the GPU has it (reported)");
  }
  axolotl.bf16 = quantize === "bf16" ? true : "auto";
  if (quantize === "none") report("model.quantize", "finetune computes in float32; on GPUs both trainers run bf16 mixed precision where the hardware has it (float32 otherwise), so losses agree only to a few digits.");

  // data
  add("data.train", recipe.data.train, "datasets: [data/train.jsonl]", "load_dataset(\"json\", data_files=\"data/train.jsonl\")");
  add("data.format", recipe.data.format, axolotlType(data.kind), trlShape(data));
  add("data.fields", recipe.data.fields, "applied while converting (the files use our names)", "applied while converting (the files use our names)");
  if (data.validationFrom === "split") {
    axolotl.val_set_size = 0;
    add("data.validation", recipe.data.validation, "test_datasets: [data/validation.jsonl], val_set_size: 0 (split here with train.seed, as train splits)", "eval_dataset=data/validation.jsonl (split here with train.seed)");
  } else if (data.validationFrom === "file") {
    axolotl.val_set_size = 0;
    add("data.validation", recipe.data.validation, "test_datasets: [data/validation.jsonl], val_set_size: 0", "eval_dataset=data/validation.jsonl");
  } else {
    axolotl.val_set_size = 0;
    add("data.validation", recipe.data.validation, "val_set_size: 0 (no evaluation)", "no eval_dataset, eval_strategy=\"no\"");
  }

  // lora
  same("lora.r", lora.r, "lora_r", "r", peft);
  same("lora.alpha", lora.alpha, "lora_alpha", "lora_alpha", peft);
  same("lora.dropout", lora.dropout, "lora_dropout", "lora_dropout", peft);
  if (lora.target_modules === "all-linear") {
    axolotl.lora_target_linear = true;
    peft.target_modules = "all-linear";
    add("lora.target_modules", lora.target_modules, "lora_target_linear: true", kwarg("target_modules", "\"all-linear\""));
  } else {
    axolotl.lora_target_modules = [...lora.target_modules];
    peft.target_modules = [...lora.target_modules];
    add("lora.target_modules", lora.target_modules, field("lora_target_modules", lora.target_modules), kwarg("target_modules", lora.target_modules));
  }
  if (lora.layers === "all") {
    add("lora.layers", lora.layers, "(default: every layer)", "(default: every layer)");
  } else {
    axolotl.peft_layers_to_transform = [...lora.layers];
    peft.layers_to_transform = [...lora.layers];
    add("lora.layers", lora.layers, field("peft_layers_to_transform", lora.layers), kwarg("layers_to_transform", lora.layers));
  }
  same("lora.rslora", lora.rslora, "peft_use_rslora", "use_rslora", peft);

  // train: length of the run
  if (train.max_steps !== undefined) {
    same("train.max_steps", train.max_steps, "max_steps", "max_steps");
  }
  if (train.epochs !== undefined) {
    same("train.epochs", train.epochs, "num_epochs", "num_train_epochs");
  }
  // batch
  axolotl.micro_batch_size = train.batch_size;
  axolotl.gradient_accumulation_steps = train.grad_accum;
  sft.per_device_train_batch_size = train.batch_size;
  sft.per_device_eval_batch_size = train.batch_size;
  sft.gradient_accumulation_steps = train.grad_accum;
  add("train.batch_size", train.batch_size, field("micro_batch_size", train.batch_size), kwarg("per_device_train_batch_size", train.batch_size));
  add("train.grad_accum", train.grad_accum, field("gradient_accumulation_steps", train.grad_accum), kwarg("gradient_accumulation_steps", train.grad_accum));
  report("train.batch_size × train.grad_accum", `the batch per optimizer step is ${train.batch_size * train.grad_accum} sequences on one machine, but ${train.batch_size * train.grad_accum} × the number of GPUs under data parallelism; divide gradient_accumulation_steps by the GPU count to keep it (and the step count per epoch).`);
  // optimizer and schedule
  axolotl.optimizer = "adamw_torch";
  axolotl.adam_beta1 = ADAMW_DEFAULTS.beta1;
  axolotl.adam_beta2 = ADAMW_DEFAULTS.beta2;
  axolotl.adam_epsilon = ADAMW_DEFAULTS.eps;
  sft.optim = "adamw_torch";
  sft.adam_beta1 = ADAMW_DEFAULTS.beta1;
  sft.adam_beta2 = ADAMW_DEFAULTS.beta2;
  sft.adam_epsilon = ADAMW_DEFAULTS.eps;
  add("(optimizer)", "AdamW", `optimizer: adamw_torch, adam_beta1: ${ADAMW_DEFAULTS.beta1}, adam_beta2: ${ADAMW_DEFAULTS.beta2}, adam_epsilon: ${ADAMW_DEFAULTS.eps}`, `optim="adamw_torch", adam_beta1=${ADAMW_DEFAULTS.beta1}, adam_beta2=${ADAMW_DEFAULTS.beta2}, adam_epsilon=${ADAMW_DEFAULTS.eps}`);
  same("train.lr", train.lr, "learning_rate", "learning_rate");
  const hasWarmup = (train.warmup_steps ?? 0) > 0 || (train.warmup_ratio ?? 0) > 0;
  // transformers' "constant" ignores warmup; "constant_with_warmup" is finetune's constant schedule with warmup.
  const scheduler = train.schedule === "constant" && hasWarmup ? "constant_with_warmup" : train.schedule;
  axolotl.lr_scheduler = scheduler;
  sft.lr_scheduler_type = scheduler;
  add("train.schedule", train.schedule, field("lr_scheduler", scheduler), kwarg("lr_scheduler_type", `"${scheduler}"`));
  if (train.warmup_steps !== undefined) {
    same("train.warmup_steps", train.warmup_steps, "warmup_steps", "warmup_steps");
  }
  if (train.warmup_ratio !== undefined) {
    same("train.warmup_ratio", train.warmup_ratio, "warmup_ratio", "warmup_ratio");
  }
  same("train.weight_decay", train.weight_decay, "weight_decay", "weight_decay");
  // transformers clips only when max_grad_norm > 0, so 0 is "off".
  const clip = train.max_grad_norm ?? 0;
  axolotl.max_grad_norm = clip;
  sft.max_grad_norm = clip;
  add("train.max_grad_norm", train.max_grad_norm, field("max_grad_norm", clip), kwarg("max_grad_norm", clip));

  // sequences
  axolotl.sequence_len = train.max_seq_len;
  axolotl.excess_length_strategy = "truncate";
  sft.max_length = train.max_seq_len;
  add("train.max_seq_len", train.max_seq_len, `sequence_len: ${train.max_seq_len}, excess_length_strategy: truncate`, kwarg("max_length", train.max_seq_len));
  if (data.kind === "text") report("train.max_seq_len", "Axolotl's completion type splits a text longer than sequence_len into several examples instead of truncating it (finetune truncates; TRL truncates too).");
  masking(recipe, data, axolotl, sft, add, report);
  axolotl.sample_packing = train.packing;
  sft.packing = train.packing;
  if (train.packing) {
    axolotl.pad_to_sequence_len = true;
    axolotl.flash_attention = true;
    add("train.packing", true, "sample_packing: true, pad_to_sequence_len: true, flash_attention: true", "packing=True (packing_strategy \"bfd\", padding-free), attn_implementation=\"flash_attention_2\"");
    report("train.packing", "packed examples attend only to themselves in both trainers only with FlashAttention (flash-attn must be installed); without it they would see each other.");
  } else {
    add("train.packing", false, "sample_packing: false", "packing=False");
  }
  const checkpointing = train.gradient_checkpointing === "auto" ? true : train.gradient_checkpointing;
  axolotl.gradient_checkpointing = checkpointing;
  sft.gradient_checkpointing = checkpointing;
  add("train.gradient_checkpointing", train.gradient_checkpointing, field("gradient_checkpointing", checkpointing), kwarg("gradient_checkpointing", checkpointing));
  if (train.gradient_checkpointing === "auto") report("train.gradient_checkpointing", "\"auto\" decides from this machine's memory; the export turns it on (set it to false if the GPUs have room).");
  axolotl.seed = train.seed;
  sft.seed = train.seed;
  sft.data_seed = train.seed;
  add("train.seed", train.seed, field("seed", train.seed), `${kwarg("seed", train.seed)}, ${kwarg("data_seed", train.seed)}`);
  report("train.seed", "the same seed in another framework's random number generators gives the same distributions (LoRA A uniform ±1/√in, B zero; shuffling; dropout), not the same numbers.");

  // evaluation, checkpoints, early stopping
  if (data.hasValidation) {
    axolotl.eval_steps = train.eval_every;
    sft.eval_strategy = "steps";
    sft.eval_steps = train.eval_every;
    add("train.eval_every", train.eval_every, field("eval_steps", train.eval_every), `eval_strategy="steps", ${kwarg("eval_steps", train.eval_every)}`);
  } else {
    sft.eval_strategy = "no";
    add("train.eval_every", train.eval_every, "(no validation data)", "eval_strategy=\"no\"");
  }
  axolotl.save_steps = train.save_every;
  sft.save_strategy = "steps";
  sft.save_steps = train.save_every;
  add("train.save_every", train.save_every, field("save_steps", train.save_every), `save_strategy="steps", ${kwarg("save_steps", train.save_every)}`);
  const patience = train.early_stopping_patience;
  if (patience !== null && data.hasValidation) {
    axolotl.early_stopping_patience = patience;
    axolotl.load_best_model_at_end = true;
    sft.load_best_model_at_end = true;
    sft.metric_for_best_model = "eval_loss";
    sft.greater_is_better = false;
    add("train.early_stopping_patience", patience, `early_stopping_patience: ${patience}, load_best_model_at_end: true`, `EarlyStoppingCallback(early_stopping_patience=${patience}), load_best_model_at_end=True, metric_for_best_model="eval_loss"`);
    if (train.save_every % train.eval_every !== 0) report("train.early_stopping_patience", `transformers needs save_steps (${train.save_every}) to be a multiple of eval_steps (${train.eval_every}) to keep the best checkpoint; set train.save_every to a multiple of train.eval_every.`);
  } else {
    add("train.early_stopping_patience", patience, "(off)", "(off)");
  }
  const outputDir = `./${recipe.output.split(/[\\/]/).filter((part) => part !== "" && part !== ".").pop() ?? "output"}`;
  axolotl.output_dir = outputDir;
  sft.output_dir = outputDir;
  add("output", recipe.output, field("output_dir", outputDir), kwarg("output_dir", `"${outputDir}"`));
  sft.report_to = "none";

  return { rows, reported, axolotl, sft, lora: peft, model: { id, revision, quantize }, earlyStoppingPatience: patience !== null && data.hasValidation ? patience : null };
}

function axolotlType(kind: ExampleKind): string {
  if (kind === "text") return "type: completion (field text)";
  if (kind === "completion") return "type: input_output (segments)";
  return "type: chat_template, chat_template: tokenizer_default, field_messages: messages";
}

function trlShape(data: DataFacts): string {
  if (data.kind === "text") return "language modeling {text}";
  if (data.kind === "completion") return "prompt-completion {prompt, completion}";
  return data.promptCompletionChat ? "conversational prompt-completion {prompt: [...], completion: [assistant]}" : "conversational {messages}";
}

/** train.completion_only: which tokens carry the loss, per data kind. */
function masking(
  recipe: Recipe,
  data: DataFacts,
  axolotl: Record<string, unknown>,
  sft: Record<string, unknown>,
  add: (option: string, value: unknown, ax: string, trl: string) => void,
  report: (option: string, note: string) => void,
): void {
  const only = recipe.train.completion_only;
  axolotl.train_on_inputs = !only;
  if (data.kind === "text") {
    sft.completion_only_loss = false;
    add("train.completion_only", only, `train_on_inputs: ${!only} (plain text: every token is trained)`, "completion_only_loss=False (language modeling: every token)");
    return;
  }
  if (data.kind === "completion") {
    sft.completion_only_loss = only;
    add("train.completion_only", only, `train_on_inputs: ${!only} (prompt segment label: false)`, kwarg("completion_only_loss", only));
    report("data (completion)", "both trainers tokenize the prompt and the completion separately (finetune encodes the whole text once and masks by character span), so a token straddling the boundary can split differently.");
    return;
  }
  if (only && data.promptCompletionChat) {
    sft.completion_only_loss = true;
    sft.assistant_only_loss = false;
  } else {
    sft.completion_only_loss = false;
    sft.assistant_only_loss = only;
  }
  const trl = only ? (data.promptCompletionChat ? "completion_only_loss=True (the final assistant turn is the completion)" : "assistant_only_loss=True") : "assistant_only_loss=False, completion_only_loss=False";
  add("train.completion_only", only, `train_on_inputs: ${!only}, roles_to_train: ${only ? "[assistant]" : "[system, user, assistant, tool]"}, train_on_eos: turn`, trl);
  if (only && !data.promptCompletionChat) report("train.completion_only", `TRL's assistant_only_loss needs a chat template with {% generation %} markers; TRL ${TRL_VERSION} swaps in a training template for the model families it knows and refuses others (use --to axolotl then).`);
}
