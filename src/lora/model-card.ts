import type { AdapterConfig } from "./peft-load.js";
import type { RunLock } from "../train/lock.js";

/** README.md for an exported adapter: what it is, where it came from, and how to load it in PEFT, vLLM and llama.cpp. */
export function modelCard(params: { config: AdapterConfig; lock: RunLock | null; adapterSha256: string; recipeYaml: string | null; finalLoss: number | null; finalValLoss: number | null; source: string }): string {
  const { config, lock } = params;
  const base = config.base_model_name_or_path ?? "(unknown base model)";
  const revision = config.revision ?? null;
  const modules = Array.isArray(config.target_modules) ? config.target_modules.join(", ") : String(config.target_modules ?? "");
  const lines = [
    "---",
    `base_model: ${base}`,
    "library_name: peft",
    "tags: [lora, finetune]",
    "---",
    "",
    `# LoRA adapter for ${base}`,
    "",
    `Trained with [finetune](https://www.npmjs.com/package/finetune) from \`${params.source}\`.`,
    "",
    "| | |",
    "| --- | --- |",
    `| base model | \`${base}\`${revision ? ` at commit \`${revision}\`` : " (local folder)"} |`,
    `| LoRA | r=${config.r}, alpha=${config.lora_alpha}${config.use_rslora ? " (rsLoRA)" : ""}, dropout=${config.lora_dropout ?? 0}, modules: ${modules} |`,
    `| last step train loss | ${params.finalLoss?.toFixed(4) ?? "–"} |`,
    `| final validation loss | ${params.finalValLoss?.toFixed(4) ?? "–"} |`,
  ];
  if (lock) {
    lines.push(`| backend | ${lock.backend.name} (tfjs ${lock.backend.tfjs ?? "?"}), finetune ${lock.finetune} |`);
    for (const file of lock.data) lines.push(`| ${file.role} data | \`${file.path}\` — ${file.records} records, sha256 \`${file.sha256}\` |`);
  }
  lines.push(`| adapter sha256 | \`${params.adapterSha256}\` |`);
  lines.push(
    "",
    "## Load it",
    "",
    "Python PEFT:",
    "",
    "```python",
    "from peft import PeftModel",
    "from transformers import AutoModelForCausalLM, AutoTokenizer",
    `base = AutoModelForCausalLM.from_pretrained("${base}"${revision ? `, revision="${revision}"` : ""})`,
    'model = PeftModel.from_pretrained(base, "./")  # this folder',
    `tokenizer = AutoTokenizer.from_pretrained("${base}")`,
    "```",
    "",
    "vLLM:",
    "",
    "```sh",
    `vllm serve ${base} --enable-lora --lora-modules adapter=./${config.r > 16 ? ` --max-lora-rank ${config.r}` : ""}`,
    "```",
    "",
    "llama.cpp / Ollama: export a GGUF adapter with `finetune export <run> --format gguf --out <dir>`, then",
    "",
    "```sh",
    "llama-cli -m base-model.gguf --lora adapter.gguf",
    "```",
    "",
    "finetune:",
    "",
    "```sh",
    `npx finetune generate --model ${base} --adapter ./ --prompt "…"`,
    "```",
  );
  if (params.recipeYaml) lines.push("", "## Recipe", "", "```yaml", params.recipeYaml.trimEnd(), "```");
  return `${lines.join("\n")}\n`;
}
