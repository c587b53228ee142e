import { renderChat } from "../tokenizer/chat.js";
import type { ModelTokenizer } from "../tokenizer/load.js";

/**
 * The texts that end a reply: the end-of-turn token the chat template writes after an assistant message (ChatML's
 * <|im_end|>, Gemma's <end_of_turn>, Llama 3's <|eot_id|>, Phi-3's <|end|>), then every end-of-sequence token.
 * Ollama needs them as `PARAMETER stop` lines; llama.cpp reads the same tokens from the GGUF.
 */
export function stopTexts(tokenizer: ModelTokenizer): string[] {
  const stops: string[] = [];
  const turnEnd = templateTurnEnd(tokenizer);
  if (turnEnd) stops.push(turnEnd);
  for (const id of tokenizer.eosIds) {
    const token = tokenizer.idToToken(id);
    if (token && !stops.includes(token)) stops.push(token);
  }
  return stops;
}

/** The first special token the template writes after an assistant reply (null without a template or one). */
function templateTurnEnd(tokenizer: ModelTokenizer): string | null {
  if (!tokenizer.chatTemplate) return null;
  const reply = "finetune-reply-marker";
  let text: string;
  try {
    text = renderChat(tokenizer, [{ role: "user", content: "Hi" }, { role: "assistant", content: reply }, { role: "user", content: "Bye" }], { addGenerationPrompt: false });
  } catch {
    return null;
  }
  const after = text.indexOf(reply);
  if (after < 0) return null;
  const tail = text.slice(after + reply.length);
  const specials = [...tokenizer.specialIds].flatMap((id) => tokenizer.idToToken(id) ?? []).filter((t) => t.length > 0);
  let best: { at: number; token: string } | null = null;
  for (const token of specials) {
    const at = tail.indexOf(token);
    if (at >= 0 && (best === null || at < best.at || (at === best.at && token.length > best.token.length))) best = { at, token };
  }
  // Only a token right after the reply (whitespace between) ends the turn.
  return best !== null && tail.slice(0, best.at).trim() === "" ? best.token : null;
}

/**
 * An Ollama Modelfile: `FROM` the model GGUF (and `ADAPTER` a GGUF LoRA adapter on it), one `PARAMETER stop` per
 * stop text, as `ollama create <name> -f Modelfile` reads it. Ollama takes the chat template from the GGUF's
 * tokenizer.chat_template.
 */
export function ollamaModelfile(params: { from: string; adapter?: string; stops: string[] }): string {
  const lines = [`FROM ${params.from}`];
  if (params.adapter) lines.push(`ADAPTER ${params.adapter}`);
  for (const stop of params.stops) lines.push(`PARAMETER stop ${JSON.stringify(stop)}`);
  return `${lines.join("\n")}\n`;
}
