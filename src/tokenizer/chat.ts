import { Template } from "@huggingface/jinja";
import { UserError } from "../errors.js";
import type { ModelTokenizer } from "./load.js";

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatOptions {
  /** Append the assistant header so the model's next tokens are its reply. */
  addGenerationPrompt: boolean;
  /** Tool definitions, passed to the template as `tools` only when given (templates test `tools is defined`). */
  tools?: unknown;
}

// Parsing a template is far dearer than rendering it, and training renders one per record.
const compiled = new Map<string, Template>();

/** Renders `messages` with the model's own chat template. */
export function renderChat(tokenizer: ModelTokenizer, messages: ChatMessage[], options: ChatOptions): string {
  const template = compile(tokenizer);
  const context: Record<string, unknown> = {
    ...tokenizer.namedSpecialTokens,
    messages,
    add_generation_prompt: options.addGenerationPrompt,
  };
  if (options.tools !== undefined) context.tools = options.tools;
  try {
    return template.render(context);
  } catch (error) {
    throw new UserError(
      `the model's chat template rejected the conversation: ${error instanceof Error ? error.message : String(error)}. ` +
        `Check the message roles and their order (roles here: ${messages.map((m) => m.role).join(", ") || "none"}); ` +
        `many templates accept only an optional first system message, then alternating user and assistant turns.`,
    );
  }
}

/**
 * Renders and tokenizes a conversation. Templates that write the BOS token themselves would get a second BOS
 * from the post_processor, so specials are added only when the rendered text does not already start with BOS.
 */
export function encodeChat(tokenizer: ModelTokenizer, messages: ChatMessage[], options: ChatOptions): number[] {
  const text = renderChat(tokenizer, messages, options);
  const bos = tokenizer.bosToken;
  const hasBos = bos !== null && bos !== "" && text.startsWith(bos);
  return tokenizer.encode(text, { addSpecialTokens: !hasBos });
}

function compile(tokenizer: ModelTokenizer): Template {
  const source = tokenizer.chatTemplate;
  if (source === null) throw noTemplate(tokenizer.chatTemplateNames);
  const cached = compiled.get(source);
  if (cached) return cached;
  let template: Template;
  try {
    template = new Template(source);
  } catch (error) {
    throw new UserError(
      `the model's chat template could not be parsed: ${error instanceof Error ? error.message : String(error)}. ` +
        `Use a plain prompt without --chat, or fix chat_template in the model's tokenizer_config.json or chat_template.jinja.`,
    );
  }
  compiled.set(source, template);
  return template;
}

function noTemplate(names: string[]): UserError {
  const listed =
    names.length > 0
      ? ` (tokenizer_config.json lists templates named ${names.map((n) => JSON.stringify(n)).join(", ")} but none named "default")`
      : "";
  return new UserError(
    `this model has no chat template${listed}, so chat messages cannot be formatted for it. ` +
      `Use a plain prompt without --chat, or pick an -Instruct (chat-tuned) version of the model.`,
  );
}
