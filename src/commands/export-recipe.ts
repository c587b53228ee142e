import { mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { CommandContext } from "../context.js";
import { UserError } from "../errors.js";
import { tempSibling, writeFileAtomic } from "../io/atomic.js";
import { checkOutputPath, makeDirs, removeCreated, shortPath } from "../io/output-path.js";
import { resolveToken } from "../hub/token.js";
import { loadRecipe } from "../recipe/load.js";
import { loadTokenizer } from "../tokenizer/load.js";
import { axolotlYaml, TRAIN_FILE, VALIDATION_FILE } from "../handoff/axolotl.js";
import { axolotlRow, exampleKind, readRecipeExamples, singleFinalAssistant, toJsonl, trlRow } from "../handoff/dataset-convert.js";
import { planHandoff, type HandoffTarget } from "../handoff/mapping.js";
import { pinModel } from "../handoff/pin-model.js";
import { handoffReadme } from "../handoff/readme.js";
import { accelerateConfig, trlScript } from "../handoff/trl.js";

interface ExportRecipeOptions {
  to: HandoffTarget;
  out: string;
  set?: string[];
}

/** What tempSibling() adds to a name: `.tmp-<pid>-<8 hex>`. */
const TEMP_SUFFIX = 24;

const exists = (path: string) => stat(path).then(() => true, () => false);

/**
 * `finetune export-recipe <recipe> --to axolotl|trl --out <dir>`: the same run for a distributed trainer — its config
 * (or script), the data converted as train reads it, and a README mapping every option. Never writes over --out.
 */
export async function run(context: CommandContext, args: string[], options: ExportRecipeOptions): Promise<void> {
  const { reporter } = context;
  const out = resolve(options.out);
  await checkOutputPath({ path: out, flag: "--out", kind: "directory", reserve: 64, leafReserve: TEMP_SUFFIX });
  if (await exists(out)) throw new UserError(`--out ${shortPath(out)} already exists; choose a new directory (nothing was written).`);
  const { recipe, file, baseDir } = await loadRecipe({ file: args[0] ?? "", sets: options.set });
  const model = await pinModel({ name: recipe.model.name, baseDir, output: resolve(recipe.output), env: context.env });
  const tokenizer = await loadTokenizer(model.dir);
  const data = await readRecipeExamples({ recipe, baseDir, env: context.env, hasChatTemplate: tokenizer.chatTemplate !== null, token: resolveToken({ env: context.env }).token, signal: context.signal });
  const kind = exampleKind(data);
  const hasValidation = data.validation.length > 0;
  const promptCompletionChat = kind === "chat" && recipe.train.completion_only && singleFinalAssistant(data.train) && singleFinalAssistant(data.validation);
  const plan = planHandoff({ recipe, target: options.to, model, data: { kind, promptCompletionChat, hasValidation, validationFrom: data.validationFrom } });

  // Axolotl's input_output rows carry the special tokens finetune's tokenization adds (Axolotl adds none there).
  const tokens = { bos: tokenizer.specialsAround("a").front.length > 0 ? tokenizer.bosToken : null, eos: tokenizer.eosToken };
  const row = options.to === "axolotl" ? (example: (typeof data.train)[number]) => axolotlRow(example, tokens) : (example: (typeof data.train)[number]) => trlRow(example, promptCompletionChat);
  const files: Record<string, string> = { [TRAIN_FILE]: toJsonl(data.train.map(row)) };
  if (hasValidation) files[VALIDATION_FILE] = toJsonl(data.validation.map(row));
  if (options.to === "axolotl") {
    files["axolotl.yaml"] = axolotlYaml({ plan, kind, completionOnly: recipe.train.completion_only, hasValidation, recipeFile: args[0] ?? file });
  } else {
    files["train_trl.py"] = trlScript({ plan, hasValidation, recipeFile: args[0] ?? file });
    files["accelerate_config.yaml"] = accelerateConfig();
  }
  const modelName = model.kind === "hub" ? `${model.repo}@${model.sha}` : model.dir;
  const names = [...Object.keys(files), "README.md"].sort();
  files["README.md"] = handoffReadme({ plan, target: options.to, recipeFile: args[0] ?? file, model: modelName, trainExamples: data.train.length, validationExamples: data.validation.length, files: names });

  // Everything goes to a temp folder first and is renamed into place at the end.
  const temp = tempSibling(out);
  const created = await makeDirs({ path: dirname(out), flag: "--out" });
  try {
    await mkdir(join(temp, "data"), { recursive: true });
    for (const [name, text] of Object.entries(files)) await writeFileAtomic(join(temp, name), text);
    await rename(temp, out);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    await removeCreated(created);
    throw error;
  }
  for (const line of plan.reported) reporter.warn(`reported: ${line}`);
  reporter.result(
    { to: options.to, out, model: modelName, pinned_by: model.kind === "hub" ? model.pinnedBy : null, files: names, train_examples: data.train.length, validation_examples: data.validation.length, reported: plan.reported },
    (c) => `${c.green("✓")} wrote the ${options.to === "axolotl" ? "Axolotl" : "TRL"} hand-off of ${file} to ${out}: ${names.join(", ")} (model ${modelName}; ${plan.reported.length} option${plan.reported.length === 1 ? "" : "s"} reported, see README.md)`,
  );
}
