import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveToken, tokenFilePath } from "../../../src/hub/token.js";

const home = mkdtempSync(join(tmpdir(), "token-"));

describe("resolveToken", () => {
  it("prefers --token, then HF_TOKEN, then HUGGING_FACE_HUB_TOKEN, then the token file", () => {
    const file = join(home, "token");
    writeFileSync(file, "hf_fromFile123\n");
    const env = { HF_TOKEN_PATH: file, HF_TOKEN: "hf_fromEnv123", HUGGING_FACE_HUB_TOKEN: "hf_legacy123" };
    expect(resolveToken({ flag: "hf_fromFlag123", env })).toEqual({ token: "hf_fromFlag123", source: "--token" });
    expect(resolveToken({ env })).toEqual({ token: "hf_fromEnv123", source: "HF_TOKEN" });
    expect(resolveToken({ env: { ...env, HF_TOKEN: "" } })).toEqual({ token: "hf_legacy123", source: "HUGGING_FACE_HUB_TOKEN" });
    expect(resolveToken({ env: { HF_TOKEN_PATH: file } })).toEqual({ token: "hf_fromFile123", source: "token file" });
    expect(resolveToken({ env: { HF_TOKEN_PATH: join(home, "none") } })).toEqual({ token: undefined, source: "none" });
  });

  it("rejects a malformed token without echoing it", () => {
    for (const bad of ["abc", "hf_has space", "Bearer hf_x", "hf_bad-char"]) {
      let message = "";
      try {
        resolveToken({ env: { HF_TOKEN: bad, HF_TOKEN_PATH: join(home, "none") } });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toContain('tokens start with "hf_"');
      expect(message).not.toContain(bad);
    }
  });

  it("finds the token file where huggingface_hub writes it", () => {
    expect(tokenFilePath({ HF_HOME: "/h" })).toBe("/h/token");
    expect(tokenFilePath({ XDG_CACHE_HOME: "/x" })).toBe("/x/huggingface/token");
  });
});
