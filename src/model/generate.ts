import type { SamplingOptions } from "./sampling.js";
import { sampleToken, seededRandom } from "./sampling.js";
import type { CausalLM, TokenDecoder } from "./types.js";

export interface GenerateParams {
  model: CausalLM;
  promptIds: number[];
  maxNewTokens: number;
  sampling: SamplingOptions;
  seed: number;
  eosIds: number[];
  stopStrings: string[];
  decode: (ids: number[]) => string;
  /** Called with each new piece of text as soon as it is safe to show (complete characters, no partial stop string). */
  onText?: (text: string) => void;
  signal?: AbortSignal | undefined;
}

export type StopReason = "eos" | "stop_string" | "max_new_tokens" | "context" | "interrupted";

export interface GenerateResult {
  ids: number[];
  text: string;
  stopReason: StopReason;
  /** The prompt's pass, which also yields the first new token. */
  prefillSeconds: number;
  /** The passes after it, one per further token (with sampling and detokenizing), and how many there were. */
  decodeSeconds: number;
  decodeSteps: number;
  /** Which forward pass ran (see TokenDecoder.kind). */
  decoder: TokenDecoder["kind"];
}

/**
 * Autoregressive decoding with a KV cache (model.newDecoder): one prefill over the prompt, then one token per step.
 * Tokens stream through onText as they decode. Between tokens it yields to the event loop, so a Ctrl-C (which
 * aborts `signal`) is seen after the current token and what was generated so far is returned.
 */
export async function generate(params: GenerateParams): Promise<GenerateResult> {
  const { model } = params;
  const random = seededRandom(params.seed);
  // The prompt and every token fed back: the last new token is never fed, and the context caps the total.
  const capacity = Math.min(params.promptIds.length + params.maxNewTokens, model.config.maxPositions);
  let decoder = model.newDecoder(Math.max(capacity, 1));
  // LongRoPE (Phi-3) rotates every position with other factors once the sequence outgrows the original context:
  // as transformers does, the cache is then rebuilt from the whole sequence.
  const ropeSwitch = model.config.family === "llama" ? (model.config.ropeLong?.fromLength ?? null) : null;
  let cached = 0;
  const ids: number[] = [];
  let prefillSeconds = 0;
  let decodeStarted = 0;
  let decodeSteps = 0;
  let text = "";
  let shown = 0;
  let stopReason: StopReason = "max_new_tokens";
  try {
    let input = params.promptIds;
    for (let step = 0; step < params.maxNewTokens; step += 1) {
      // Signal handlers run only when the event loop gets a turn; the decode itself is synchronous.
      if (step > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      if (params.signal?.aborted) {
        stopReason = "interrupted";
        break;
      }
      // Prompt plus answer never outgrow the positions the model was trained on.
      if (params.promptIds.length + ids.length >= model.config.maxPositions) {
        stopReason = "context";
        break;
      }
      if (ropeSwitch !== null && cached > 0 && cached <= ropeSwitch && cached + input.length > ropeSwitch) {
        decoder.dispose();
        decoder = model.newDecoder(Math.max(capacity, 1));
        input = [...params.promptIds, ...ids];
        cached = 0;
      }
      const started = performance.now();
      const row = await decoder.step(input);
      cached += input.length;
      if (step === 0) {
        prefillSeconds = (performance.now() - started) / 1000;
        decodeStarted = performance.now();
      } else {
        decodeSteps += 1;
      }
      const next = sampleToken(row, params.sampling, random);
      if (params.eosIds.includes(next)) {
        stopReason = "eos";
        break;
      }
      ids.push(next);
      input = [next];
      text = params.decode(ids);
      const stopAt = firstStop(text, params.stopStrings);
      if (stopAt !== null) {
        text = text.slice(0, stopAt);
        stopReason = "stop_string";
        break;
      }
      // Hold back an incomplete UTF-8 character and any tail that could still become a stop string.
      const safe = text.endsWith("\uFFFD") ? shown : text.length - partialStopLength(text, params.stopStrings);
      if (safe > shown) {
        params.onText?.(text.slice(shown, safe));
        shown = safe;
      }
    }
  } finally {
    decoder.dispose();
  }
  const decodeSeconds = decodeSteps > 0 ? (performance.now() - decodeStarted) / 1000 : 0;
  if (text.length > shown) params.onText?.(text.slice(shown));
  return { ids, text, stopReason, prefillSeconds, decodeSeconds, decodeSteps, decoder: decoder.kind };
}

function firstStop(text: string, stops: string[]): number | null {
  let best: number | null = null;
  for (const stop of stops) {
    const at = text.indexOf(stop);
    if (at >= 0 && (best === null || at < best)) best = at;
  }
  return best;
}

/** Length of the longest suffix of text that is a proper prefix of some stop string. */
function partialStopLength(text: string, stops: string[]): number {
  let longest = 0;
  for (const stop of stops) {
    for (let n = Math.min(stop.length - 1, text.length); n > longest; n -= 1) {
      if (text.endsWith(stop.slice(0, n))) {
        longest = n;
        break;
      }
    }
  }
  return longest;
}
