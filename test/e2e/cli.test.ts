import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanEnv, collect, lastJson, ROOT, runCli, startCli, tempDir } from "../helpers/run-cli.js";
import { startHubServer } from "../helpers/hub-server.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe("the CLI shell", () => {
  it("--help lists the commands and never loads tfjs or the hub client", async () => {
    const trace = join(tmp.path, "imports.txt");
    const result = await runCli(["--help"], cleanEnv({ TRACE_IMPORTS_FILE: trace }), { nodeArgs: ["--import", join(ROOT, "test/helpers/trace-imports.mjs")] });
    expect(result.code).toBe(0);
    for (const command of ["pull", "doctor", "cache"]) expect(result.stdout).toContain(command);
    const loaded = readFileSync(trace, "utf8");
    expect(loaded).toContain("commander");
    expect(loaded).not.toContain("@tensorflow");
    expect(loaded).not.toContain("@huggingface");
  });

  it("--version prints the package version", async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    const result = await runCli(["--version"], cleanEnv());
    expect(result.stdout.trim()).toBe(pkg.version);
  });

  it("usage errors exit 2 without a stack trace, as JSON with --json", async () => {
    const plain = await runCli(["pull"], cleanEnv());
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain("missing required argument 'repo'");
    expect(plain.stderr).not.toMatch(/\n\s+at /);
    const json = await runCli(["--json", "pull", "not/a/repo/id"], cleanEnv());
    expect(json.code).toBe(2);
    expect(lastJson(json.stdout)).toMatchObject({ type: "error", exit_code: 2 });
    expect((await runCli([], cleanEnv())).code).toBe(2);
  });

  it("SIGINT during a pull exits 130, keeps the partial download and says how to resume", async () => {
    const weights = Buffer.alloc(2_000_000, 7);
    const hub = await startHubServer([{ name: "a/b", commits: [{ files: [{ path: "config.json", content: "{}" }, { path: "model.safetensors", content: weights, lfs: true }] }] }]);
    hub.faults.stallAfter = { path: "model.safetensors", bytes: 300_000 };
    const cache = join(tmp.path, "sigint-cache");
    const child = startCli(["pull", "a/b"], cleanEnv({ HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HOME: tmp.path }));
    const done = collect(child);
    const blobs = join(cache, "models--a--b", "blobs");
    const deadline = Date.now() + 20_000;
    const partial = () => (existsSync(blobs) ? readdirSync(blobs).find((f) => f.endsWith(".incomplete")) : undefined);
    while (Date.now() < deadline) {
      const name = partial();
      if (name && statSync(join(blobs, name)).size === 300_000) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGINT");
    const result = await done;
    await hub.close();
    expect(result.code).toBe(130);
    expect(result.stderr).toContain("run `finetune pull a/b` again to resume");
    const name = partial();
    expect(name).toBeDefined();
    expect(statSync(join(blobs, name ?? "")).size).toBe(300_000);
  });
});
