import type { CommandContext } from "../context.js";
import { prepareData } from "../data/prepare.js";
import { previewExample } from "../data/preview.js";
import { UserError } from "../errors.js";
import { resolveModelSource } from "../hub/model-source.js";
import { resolveToken } from "../hub/token.js";
import { loadRecipe } from "../recipe/load.js";
import { loadTokenizer } from "../tokenizer/load.js";
import { transferProgress } from "../ui/transfer-progress.js";

/** `finetune preview <recipe> [-n 3]`: the first examples as the model will see them, trained tokens highlighted. */
export async function run(context: CommandContext, args: string[], options: { n?: string; set?: string[] }): Promise<void> {
  const { reporter } = context;
  const count = Number(options.n ?? "3");
  if (!Number.isInteger(count) || count < 1) throw new UserError(`-n ${options.n ?? ""} must be a whole number ≥ 1.`);
  const { recipe, baseDir } = await loadRecipe({ file: args[0] ?? "", sets: options.set });
  const progress = transferProgress(reporter);
  const token = resolveToken({ env: context.env }).token;
  const source = await resolveModelSource({ model: recipe.model.name, baseDir, env: context.env, token, signal: context.signal, onEvent: progress.onEvent }).finally(() => progress.finish());
  const tokenizer = await loadTokenizer(source.dir);
  const data = await prepareData({ recipe, baseDir, tokenizer, env: context.env, token, signal: context.signal, onPull: progress.onEvent });
  for (const warning of data.warnings) reporter.warn(warning);
  const items = data.trainItems.slice(0, count);
  const c = reporter.color;
  reporter.result(
    { format: data.format, examples: items.map((item) => ({ ids: item.ids, mask: Array.from(item.labels) })) },
    () =>
      [
        `format ${data.format}${data.formatDetected ? " (detected)" : ""} · ${c.bgGreen.black("trained")} · ${c.dim("context (not trained)")}`,
        ...items.map((item, i) => `${c.bold(`── example ${i + 1} (${item.ids.length} tokens, ${item.labels.reduce((a, b) => a + b, 0)} trained) ──`)}\n${previewExample(tokenizer, item, { trained: (s) => (c.level > 0 ? c.bgGreen.black(s) : `[[${s}]]`), prompt: (s) => c.dim(s) })}`),
      ].join("\n"),
  );
}
