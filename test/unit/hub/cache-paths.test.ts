import { homedir } from "node:os";
import { describe, expect, it } from "vitest";
import { assertSafeRepoPath, cacheRoot, repoFolderName } from "../../../src/hub/cache-paths.js";

describe("cacheRoot", () => {
  it("follows huggingface_hub's order", () => {
    expect(cacheRoot("/flag", { HF_HUB_CACHE: "/a" })).toBe("/flag");
    expect(cacheRoot(undefined, { HF_HUB_CACHE: "/a", HUGGINGFACE_HUB_CACHE: "/b", HF_HOME: "/c" })).toBe("/a");
    expect(cacheRoot(undefined, { HUGGINGFACE_HUB_CACHE: "/b", HF_HOME: "/c" })).toBe("/b");
    expect(cacheRoot(undefined, { HF_HOME: "/c", XDG_CACHE_HOME: "/d" })).toBe("/c/hub");
    expect(cacheRoot(undefined, { XDG_CACHE_HOME: "/d" })).toBe("/d/huggingface/hub");
    expect(cacheRoot(undefined, {})).toBe(`${homedir()}/.cache/huggingface/hub`);
  });

  it("names repo folders as Python does", () => {
    expect(repoFolderName({ type: "model", name: "org/name" })).toBe("models--org--name");
    expect(repoFolderName({ type: "dataset", name: "org/data" })).toBe("datasets--org--data");
    expect(repoFolderName({ type: "model", name: "gpt2" })).toBe("models--gpt2");
  });
});

describe("assertSafeRepoPath", () => {
  it.each(["config.json", "sub/dir/file.bin", ".gitattributes"])("accepts %s", (path) => {
    expect(() => assertSafeRepoPath(path)).not.toThrow();
  });
  it.each(["../x", "a/../../x", "/etc/passwd", "C:/x", "a\\..\\x", "a//b", "./a", "a/.", "", "a\0b"])("refuses %j", (path) => {
    expect(() => assertSafeRepoPath(path)).toThrow("outside the cache");
  });
});
