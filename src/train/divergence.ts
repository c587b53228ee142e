import type * as tfc from "@tensorflow/tfjs-core";
import { RuntimeFailure } from "../errors.js";
import type { Tf } from "../model/types.js";
import type { AdamW } from "./optimizer.js";

/**
 * Names of the tensors holding NaN or ±Infinity. One read-back for all of them: x·0 is 0 for every finite x and
 * NaN otherwise, so each tensor's sum of x·0 flags it.
 */
export async function nonFiniteTensors(tf: Tf, tensors: Array<{ name: string; tensor: tfc.Tensor }>): Promise<string[]> {
  if (tensors.length === 0) return [];
  const stacked = tf.tidy(() => tf.stack(tensors.map(({ tensor }) => tf.sum(tf.mul(tensor, 0)))));
  const flags = await stacked.data();
  stacked.dispose();
  return tensors.flatMap(({ name }, i) => (flags[i] === 0 ? [] : [name]));
}

export interface DivergenceContext {
  step: number;
  lr: number;
  weightDecay: number;
  /** The newest checkpoint written (or resumed from), or null when there is none yet. */
  lastCheckpoint: number | null;
}

/**
 * Throws when an optimizer step left a LoRA weight or an AdamW moment non-finite: saving it would write a broken
 * adapter and call it trained. Nothing of this step has been saved when this runs.
 */
export async function assertFiniteAfterStep(tf: Tf, variables: tfc.Variable[], optimizer: AdamW, context: DivergenceContext): Promise<void> {
  const tensors = variables.flatMap((variable) => {
    const out = [{ name: variable.name, tensor: variable as tfc.Tensor }];
    const m = optimizer.m.get(variable.name);
    const v = optimizer.v.get(variable.name);
    if (m) out.push({ name: `AdamW first moment of ${variable.name}`, tensor: m });
    if (v) out.push({ name: `AdamW second moment of ${variable.name}`, tensor: v });
    return out;
  });
  const bad = await nonFiniteTensors(tf, tensors);
  if (bad.length === 0) return;
  throw new RuntimeFailure(
    `training diverged at step ${context.step}: ${bad.length} tensor${bad.length === 1 ? "" : "s"} became NaN or Infinity (${bad.slice(0, 3).join(", ")}${bad.length > 3 ? ", …" : ""}) ` +
      `with lr ${context.lr.toExponential(3)} and weight_decay ${context.weightDecay}. Nothing from this step was saved; ${keptCheckpoint(context.lastCheckpoint)} ` +
      `Start again with a lower train.lr or train.weight_decay (a changed recipe is a new run: --overwrite or a new --output).`,
  );
}

/** Throws when the validation loss is not a number: the adapter would be reported as trained with a NaN score. */
export function assertFiniteValidation(valLoss: number, context: DivergenceContext & { trainLoss: number }): void {
  if (Number.isFinite(valLoss)) return;
  throw new RuntimeFailure(
    `the validation loss became ${valLoss} at step ${context.step} (training loss ${context.trainLoss.toFixed(4)}, lr ${context.lr.toExponential(3)}): the model diverged on held-out data. ` +
      `This step was not saved; ${keptCheckpoint(context.lastCheckpoint)} Start again with a lower train.lr (--overwrite or a new --output).`,
  );
}

export const keptCheckpoint = (step: number | null): string =>
  step === null ? "no checkpoint had been written yet." : `checkpoints/step-${step} is the last good checkpoint and is intact.`;
