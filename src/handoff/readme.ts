import type { HandoffPlan, HandoffTarget, MappingRow } from "./mapping.js";
import { AXOLOTL_VERSION, PEFT_MIN_VERSION, TRL_VERSION } from "./versions.js";

/** A table cell: pipes escaped, line breaks flattened. */
const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/[\r\n]+/g, " ");

function table(rows: MappingRow[], target: HandoffTarget): string {
  const head = `| recipe option | value | ${target === "axolotl" ? `Axolotl ${AXOLOTL_VERSION}` : `TRL ${TRL_VERSION} / PEFT`} |\n|---|---|---|`;
  return [head, ...rows.map((row) => `| ${cell(row.option)} | ${cell(row.value)} | ${cell(target === "axolotl" ? row.axolotl : row.trl)} |`)].join("\n");
}

/** README.md of the hand-off folder: how to run it, what each option became, what was reported, how to come back. */
export function handoffReadme(params: { plan: HandoffPlan; target: HandoffTarget; recipeFile: string; model: string; trainExamples: number; validationExamples: number; files: string[] }): string {
  const { plan, target } = params;
  const output = String(plan.sft.output_dir ?? "./output");
  const adapterDir = target === "axolotl" ? output : `${output}/adapter`;
  const run =
    target === "axolotl"
      ? [`pip install "axolotl[flash-attn,deepspeed]==${AXOLOTL_VERSION}"`, "accelerate launch -m axolotl.cli.train axolotl.yaml", "# several GPUs with DeepSpeed ZeRO-3: add `deepspeed: deepspeed_configs/zero3_bf16.json` to axolotl.yaml (`axolotl fetch deepspeed_configs`)"]
      : [`pip install "trl==${TRL_VERSION}" "peft>=${PEFT_MIN_VERSION}" accelerate datasets bitsandbytes`, "accelerate launch --config_file accelerate_config.yaml --num_processes <GPUs> train_trl.py"];
  const reported = plan.reported.length > 0 ? plan.reported.map((line) => `- ${line}`).join("\n") : "- nothing";
  return `# Hand-off of ${params.recipeFile} to ${target === "axolotl" ? "Axolotl" : "TRL"}

Written by \`finetune export-recipe --to ${target}\`. Targets ${target === "axolotl" ? `Axolotl ${AXOLOTL_VERSION}` : `TRL ${TRL_VERSION} with PEFT >= ${PEFT_MIN_VERSION}`}.
Base model: ${params.model}. Data: ${params.trainExamples} training and ${params.validationExamples} validation examples, converted as \`finetune train\` reads them.

Files: ${params.files.map((file) => `\`${file}\``).join(", ")}.

## Run

From this folder (the configs name the data files relative to it):

\`\`\`sh
${run.join("\n")}
\`\`\`

## Bring the adapter back to finetune

The run writes a PEFT adapter (adapter_config.json, adapter_model.safetensors) to \`${adapterDir}\`. \`finetune generate\` and
\`finetune eval\` take any PEFT LoRA adapter with \`--adapter\`:

\`\`\`sh
finetune generate --model ${params.model} --adapter ${adapterDir} --chat --prompt "Hello"
finetune eval --model ${params.model} --adapter ${adapterDir} --data <validation records as finetune reads them, e.g. the recipe's data.validation>
\`\`\`

\`finetune export\` takes the adapter folder too: one GGUF file with the adapter merged in, with an Ollama Modelfile, for
llama.cpp, Ollama and LM Studio:

\`\`\`sh
finetune export ${adapterDir} --format gguf-model --out gguf/
llama-cli -m gguf/model.gguf -cnv
ollama create my-model -f gguf/Modelfile && ollama run my-model
\`\`\`

## Mapping

${table(plan.rows, target)}

## Reported (no exact equivalent)

${reported}
`;
}
