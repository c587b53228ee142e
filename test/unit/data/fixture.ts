import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTokenizer, type ModelTokenizer } from "../../../src/tokenizer/load.js";
import { writeTokenizerFiles } from "../../helpers/tiny-checkpoint.js";

/** A fresh temp folder and a way to write files into it (strings, bytes, or objects as JSON). */
export function tempDir(): { path: string; write(name: string, content: string | Uint8Array | object): string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), "finetune-data-"));
  return {
    path,
    write(name, content) {
      const file = join(path, name);
      const data = typeof content === "string" || content instanceof Uint8Array ? content : JSON.stringify(content);
      writeFileSync(file, data);
      return file;
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

/**
 * The tiny character-level tokenizer (<s>=1 prepended, </s>=2) with its ChatML-like template that ends each turn
 * with eos_token + "\n"; `chatTemplate` swaps the template.
 */
export async function tinyTokenizer(chatTemplate?: string | null): Promise<ModelTokenizer> {
  const dir = tempDir();
  try {
    writeTokenizerFiles(dir.path, 128);
    const tokenizer = await loadTokenizer(dir.path);
    return chatTemplate === undefined ? tokenizer : { ...tokenizer, chatTemplate };
  } finally {
    dir.remove();
  }
}
