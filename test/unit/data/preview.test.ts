import { beforeAll, describe, expect, it } from "vitest";
import { previewExample } from "../../../src/data/preview.js";
import { tokenizeExample } from "../../../src/data/tokenize-example.js";
import type { ModelTokenizer } from "../../../src/tokenizer/load.js";
import { tinyTokenizer } from "./fixture.js";

let tok: ModelTokenizer;
beforeAll(async () => {
  tok = await tinyTokenizer();
});
const color = { trained: (s: string) => `[${s}]`, prompt: (s: string) => `{${s}}` };

describe("previewExample", () => {
  it("wraps trained runs and masked runs in their colours", () => {
    const item = tokenizeExample(tok, { kind: "completion", prompt: "Q?", completion: "A." }, { completionOnly: true });
    expect(previewExample(tok, item, color)).toBe("{<s>Q?}[A.</s>]");
  });

  it("shows every assistant turn of a chat as trained", () => {
    const messages = [
      { role: "user", content: "hi" },
      { role: "assistant", content: "yo" },
      { role: "user", content: "ok" },
      { role: "assistant", content: "k" },
    ];
    const item = tokenizeExample(tok, { kind: "chat", messages }, { completionOnly: true });
    expect(previewExample(tok, item, color)).toBe(
      "{<s><|im_start|>user\nhi</s>\n<|im_start|>assistant\n}[yo</s>\n]{<|im_start|>user\nok</s>\n<|im_start|>assistant\n}[k</s>\n]",
    );
  });

  it("marks position 0 as not trained even for plain text", () => {
    const item = tokenizeExample(tok, { kind: "text", text: "abc" }, { completionOnly: true });
    expect(previewExample(tok, item, color)).toBe("{<s>}[abc</s>]");
    expect(previewExample(tok, { ids: [], labels: new Uint8Array(0) }, color)).toBe("");
  });
});
