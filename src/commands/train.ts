import { join } from "node:path";
import type { CommandContext } from "../context.js";
import { UserError } from "../errors.js";
import type { Quantize } from "../model/quantize.js";
import { loadRecipe } from "../recipe/load.js";
import { averageLabel } from "../train/loss-average.js";
import { runTraining } from "../train/run-training.js";

interface TrainOptions {
  set?: string[];
  output?: string;
  maxSteps?: string;
  /** One of QUANTIZE_CHOICES: commander has checked it. */
  quantize?: Quantize;
  resume?: boolean;
  overwrite?: boolean;
}

/** `finetune train <recipe.yaml>`: LoRA fine-tuning from a recipe, resumable, with metrics and a loss plot. */
export async function run(context: CommandContext, args: string[], options: TrainOptions): Promise<void> {
  if (options.resume && options.overwrite) throw new UserError("--resume and --overwrite exclude each other: resume keeps the run, overwrite starts it again.");
  const maxSteps = options.maxSteps === undefined ? undefined : Number(options.maxSteps);
  if (maxSteps !== undefined && (!Number.isInteger(maxSteps) || maxSteps < 1)) throw new UserError(`--max-steps ${options.maxSteps} must be a whole number ≥ 1.`);
  const { recipe, baseDir } = await loadRecipe({ file: args[0] ?? "", sets: options.set, flags: { output: options.output, maxSteps, quantize: options.quantize } });
  // The resolved recipe carries every override, so resuming with it continues exactly this run.
  const resumeHint = `finetune train ${join(recipe.output, "recipe.resolved.yaml")} --resume`;
  const quantizeSetBy = { setBy: options.quantize === undefined ? "model.quantize" : "--quantize", lock: false };
  const result = await runTraining({ context, recipe, baseDir, resume: options.resume ?? false, overwrite: options.overwrite ?? false, resumeHint, quantizeSetBy });
  context.reporter.result(result, (c) =>
    [
      `${c.green("✓")} trained ${result.steps} steps${result.stop_reason === "early_stopping" ? " (early stopping)" : ""}: ` +
        `last step loss ${result.last_step_loss?.toFixed(4) ?? "–"}, ${averageLabel(result.avg_loss_steps)} ${result.avg_loss?.toFixed(4) ?? "–"}, ` +
        `validation loss ${result.val_loss === null ? "–" : `${result.val_loss.toFixed(4)} (step ${result.val_loss_step ?? "?"})`}`,
      `adapter: ${result.adapter}`,
      `loss curve: ${result.output}/loss.svg`,
    ].join("\n"),
  );
}
