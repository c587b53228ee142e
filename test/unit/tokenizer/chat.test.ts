import { afterEach, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { encodeChat, renderChat } from "../../../src/tokenizer/chat.js";
import { loadTokenizer } from "../../../src/tokenizer/load.js";
import { modelDir, removeDir, tinyTokenizerJson } from "./fixture.js";

const CHATML =
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" +
  "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

const dirs: string[] = [];
async function withTemplate(chatTemplate: unknown, extra: Record<string, unknown> = {}) {
  const dir = await modelDir({
    "tokenizer.json": tinyTokenizerJson(),
    "tokenizer_config.json": { bos_token: "<s>", eos_token: "</s>", pad_token: "<pad>", unk_token: { content: "<unk>" }, chat_template: chatTemplate, ...extra },
  });
  dirs.push(dir);
  return loadTokenizer(dir);
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map(removeDir));
});

const convo = [
  { role: "system", content: "be brief" },
  { role: "user", content: "hi" },
];

describe("renderChat", () => {
  it("renders a ChatML template exactly, with and without the generation prompt", async () => {
    const t = await withTemplate(CHATML);
    expect(renderChat(t, convo, { addGenerationPrompt: true })).toBe(
      "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    );
    expect(renderChat(t, convo, { addGenerationPrompt: false })).toBe("<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n");
  });

  it("passes the named special tokens as strings, and tools only when given", async () => {
    const t = await withTemplate("[{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ unk_token }}|{{ tools is defined }}|{{ tools | length if tools is defined else 0 }}]");
    expect(renderChat(t, [], { addGenerationPrompt: false })).toBe("[<s>|</s>|<pad>|<unk>|false|0]");
    expect(renderChat(t, [], { addGenerationPrompt: false, tools: [{ name: "calc" }] })).toBe("[<s>|</s>|<pad>|<unk>|true|1]");
  });

  it("turns raise_exception in the template into a UserError carrying its message", async () => {
    const t = await withTemplate(
      "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{{ m.content }}{% endfor %}",
    );
    const render = () => renderChat(t, convo, { addGenerationPrompt: true });
    expect(render).toThrow(UserError);
    expect(render).toThrow(/Only user and assistant roles are supported!.*roles here: system, user/);
  });

  it("a template that does not parse is a UserError", async () => {
    const t = await withTemplate("{% for m in messages %}{{ m.content }}");
    expect(() => renderChat(t, convo, { addGenerationPrompt: false })).toThrow(/chat template could not be parsed/);
  });

  it("without a chat template, a UserError pointing at a plain prompt or an -Instruct model", async () => {
    const t = await withTemplate(null);
    const render = () => renderChat(t, convo, { addGenerationPrompt: true });
    expect(render).toThrow(UserError);
    expect(render).toThrow(/has no chat template.*without --chat.*-Instruct/);
    const listed = await withTemplate([{ name: "tool_use", template: "x" }]);
    expect(() => renderChat(listed, convo, { addGenerationPrompt: true })).toThrow(/templates named "tool_use" but none named "default"/);
  });
});

describe("encodeChat", () => {
  it("lets the post_processor add <s> when the template does not write it", async () => {
    const t = await withTemplate(CHATML);
    const ids = encodeChat(t, [{ role: "user", content: "hi" }], { addGenerationPrompt: false });
    expect(ids.slice(0, 2)).toEqual([1, 3]);
    expect(ids.filter((id) => id === 1)).toHaveLength(1);
  });

  it("adds no second <s> when the template starts with bos_token", async () => {
    const t = await withTemplate(`{{ bos_token }}${CHATML}`);
    const ids = encodeChat(t, [{ role: "user", content: "hi" }], { addGenerationPrompt: true });
    expect(ids.slice(0, 2)).toEqual([1, 3]);
    expect(ids.filter((id) => id === 1)).toHaveLength(1);
    expect(ids.at(-1)).toBe(t.tokenToId("\n"));
    expect(t.decode(ids)).toContain("<|im_start|>");
  });
});
