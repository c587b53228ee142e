import { basename, isAbsolute } from "node:path";
import { parse as parseYaml, stringify } from "yaml";
import { isLocalPath, modelName } from "../model/model-name.js";
import type { AdapterConfig } from "./peft-load.js";
import type { RunLock } from "../train/lock.js";

/** README.md for an exported adapter: what it is, where it came from, and how to load it in PEFT, vLLM and llama.cpp. */
export function modelCard(params: { config: AdapterConfig; lock: RunLock | null; adapterSha256: string; recipeYaml: string | null; finalLoss: number | null; finalValLoss: number | null; source: string }): string {
  const { config, lock } = params;
  const named = config.base_model_name_or_path ?? null;
  // A local base is named by its folder's name only, and the code samples say where to put its path.
  const local = named !== null && isLocalPath(named);
  const base = named === null ? "(unknown base model)" : modelName(named);
  const load = local ? `path/to/${base}` : base;
  const revision = config.revision ?? null;
  const modules = Array.isArray(config.target_modules) ? config.target_modules.join(", ") : String(config.target_modules ?? "");
  const lines = [
    "---",
    ...(local || named === null ? [] : [`base_model: ${base}`]),
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
    // QLoRA-style: the adapter learned against rounded weights but is applied to the original ones, as QLoRA's are.
    if (lock.model.quantize !== "none") lines.push(`| base weights while training | ${lock.model.quantize} (the adapter applies to the original full-precision model) |`);
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
    `base = AutoModelForCausalLM.from_pretrained("${load}"${revision ? `, revision="${revision}"` : ""})`,
    'model = PeftModel.from_pretrained(base, "./")  # this folder',
    `tokenizer = AutoTokenizer.from_pretrained("${load}")`,
    "```",
    "",
    "vLLM:",
    "",
    "```sh",
    `vllm serve ${load} --enable-lora --lora-modules adapter=./${config.r > 16 ? ` --max-lora-rank ${config.r}` : ""}`,
    "```",
    "",
    "llama.cpp / Ollama: `finetune export` writes the model with this adapter merged in as one GGUF file, with an",
    "Ollama Modelfile next to it (or, with `--format gguf`, adapter.gguf with the base model as base.gguf):",
    "",
    "```sh",
    `npx finetune export ${params.source} --format gguf-model --out gguf/`,
    "llama-cli -m gguf/model.gguf -cnv",
    "ollama create my-model -f gguf/Modelfile && ollama run my-model",
    "```",
    "",
    "finetune:",
    "",
    "```sh",
    `npx finetune generate --model ${load} --adapter ./ --prompt "…"`,
    "```",
  );
  const recipe = params.recipeYaml === null ? null : shareableRecipe(params.recipeYaml);
  if (recipe) lines.push("", "## Recipe", "", "```yaml", recipe.trimEnd(), "```");
  return `${lines.join("\n")}\n`;
}

/**
 * The run's recipe for publishing: the model by its name, and no absolute path of the user's (an absolute
 * output or data path becomes its last component). Null when the file cannot be read as YAML.
 */
function shareableRecipe(yaml: string): string | null {
  let recipe: unknown;
  try {
    recipe = parseYaml(yaml, { maxAliasCount: 100, logLevel: "error" });
  } catch {
    return null;
  }
  if (typeof recipe !== "object" || recipe === null || Array.isArray(recipe)) return null;
  const strip = (value: unknown): unknown =>
    typeof value === "string" ? (isAbsolute(value) ? basename(value) : value) : Array.isArray(value) ? value.map(strip) : typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strip(v)])) : value;
  // The model by its name in either form; float32 (quantize: none, or a run from before the option) as the plain
  // `model: name` a reader would write, another format as the mapping that says it.
  const given = "model" in recipe ? recipe.model : undefined;
  const model = typeof given === "string" ? modelName(given) : isNamed(given) ? (given.quantize === "none" ? modelName(given.name) : { ...given, name: modelName(given.name) }) : undefined;
  return stringify({ ...(strip(recipe) as object), ...(model === undefined ? {} : { model }) });
}

function isNamed(value: unknown): value is { name: string; quantize?: unknown } {
  return typeof value === "object" && value !== null && "name" in value && typeof value.name === "string";
}
