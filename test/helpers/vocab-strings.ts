/**
 * 200 texts that stress tokenizers: unicode (CJK, accents, emoji with joiners, RTL, combining marks), whitespace
 * runs, tabs, newlines, leading/trailing spaces, digits of many lengths, code, contractions, and special tokens
 * inside text (`{S}` is replaced by each of a tokenizer's special tokens in turn).
 */
import { lcg } from "./lcg.js";

const BASE = [
  "Hello world",
  "hello world",
  " Hello world",
  "Hello world ",
  "  two leading spaces",
  "two trailing spaces  ",
  "   ",
  " ",
  "\n",
  "\n\n\n",
  "\t",
  "a\tb\t\tc",
  "line one\nline two\n\nline four",
  "windows\r\nline\r\nends",
  "mixed \t\n  whitespace \n\t run",
  "word    with     many      spaces",
  "I've been told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
  "don't won't can't shouldn't y'all",
  "It's JOHN'S book",
  "0",
  "7",
  "42",
  "123",
  "1234",
  "12345",
  "123456",
  "1234567",
  "12345678",
  "3.14159 and 2.71828",
  "3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3",
  "Phone: +1 (555) 123-4567, ext. 89",
  "Version 1.2.3-beta.4+build.567",
  "1,000,000 and 1_000_000",
  "function add(a, b) {\n  return a + b;\n}",
  "def f(x):\n    return x ** 2  # square\n",
  "for (let i = 0; i < 10; i++) { console.log(`i=${i}`); }",
  "<div class=\"x\">Hello &amp; bye</div>",
  "SELECT * FROM users WHERE id = 42;",
  "if x==1:\n\tprint('tab indented')",
  "path/to/file.txt C:\\Windows\\System32",
  "https://example.com/a?b=c&d=e#f",
  "email@example.com",
  "café naïve résumé façade",
  "Ångström über straße",
  "e\u0301 combining acute (decomposed é)",
  "Crème brûlée",
  "日本語のテキスト",
  "我想在apple工作1314151天～",
  "中文 和 English 混合",
  "한국어 문장입니다",
  "нещо на Български",
  "Привет, мир!",
  "Γειά σου Κόσμε",
  "مرحبا بالعالم",
  "שלום עולם",
  "हिन्दी पाठ",
  "ภาษาไทย",
  "កាន់តែពិសេសអាច",
  "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ 🦙🦙",
  "👍🏽 👨‍👩‍👧‍👦 🇫🇷",
  "emoji at end 🎉",
  "🎉",
  "''''''```````\"\"\"\"......!!!!!!??????",
  "------======= ~~~~",
  "a-b_c.d,e;f:g!h?i",
  "(parentheses) [brackets] {braces}",
  "$100 €50 £20 ¥1000",
  "50% off!!!",
  "x = y + z * (w - v) / u",
  "CamelCaseWord snake_case_word kebab-case-word",
  "ALLCAPS lowercase MiXeD",
  "a",
  "A",
  ".",
  "?",
  "ab",
  "The quick brown fox jumps over the lazy dog.",
  "Once upon a time, there was a little girl named Lily.",
  "Tom and Ben went to the park. They saw a big dog!",
  "\u00a0non-breaking\u00a0space",
  "zero\u200bwidth\u200bspace",
  "soft\u00adhyphen",
  "tab\tthen space \tthen newline\n",
  " \n ",
  "\n leading newline",
  "trailing newline\n",
  "{S}",
  "{S}Hello",
  "Hello{S}",
  "Hello {S} world",
  "{S} leading",
  "trailing {S}",
  "{S}{S}",
  "a{S}b{S}c",
  "\n{S}\n",
  "  {S}  ",
];

const FRAGMENTS = [
  "the", " cat", "日本", "😀", "123", "4567", " ", "  ", "\n", "\t", "café", "'s", "'ll", "-", "...", "مرحبا", "x=1;", "Ω", "ñ", "€", "{S}", "   ", "A1B2", "e\u0301",
];

/** The texts for one tokenizer, with `specials` put where `{S}` is (specials in turn; none: the marker is dropped). */
export function vocabTestStrings(specials: readonly string[]): string[] {
  const random = lcg(20261203);
  const next = (): number => (random() + 1) / 2;
  const texts = [...BASE];
  while (texts.length < 200) {
    const parts = 2 + Math.floor(next() * 6);
    let text = "";
    for (let i = 0; i < parts; i += 1) text += FRAGMENTS[Math.floor(next() * FRAGMENTS.length)] ?? "";
    texts.push(text);
  }
  let turn = 0;
  return texts.map((text) =>
    text.replaceAll("{S}", () => {
      const special = specials.length === 0 ? "" : (specials[turn % specials.length] ?? "");
      turn += 1;
      return special;
    }),
  );
}
