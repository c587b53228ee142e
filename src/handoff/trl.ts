import type { HandoffPlan } from "./mapping.js";
import { TRAIN_FILE, VALIDATION_FILE } from "./axolotl.js";
import { PEFT_MIN_VERSION, TRL_VERSION } from "./versions.js";

/** A JSON-like value as a Python literal (strings through JSON escapes, which Python reads the same way). */
export function pyLiteral(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "None";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pyLiteral).join(", ")}]`;
  if (typeof value === "object") return `{${Object.entries(value).map(([key, item]) => `${JSON.stringify(key)}: ${pyLiteral(item)}`).join(", ")}}`;
  return "None";
}

/** A dict literal, one key per line, for the settings blocks of train_trl.py. */
function pyDict(value: Record<string, unknown>): string {
  const lines = Object.entries(value).map(([key, item]) => `    ${JSON.stringify(key)}: ${pyLiteral(item)},`);
  return `{\n${lines.join("\n")}\n}`;
}

/** train_trl.py: SFTTrainer + PEFT LoraConfig, the model and tokenizer loaded at the pinned commit. */
export function trlScript(params: { plan: HandoffPlan; hasValidation: boolean; recipeFile: string }): string {
  const { plan } = params;
  const { quantize } = plan.model;
  const packing = plan.sft.packing === true;
  const sft = { ...plan.sft };
  const modelKwargs: string[] = [];
  if (quantize === "nf4") modelKwargs.push('"quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)', '"device_map": {"": PartialState().process_index}');
  if (quantize === "int8") modelKwargs.push('"quantization_config": BitsAndBytesConfig(load_in_8bit=True)', '"device_map": {"": PartialState().process_index}');
  if (quantize === "bf16") modelKwargs.push('"torch_dtype": torch.bfloat16');
  if (packing) modelKwargs.push('"attn_implementation": "flash_attention_2"');
  const bf16 = quantize === "bf16" ? "True" : "torch.cuda.is_available() and torch.cuda.is_bf16_supported()";
  const dataFiles = params.hasValidation ? `{"train": data_path(${JSON.stringify(TRAIN_FILE)}), "validation": data_path(${JSON.stringify(VALIDATION_FILE)})}` : `{"train": data_path(${JSON.stringify(TRAIN_FILE)})}`;
  return `# Written by \`finetune export-recipe ${params.recipeFile.replace(/[\r\n]/g, " ")} --to trl\`.
# Targets TRL ${TRL_VERSION} (trl/trainer/sft_config.py: max_length, packing, completion_only_loss, assistant_only_loss)
# and PEFT >= ${PEFT_MIN_VERSION} (LoraConfig). Every setting below comes from the recipe; README.md maps each one.
# Run: accelerate launch --config_file accelerate_config.yaml train_trl.py
import os

import torch
from accelerate import PartialState
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, EarlyStoppingCallback
from trl import SFTConfig, SFTTrainer

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = ${pyLiteral(plan.model.id)}
# The commit the recipe was pinned to; None only for a local folder.
REVISION = ${pyLiteral(plan.model.revision)}
EARLY_STOPPING_PATIENCE = ${pyLiteral(plan.earlyStoppingPatience)}

SFT_SETTINGS = ${pyDict(sft)}

LORA_SETTINGS = ${pyDict(plan.lora)}


def data_path(name):
    return os.path.join(HERE, name)


def main():
    tokenizer = AutoTokenizer.from_pretrained(MODEL, revision=REVISION)
    model_kwargs = {${modelKwargs.join(", ")}}
    model = AutoModelForCausalLM.from_pretrained(MODEL, revision=REVISION, **model_kwargs)
    data = load_dataset("json", data_files=${dataFiles})
    args = SFTConfig(bf16=${bf16}, **SFT_SETTINGS)
    callbacks = [EarlyStoppingCallback(early_stopping_patience=EARLY_STOPPING_PATIENCE)] if EARLY_STOPPING_PATIENCE else []
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"] if "validation" in data else None,
        processing_class=tokenizer,
        peft_config=LoraConfig(**LORA_SETTINGS),
        callbacks=callbacks,
    )
    trainer.train()
    # The PEFT adapter (adapter_config.json + adapter_model.safetensors) that finetune generate/export/eval read.
    trainer.save_model(os.path.join(args.output_dir, "adapter"))


if __name__ == "__main__":
    main()
`;
}

/** accelerate_config.yaml: data parallel on every GPU of one machine; ZeRO-3 as a commented alternative. */
export function accelerateConfig(): string {
  return `# accelerate launch --config_file accelerate_config.yaml train_trl.py
# Multi-GPU data parallel (DDP) on one machine. Set num_processes to the number of GPUs (or pass --num_processes N).
# For several machines: set num_machines, machine_rank (0..N-1 on each), main_process_ip and main_process_port.
compute_environment: LOCAL_MACHINE
distributed_type: MULTI_GPU
num_machines: 1
machine_rank: 0
num_processes: 2
gpu_ids: all
# Precision is chosen in train_trl.py (SFTConfig bf16 when the GPU has it), so accelerate adds none of its own.
mixed_precision: "no"
rdzv_backend: static
same_network: true
main_training_function: main
use_cpu: false

# DeepSpeed ZeRO-3 instead (shards parameters, gradients and optimizer state across GPUs; needs \`pip install deepspeed\`):
# replace distributed_type above with DEEPSPEED and uncomment:
# distributed_type: DEEPSPEED
# deepspeed_config:
#   zero_stage: 3
#   zero3_init_flag: true
#   zero3_save_16bit_model: true
#   offload_optimizer_device: none
#   offload_param_device: none
#   gradient_accumulation_steps: auto
#   gradient_clipping: auto
`;
}
