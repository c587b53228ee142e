import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { toExamples } from "../../../src/data/formats.js";
import { tokenizeExample, type TokenizedExample } from "../../../src/data/tokenize-example.js";
import { renderChat } from "../../../src/tokenizer/chat.js";
import type { ModelTokenizer } from "../../../src/tokenizer/load.js";
import { ROOT } from "../../helpers/run-cli.js";
import { tinyTokenizer } from "./fixture.js";

let tok: ModelTokenizer;
beforeAll(async () => {
  tok = await tinyTokenizer();
});

/** The text of each run of trained tokens, decoded: what the model is taught to produce. */
function trainedRuns(item: TokenizedExample): string[] {
  const runs: string[] = [];
  let run: number[] = [];
  item.ids.forEach((id, i) => {
    if (item.labels[i] === 1) run.push(id);
    else if (run.length > 0) {
      runs.push(tok.decode(run));
      run = [];
    }
  });
  if (run.length > 0) runs.push(tok.decode(run));
  return runs;
}
const labelsOf = (item: TokenizedExample) => Array.from(item.labels);

describe("tokenizeExample: text", () => {
  it("BOS + text + EOS, everything trained except position 0", () => {
    const item = tokenizeExample(tok, { kind: "text", text: "hi you" }, { completionOnly: true });
    expect(item.ids).toEqual([1, ...tok.encode("hi you", { addSpecialTokens: false }), 2]);
    expect(tok.decode(item.ids)).toBe("<s>hi you</s>");
    expect(labelsOf(item)).toEqual([0, 1, 1, 1, 1, 1, 1, 1]);
  });

  it("does not add a second EOS when the text already ends with one", () => {
    const item = tokenizeExample(tok, { kind: "text", text: "ok</s>" }, { completionOnly: true });
    expect(tok.decode(item.ids)).toBe("<s>ok</s>");
  });

  it("a tokenizer without EOS is a UserError (the model could not learn to stop)", () => {
    const noEos: ModelTokenizer = { ...tok, eosIds: [] };
    expect(() => tokenizeExample(noEos, { kind: "text", text: "x" }, { completionOnly: true })).toThrow(UserError);
    expect(() => tokenizeExample(noEos, { kind: "text", text: "x" }, { completionOnly: true })).toThrow(/no end-of-sequence token/);
  });
});

describe("tokenizeExample: completion", () => {
  const example = { kind: "completion", prompt: "Q: 2+2?\nA:", completion: " 4" } as const;

  it("completionOnly: the prompt is masked, the completion and EOS are trained", () => {
    const item = tokenizeExample(tok, example, { completionOnly: true });
    expect(tok.decode(item.ids)).toBe("<s>Q: 2+2?\nA: 4</s>");
    expect(trainedRuns(item)).toEqual([" 4</s>"]);
    const promptLength = tok.encode(example.prompt).length;
    expect(labelsOf(item).slice(0, promptLength).every((label) => label === 0)).toBe(true);
  });

  it("completionOnly false: every token but position 0 is trained; the ids are the same", () => {
    const masked = tokenizeExample(tok, example, { completionOnly: true });
    const full = tokenizeExample(tok, example, { completionOnly: false });
    expect(full.ids).toEqual(masked.ids);
    expect(labelsOf(full)).toEqual([0, ...Array<number>(full.ids.length - 1).fill(1)]);
    expect(trainedRuns(full)).toEqual(["Q: 2+2?\nA: 4</s>"]);
  });
});

describe("tokenizeExample: alpaca", () => {
  const records = { file: "a.jsonl", records: [{ line: 1, value: { instruction: "Add.", input: "2+2", output: "4" } }] };

  it("without a chat template: the Alpaca prompt is masked, the response + EOS trained", () => {
    const [example] = toExamples(records, { format: "auto", fields: {}, hasChatTemplate: false }).examples;
    if (example === undefined) throw new Error("no example");
    const item = tokenizeExample(tok, example, { completionOnly: true });
    expect(trainedRuns(item)).toEqual(["4</s>"]);
    expect(tok.decode(item.ids)).toMatch(/^<s>Below is an instruction.*### Response:\n4<\/s>$/s);
  });

  it("with a chat template: the assistant turn and its end marker are trained", () => {
    const [example] = toExamples(records, { format: "auto", fields: {}, hasChatTemplate: true }).examples;
    if (example === undefined) throw new Error("no example");
    const item = tokenizeExample(tok, example, { completionOnly: true });
    expect(tok.decode(item.ids)).toBe("<s><|im_start|>user\nAdd.\n\n2+2</s>\n<|im_start|>assistant\n4</s>\n");
    expect(trainedRuns(item)).toEqual(["4</s>\n"]);
  });
});

describe("tokenizeExample: chat", () => {
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi!" },
    { role: "assistant", content: "Hello." },
    { role: "user", content: "Bye?" },
    { role: "assistant", content: "Bye!" },
  ];

  it("renders with the model's template and trains exactly the assistant turns with their end markers", () => {
    const item = tokenizeExample(tok, { kind: "chat", messages }, { completionOnly: true });
    expect(tok.decode(item.ids)).toBe(`<s>${renderChat(tok, messages, { addGenerationPrompt: false })}`);
    expect(trainedRuns(item)).toEqual(["Hello.</s>\n", "Bye!</s>\n"]);
    expect(item.labels[0]).toBe(0);
  });

  it("completionOnly false: the same ids, all trained but position 0", () => {
    const masked = tokenizeExample(tok, { kind: "chat", messages }, { completionOnly: true });
    const full = tokenizeExample(tok, { kind: "chat", messages }, { completionOnly: false });
    expect(full.ids).toEqual(masked.ids);
    expect(labelsOf(full)).toEqual([0, ...Array<number>(full.ids.length - 1).fill(1)]);
  });

  it("a template that writes BOS itself gets no second BOS", async () => {
    const withBos = await tinyTokenizer(`{{ bos_token }}${tok.chatTemplate ?? ""}`);
    const item = tokenizeExample(withBos, { kind: "chat", messages }, { completionOnly: true });
    expect(item.ids.filter((id) => id === 1)).toHaveLength(1);
    expect(trainedRuns(item)).toEqual(["Hello.</s>\n", "Bye!</s>\n"]);
  });

  it("falls back to the message text when the template renders the last turn differently", async () => {
    // Marks the final message, so a prefix render is not a prefix of the whole conversation.
    const lastMarked = await tinyTokenizer(
      "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% if loop.last %}(end){% endif %}{{ eos_token }}{% endfor %}" +
        "{% if add_generation_prompt %}[assistant]{% endif %}",
    );
    const item = tokenizeExample(lastMarked, { kind: "chat", messages }, { completionOnly: true });
    // What the template writes after a reply where it is the last turn, as far as the full text has it too, is
    // trained with it: the EOS after "Hello.", the "(end)</s>" that closes the conversation after "Bye!".
    expect(trainedRuns(item)).toEqual(["Hello.</s>", "Bye!(end)</s>"]);
  });

  it("Qwen3's real template: earlier turns lose their <think> block, every assistant turn is trained through <|im_end|>", async () => {
    const { qwen3 } = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "chat-templates.json"), "utf8")) as Record<string, { template: string; eos_token: string }>;
    if (!qwen3) throw new Error("no qwen3 template in the fixture");
    const qwen = { ...(await tinyTokenizer(qwen3.template)), eosToken: qwen3.eos_token };
    const chat = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi!" },
      { role: "assistant", content: "<think>\nGreet back.\n</think>\n\nHello." },
      { role: "user", content: "Bye?" },
      { role: "assistant", content: "<think>\nSay bye.\n</think>\n\nBye!" },
    ];
    const item = tokenizeExample(qwen, { kind: "chat", messages: chat }, { completionOnly: true });
    expect(qwen.decode(item.ids)).toBe(
      "<s><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n" +
        "<|im_start|>user\nBye?<|im_end|>\n<|im_start|>assistant\n<think>\nSay bye.\n</think>\n\nBye!<|im_end|>\n",
    );
    expect(trainedRuns(item)).toEqual(["Hello.<|im_end|>\n", "<think>\nSay bye.\n</think>\n\nBye!<|im_end|>\n"]);
    // Without reasoning the last turn still gets the template's empty think block, trained as rendered.
    const plain = tokenizeExample(qwen, { kind: "chat", messages: [chat[1], { role: "assistant", content: "Hello." }] as typeof chat }, { completionOnly: true });
    expect(trainedRuns(plain)).toEqual(["<think>\n\n</think>\n\nHello.<|im_end|>\n"]);
  });

  it("Phi-3.5's real template: every reply is trained through <|end|>, the last one through the closing EOS", async () => {
    const { phi3 } = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "chat-templates.json"), "utf8")) as Record<string, { template: string; eos_token: string }>;
    if (!phi3) throw new Error("no phi3 template in the fixture");
    const phi = { ...(await tinyTokenizer(phi3.template)), eosToken: phi3.eos_token, namedSpecialTokens: { eos_token: phi3.eos_token } };
    const item = tokenizeExample(phi, { kind: "chat", messages }, { completionOnly: true });
    expect(phi.decode(item.ids)).toBe("<s><|system|>\nBe brief.<|end|>\n<|user|>\nHi!<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nBye?<|end|>\n<|assistant|>\nBye!<|end|>\n<|endoftext|>");
    expect(trainedRuns(item)).toEqual(["Hello.<|end|>\n", "Bye!<|end|>\n<|endoftext|>"]);
  });

  it("SmolLM3's real template: /no_think keeps the empty think block in the prompt; /think trains the reasoning", async () => {
    const { smollm3 } = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "chat-templates.json"), "utf8")) as Record<string, { template: string; eos_token: string }>;
    if (!smollm3) throw new Error("no smollm3 template in the fixture");
    const smol = { ...(await tinyTokenizer(smollm3.template)), eosToken: smollm3.eos_token };
    const turns = [
      { role: "user", content: "Hi!" },
      { role: "assistant", content: "Hello." },
      { role: "user", content: "Bye?" },
      { role: "assistant", content: "<think>\nSay bye.\n</think>\nBye!" },
    ];
    const noThink = tokenizeExample(smol, { kind: "chat", messages: [{ role: "system", content: "Be brief. /no_think" }, ...turns] }, { completionOnly: true });
    const text = smol.decode(noThink.ids);
    // The header renders the day (strftime_now) and the custom instructions without the flag.
    expect(text).toMatch(/^<s><\|im_start\|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: \d\d \w+ \d{4}\nReasoning Mode: \/no_think\n\n## Custom Instructions\n\nBe brief\.\n\n<\|im_start\|>user\n/);
    expect(trainedRuns(noThink)).toEqual(["Hello.<|im_end|>\n", "<think>\nSay bye.\n</think>\nBye!<|im_end|>\n"]);
    expect(text).toContain("<|im_start|>assistant\n<think>\n\n</think>\nHello.<|im_end|>");
    const think = tokenizeExample(smol, { kind: "chat", messages: [{ role: "system", content: "Be brief. /think" }, ...turns] }, { completionOnly: true });
    expect(smol.decode(think.ids)).toContain("<|im_start|>assistant\nHello.<|im_end|>");
    expect(trainedRuns(think)).toEqual(["Hello.<|im_end|>\n", "<think>\nSay bye.\n</think>\nBye!<|im_end|>\n"]);
    // /system_override (the remedy the dated-template warning names) replaces the header with the message alone.
    const override = tokenizeExample(smol, { kind: "chat", messages: [{ role: "system", content: "Be brief. /system_override" }, ...turns] }, { completionOnly: true });
    expect(smol.decode(override.ids)).toMatch(/^<s><\|im_start\|>system\nBe brief\.<\|im_end\|>\n<\|im_start\|>user\nHi!/);
    expect(smol.decode(override.ids)).not.toContain("Today Date");
  });

  it("a template that rewrites the assistant text cannot be masked: a UserError unless completionOnly is false", async () => {
    const upper = await tinyTokenizer("{% for m in messages %}[{{ m.role }}]{{ m.content | upper }}{{ eos_token }}{% if loop.last %}.{% endif %}{% endfor %}");
    expect(() => tokenizeExample(upper, { kind: "chat", messages }, { completionOnly: true })).toThrow(/set train.completion_only: false/);
    const item = tokenizeExample(upper, { kind: "chat", messages }, { completionOnly: false });
    expect(tok.decode(item.ids)).toBe("<s>[system]BE BRIEF.</s>[user]HI!</s>[assistant]HELLO.</s>[user]BYE?</s>[assistant]BYE!</s>.");
  });
});
