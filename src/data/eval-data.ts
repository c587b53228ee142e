import type { PullEvent } from "../hub/pull.js";
import type { ModelTokenizer } from "../tokenizer/load.js";
import { toExamples, type DataFormat, type Example } from "./formats.js";
import { readRecords, type RecordSource } from "./read-records.js";
import { resolveDataFiles } from "./resolve-files.js";
import { tokenizeExample, type TokenizedExample } from "./tokenize-example.js";

export interface EvalDataParams {
  /** A file, glob or hub dataset, as `data.train` takes them; a hub dataset without a file gives its validation split. */
  spec: string;
  baseDir: string;
  env: NodeJS.ProcessEnv;
  token?: string | undefined;
  signal?: AbortSignal | undefined;
  onPull?: ((event: PullEvent) => void) | undefined;
}

/** Records read, not yet tokenized: reading fails fast, before the model's weights are loaded. */
export async function readEvalSources(params: EvalDataParams): Promise<RecordSource[]> {
  const paths = await resolveDataFiles(params.spec, {
    baseDir: params.baseDir,
    env: params.env,
    token: params.token,
    signal: params.signal,
    onEvent: params.onPull,
    split: "validation",
  });
  const sources: RecordSource[] = [];
  for (const path of paths) sources.push(await readRecords(path));
  return sources;
}

/**
 * The records as `train` sees them with a recipe's defaults: the format detected from the fields (every file in the
 * first one's format), alpaca as chat for chat models, and train's default completion_only mask, so eval scores
 * exactly the tokens a training run (and its validation loss) counts.
 */
export function evalItems(sources: RecordSource[], tokenizer: ModelTokenizer): { items: TokenizedExample[]; format: DataFormat } {
  const { examples, format } = evalExamples(sources, tokenizer.chatTemplate !== null);
  return { items: examples.map((example) => tokenizeExample(tokenizer, example, { completionOnly: true })), format };
}

/** Checks every record's fields before the model is loaded (a chat template is assumed until the model says). */
export function checkEvalSources(sources: RecordSource[]): void {
  evalExamples(sources, true);
}

function evalExamples(sources: RecordSource[], hasChatTemplate: boolean): { examples: Example[]; format: DataFormat } {
  let format: DataFormat | null = null;
  let formatOrigin = "the first data file";
  const examples: Example[] = [];
  for (const source of sources) {
    const converted = toExamples(source, { format: format ?? "auto", fields: {}, hasChatTemplate, formatOrigin, renames: "file" });
    if (format === null) formatOrigin = `the first data file ${source.file}`;
    format = converted.format;
    for (const example of converted.examples) examples.push(example);
  }
  return { examples, format: format ?? "text" };
}
