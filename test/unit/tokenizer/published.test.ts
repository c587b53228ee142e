// finetune's tokenizer loading, anchored to real tokenizers: GPT-2's and LLaMA's real vocabularies (shipped in npm
// packages) must give exactly the ids that tiktoken's and transformers.js's own test suites publish for them
// (test/fixtures/published-tokenizations.json says where each fact comes from).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect } from "vitest";
import { loadTokenizer, type ModelTokenizer } from "../../../src/tokenizer/load.js";
import { itNeeds } from "../../helpers/needs.js";
import { npmPackage, packageFile, sha256File, writeGpt2Tokenizer, writeLlamaTokenizer } from "../../helpers/real-tokenizers.js";
import { ROOT, tempDir } from "../../helpers/run-cli.js";

interface Facts {
  vocabulary: { package: string; files: Record<string, string> };
  /** `decoded`: what the source's decode(ids) gives (special tokens kept; transformers' clean-up of spaces applied). */
  cases: Array<{ name: string; source: string; text: string; ids: number[]; decoded?: string }>;
}
const facts = JSON.parse(readFileSync(join(ROOT, "test", "fixtures", "published-tokenizations.json"), "utf8")) as { gpt2: Facts; llama: Facts };

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function checkCases(tokenizer: ModelTokenizer, cases: Facts["cases"]): void {
  const encoded = cases.filter(({ text, ids }) => !equal(tokenizer.encode(text), ids)).map(({ name, source, text }) => `${source} ${name} ${JSON.stringify(text)}`);
  expect(encoded, "cases encoded differently").toEqual([]);
  const decoded = cases.filter(({ ids, decoded }) => decoded !== undefined && tokenizer.decode(ids) !== decoded).map(({ name, source, ids }) => `${source} ${name}: ${JSON.stringify(tokenizer.decode(ids))}`);
  expect(decoded, "cases decoded differently").toEqual([]);
  expect(cases.filter((c) => c.decoded !== undefined).length).toBeGreaterThan(cases.length / 2);
}

function equal(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function need(vocabulary: Facts["vocabulary"]) {
  const [name = "", version = ""] = vocabulary.package.split(/@(?=[^@]*$)/);
  return { name, need: npmPackage(name, version) };
}

describe("GPT-2 (byte-level BPE)", () => {
  const { name, need: gpt2 } = need(facts.gpt2.vocabulary);
  itNeeds(gpt2, `encodes and decodes ${facts.gpt2.cases.length} published cases exactly`, async () => {
    for (const [file, sha] of Object.entries(facts.gpt2.vocabulary.files)) expect(sha256File(packageFile(name, file) ?? ""), file).toBe(sha);
    const dir = join(tmp.path, "gpt2");
    writeGpt2Tokenizer(dir);
    const tokenizer = await loadTokenizer(dir);
    expect(tokenizer.vocabSize).toBe(50257);
    expect([tokenizer.bosId, tokenizer.eosIds]).toEqual([50256, [50256]]);
    checkCases(tokenizer, facts.gpt2.cases);
  });
});

describe("LLaMA / Llama 2 (SentencePiece BPE with byte fallback)", () => {
  const { name, need: llama } = need(facts.llama.vocabulary);
  itNeeds(llama, `encodes and decodes ${facts.llama.cases.length} published cases exactly, <s> first`, async () => {
    for (const [file, sha] of Object.entries(facts.llama.vocabulary.files)) expect(sha256File(packageFile(name, file) ?? ""), file).toBe(sha);
    const dir = join(tmp.path, "llama");
    await writeLlamaTokenizer(dir);
    const tokenizer = await loadTokenizer(dir);
    expect(tokenizer.vocabSize).toBe(32000);
    expect([tokenizer.bosId, tokenizer.eosIds]).toEqual([1, [2]]);
    checkCases(tokenizer, facts.llama.cases);
  });
});
