import { appendFile, readFile, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { withErrorPath, writeFileAtomic } from "../io/atomic.js";

export interface TrainRow {
  type: "train";
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  /** Trained (loss-bearing) tokens in this step. */
  tokens: number;
  /** Input tokens (padding excluded) processed per second in this step. */
  tokens_per_second: number;
  elapsed: number;
  /** Peak memory so far: the wasm heap on the wasm backend, else the process's peak resident set. */
  peak_memory_mb?: number;
  /** The process's peak resident set so far (MB): the wasm heap, the native weight store and everything else. */
  peak_rss_mb?: number;
}

export interface EvalRow {
  type: "eval";
  step: number;
  val_loss: number;
  val_perplexity: number;
  peak_rss_mb?: number;
}

export type MetricsRow = TrainRow | EvalRow;

const finite = z.number().finite();
const step = z.number().int().positive();
/**
 * What a metrics row must be to be used: anything else in the file (a junk line) is dropped, never passed on to the
 * lock. A perplexity beyond float range was written as null by JSON.stringify and reads back as Infinity.
 */
const metricsRowSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("train"), step, loss: finite, lr: finite, grad_norm: finite, tokens: z.number().int().nonnegative(), tokens_per_second: finite, elapsed: finite, peak_memory_mb: finite.optional(), peak_rss_mb: finite.optional() }),
  z.object({ type: z.literal("eval"), step, val_loss: finite, val_perplexity: z.number().nullable().transform((v) => v ?? Number.POSITIVE_INFINITY), peak_rss_mb: finite.optional() }),
]);

/** metrics.jsonl: one JSON object per line, appended as the run goes. */
export class MetricsFile {
  readonly path: string;
  readonly rows: MetricsRow[] = [];

  constructor(output: string) {
    this.path = join(output, "metrics.jsonl");
  }

  /** On resume: keep the rows up to the checkpoint's step and drop what the interrupted run wrote after it. */
  async restore(upToStep: number): Promise<void> {
    this.rows.push(...(await readMetrics(this.path, upToStep)));
    await writeFileAtomic(this.path, this.rows.map((row) => `${JSON.stringify(row)}\n`).join(""));
  }

  /** Appends one row whole: a write the disk cut short is undone, so the file never ends in half a row. */
  async append(row: MetricsRow): Promise<void> {
    const before = await stat(this.path).then((info) => info.size, () => null);
    try {
      await appendFile(this.path, `${JSON.stringify(row)}\n`);
    } catch (error) {
      if (before !== null) await truncate(this.path, before).catch(() => undefined);
      throw withErrorPath(error, this.path);
    }
    this.rows.push(row);
  }
}

/**
 * The rows of a metrics.jsonl up to a step, without changing the file. Only well-formed rows count, and per type
 * only rows whose step follows the previous one: a line cut by a crash, a junk line or a repeated step is skipped.
 */
export async function readMetrics(path: string, upToStep = Number.MAX_SAFE_INTEGER): Promise<MetricsRow[]> {
  const text = await readFile(path, "utf8").catch(() => "");
  const rows: MetricsRow[] = [];
  const lastStep = { train: 0, eval: 0 };
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      continue;
    }
    const parsed = metricsRowSchema.safeParse(json);
    if (!parsed.success) continue;
    const row = parsed.data;
    if (row.step > upToStep || row.step <= lastStep[row.type]) continue;
    lastStep[row.type] = row.step;
    rows.push(row);
  }
  return rows;
}

/** The training losses, step by step. */
export const trainLosses = (rows: MetricsRow[]): number[] => rows.flatMap((r) => (r.type === "train" ? [r.loss] : []));
