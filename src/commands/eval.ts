import { checkQuantizeSupport } from "../backend/quantize-support.js";
import type { CommandContext } from "../context.js";
import type { Quantize } from "../model/quantize.js";
import { checkEvalSources, evalItems, readEvalSources } from "../data/eval-data.js";
import type { DataFormat } from "../data/formats.js";
import type { RecordSource } from "../data/read-records.js";
import type { TokenizedExample } from "../data/tokenize-example.js";
import { UserError } from "../errors.js";
import { resolveToken } from "../hub/token.js";
import { sequenceLoss } from "../model/evaluate.js";
import { transferProgress } from "../ui/transfer-progress.js";
import { loadRuntime, round } from "./load-runtime.js";

/** What train's default completion_only counts, per format. */
const SCORED: Record<DataFormat, string> = {
  text: "every token",
  completion: "completions and EOS",
  alpaca: "responses",
  chat: "assistant turns",
};

interface EvalOptions {
  model: string;
  adapter?: string;
  /** One of QUANTIZE_CHOICES: commander has checked it. */
  quantize?: Quantize;
  text?: string;
  data?: string;
}

/**
 * `finetune eval`: mean next-token cross-entropy (nats) and perplexity. `--text` scores every token of the text;
 * `--data` reads records as `train` does and scores the tokens training counts (completions, assistant turns).
 */
export async function run(context: CommandContext, _args: string[], options: EvalOptions): Promise<void> {
  if ((options.text === undefined) === (options.data === undefined)) throw new UserError("give exactly one of --text <text> or --data <file>.");
  // A format this machine cannot store is refused before the data is read (or pulled).
  checkQuantizeSupport({ quantize: options.quantize ?? "none", setBy: "--quantize", env: context.env });
  // The data is read and its fields checked first, so a bad file fails before seconds of weight loading.
  const sources = options.data === undefined ? null : await readSources(context, options.data);
  const runtime = await loadRuntime(context, options.model, options.adapter, options.quantize);
  const { tokenizer, model, backend } = runtime;
  let items: TokenizedExample[];
  let what: string;
  if (sources === null) {
    const ids = tokenizer.encode(options.text ?? "");
    items = [{ ids, labels: Uint8Array.from(ids, () => 1) }];
    what = "";
  } else {
    const read = evalItems(sources, tokenizer);
    items = read.items;
    const records = items.length;
    what = ` · ${records} record${records === 1 ? "" : "s"} (format ${read.format}: ${SCORED[read.format]} scored, as train counts them)`;
  }
  let sum = 0;
  let count = 0;
  for (const item of items) {
    const part = await sequenceLoss(backend.tf, model, item.ids, model.config.maxPositions, item.labels);
    sum += part.sum;
    count += part.count;
  }
  model.dispose();
  if (count === 0) throw new UserError("nothing to evaluate: no token is scored (every text is shorter than two tokens, or nothing is a completion).");
  const loss = sum / count;
  context.reporter.result({ loss: round(loss, 6), perplexity: round(Math.exp(loss), 4), tokens: count }, () =>
    `loss ${loss.toFixed(4)} nats · perplexity ${Math.exp(loss).toFixed(3)} · ${count} predicted tokens${what}`,
  );
}

async function readSources(context: CommandContext, spec: string): Promise<RecordSource[]> {
  const progress = transferProgress(context.reporter);
  let sources: RecordSource[];
  try {
    sources = await readEvalSources({
      spec,
      baseDir: process.cwd(),
      env: context.env,
      token: resolveToken({ env: context.env }).token,
      signal: context.signal,
      onPull: progress.onEvent,
    });
  } finally {
    progress.finish();
  }
  checkEvalSources(sources);
  return sources;
}
