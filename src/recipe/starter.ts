/** The commented starter recipe `finetune init` writes; every key explained (recipes are documentation). */
export type StarterFormat = "auto" | "chat" | "alpaca" | "text" | "completion";

export function starterRecipe(params: { model: string; format: StarterFormat; data: string; output: string; file: string }): string {
  const chat = params.format === "chat";
  return `# finetune recipe — run it with:  npx finetune train ${params.file}
# Check it without training:        npx finetune recipe validate ${params.file}
# See the masked training text:     npx finetune preview ${params.file}

# Base model: a hub id (optionally @revision) or a local folder (relative to this file).
# Models above ~0.5B parameters do not fit the wasm heap as float32: store the frozen weights in RAM instead, with
#   model: {name: ${params.model}, quantize: nf4}    (bf16 and int8 too; they need the native addon)
model: ${params.model}

data:
  # Training records: a .jsonl/.json/.csv/.parquet/.txt file, a glob, or a hub dataset org/name (its train split) or org/name/file.
  train: ${params.data}
  # Held-out fraction of train for evaluation (0 turns it off), or a file like train.
  validation: 0.05
  # ${chat ? 'chat: {"messages": [{"role": "user", "content": …}, {"role": "assistant", "content": …}]}' : "auto detects text / alpaca / chat / completion from the fields."}
  format: ${params.format}
  # Field renames when your data uses other names, e.g. {prompt: question, completion: answer}.
  fields: {}

lora:
  # Rank of the update matrices: 8–16 is typical for small models.
  r: 8
  # Scale = alpha / r.
  alpha: 16
  # Dropout on the adapter input while training.
  dropout: 0.05
  # Which projections get adapters: a list (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj) or all-linear.
  target_modules: [q_proj, v_proj]
  # Which layers: all, or a list of indices.
  layers: all
  # Rank-stabilised scaling (alpha / sqrt(r)).
  rslora: false

train:
  # Optimizer steps (or epochs: N for passes over the data).
  max_steps: 200
  # Sequences per micro-batch, and micro-batches per optimizer step.
  batch_size: 4
  grad_accum: 1
  # Peak learning rate, its decay (cosine | linear | constant) and linear warmup.
  lr: 2.0e-4
  schedule: cosine
  warmup_steps: 10
  # AdamW decoupled weight decay, and the global gradient-norm clip (null: off).
  weight_decay: 0.0
  max_grad_norm: 1.0
  # Longer examples are truncated (and counted).
  max_seq_len: 512
  # Loss only on ${chat ? "assistant turns" : "completions"}; false trains on the prompt too.
  completion_only: true
  # Pack several short examples into one sequence (no attention across them).
  packing: false
  # Recompute activations in the backward pass (less memory, ~30% more compute): true, false or auto.
  gradient_checkpointing: auto
  # Seed for the data order, the validation split, LoRA init and dropout.
  seed: 42
  # Evaluate and checkpoint every N steps; stop after N evaluations without improvement (null: never).
  eval_every: 50
  save_every: 50
  early_stopping_patience: null

# Run directory (relative to where you run finetune): adapter/, checkpoints/, metrics.jsonl, loss.svg.
output: ${params.output}
`;
}
