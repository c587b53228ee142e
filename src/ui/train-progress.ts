import type { Ora } from "ora";
import { averageLabel, recentAverage } from "../train/loss-average.js";
import type { EvalRow, TrainRow } from "../train/metrics.js";
import { formatDuration } from "./format.js";
import type { Reporter } from "./reporter.js";
import { startSpinner } from "./spinner.js";

/**
 * Training progress: a live line on a TTY (step/total, the loss averaged over recent steps, lr, tokens/s, ETA), a
 * plain line every few steps in CI and pipes, and one JSON object per event with --json (`loss` is that step's
 * loss, `avg_loss` the same average the line shows).
 */
export function trainProgress(reporter: Reporter, params: { totalSteps: number; startStep: number; history?: number[]; plainEverySteps?: number; plainEveryMs?: number }) {
  const everySteps = params.plainEverySteps ?? Math.max(1, Math.round(params.totalSteps / 20));
  const everyMs = params.plainEveryMs ?? 15_000;
  // Resumed runs average over the restored steps too, so the line does not jump at a resume.
  const losses = [...(params.history ?? [])];
  let lastPlain = 0;
  let spinner: Ora | null = null;
  const started = performance.now();
  const c = reporter.color;

  const line = (row: TrainRow): string => {
    const done = row.step - params.startStep;
    const perStep = (performance.now() - started) / 1000 / Math.max(1, done);
    const eta = perStep * (params.totalSteps - row.step);
    const avg = recentAverage(losses) ?? { value: row.loss, steps: 1 };
    return `step ${row.step}/${params.totalSteps} · ${averageLabel(avg.steps)} ${avg.value.toFixed(4)} · lr ${row.lr.toExponential(2)} · ${Math.round(row.tokens_per_second)} tok/s · ETA ${formatDuration(eta)}`;
  };

  return {
    start(): void {
      if (reporter.interactive) spinner = startSpinner(`step ${params.startStep}/${params.totalSteps}`, reporter.stderr);
    },
    step(row: TrainRow): void {
      losses.push(row.loss);
      if (reporter.json) {
        const avg = recentAverage(losses);
        return reporter.event("train", { ...row, avg_loss: avg?.value ?? row.loss, avg_loss_steps: avg?.steps ?? 1 });
      }
      if (spinner) {
        spinner.text = line(row);
        return;
      }
      const now = performance.now();
      if (row.step === params.totalSteps || row.step % everySteps === 0 || now - lastPlain >= everyMs) {
        lastPlain = now;
        reporter.info(line(row));
      }
    },
    eval(row: EvalRow, improved: boolean): void {
      if (reporter.json) return reporter.event("eval", { ...row });
      this.log(`${c.bold("eval")} step ${row.step}: val_loss ${row.val_loss.toFixed(4)} · perplexity ${row.val_perplexity.toFixed(3)}${improved ? c.green(" (best)") : ""}`);
    },
    log(message: string): void {
      if (reporter.json) return reporter.event("log", { message });
      spinner?.clear();
      reporter.info(message);
      spinner?.render();
    },
    /** The first stop request: what happens now, and how to stop harder. */
    stopping(cause: string): void {
      this.log(`${cause}: finishing this step, then writing a checkpoint; press Ctrl-C again to stop at once (losing the steps since the last checkpoint)`);
    },
    stop(): void {
      spinner?.stop();
      spinner = null;
    },
  };
}
