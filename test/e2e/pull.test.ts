import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { gitOid, sha256, startHubServer, type HubServer } from "../helpers/hub-server.js";
import { cleanEnv, collect, lastJson, runCli, startCli, tempDir } from "../helpers/run-cli.js";

const TOKEN = "hf_testTokenValue1234567890abcdef";
const weights = Buffer.alloc(3 * 1024 * 1024 + 17);
for (let i = 0; i < weights.length; i += 1) weights[i] = (i * 7919) % 251;
const config = JSON.stringify({ model_type: "llama", hidden_size: 8 });
const tokenizer = JSON.stringify({ version: "1.0", model: { type: "BPE" } });

let hub: HubServer;
const tmp = tempDir();
let cache: string;
let n = 0;

beforeAll(async () => {
  hub = await startHubServer(
    [
      {
        name: "tiny/llama",
        commits: [
          { files: [
            { path: "config.json", content: config },
            { path: "tokenizer.json", content: tokenizer },
            { path: "model.safetensors", content: weights, lfs: true },
            { path: "README.md", content: "# tiny" },
            { path: "pytorch_model.bin", content: Buffer.alloc(64), lfs: true },
            { path: "onnx/model.onnx", content: Buffer.alloc(32), lfs: true },
            { path: "special_tokens_map.json", content: config },
          ] },
          { files: [{ path: "config.json", content: `${config}\n` }, { path: "model.safetensors", content: weights.subarray(0, 1000), lfs: true }] },
        ],
        branches: { main: 0, dev: 1 },
      },
      { name: "old/pickle-only", commits: [{ files: [{ path: "config.json", content: config }, { path: "pytorch_model.bin", content: Buffer.alloc(128), lfs: true }] }] },
      { name: "secret/gated", access: { token: TOKEN, kind: "gated" }, commits: [{ files: [{ path: "config.json", content: config }, { path: "model.safetensors", content: Buffer.alloc(256, 1), lfs: true }] }] },
      { name: "secret/private", access: { token: TOKEN, kind: "private" }, commits: [{ files: [{ path: "config.json", content: config }, { path: "model.safetensors", content: Buffer.alloc(256, 2), lfs: true }] }] },
      { type: "dataset", name: "tiny/data", commits: [{ files: [{ path: "train.jsonl", content: '{"text":"hi"}\n' }, { path: "data/extra.csv", content: "a,b\n1,2\n" }, { path: "evil.pkl", content: "x" }] }] },
    ],
    { treePageSize: 2 },
  );
});

afterAll(async () => {
  await hub.close();
  tmp.cleanup();
});

beforeEach(() => {
  n += 1;
  cache = join(tmp.path, `cache-${n}`);
  hub.requests.length = 0;
  for (const key of Object.keys(hub.faults)) delete hub.faults[key as keyof typeof hub.faults];
});

const env = (extra: Record<string, string | undefined> = {}) => cleanEnv({ HOME: tmp.path, HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, ...extra });
const repoDir = () => join(cache, "models--tiny--llama");
const fileGets = (path: string) => hub.requests.filter((r) => r.method === "GET" && r.url.includes(`/resolve/`) && r.url.endsWith(`/${path}`));

describe("finetune pull", () => {
  it("downloads the default file set into the HF cache layout, pinned to the commit sha", async () => {
    const result = await runCli(["pull", "tiny/llama", "--json"], env());
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const sha = hub.shas("tiny/llama")[0] ?? "";
    const out = lastJson(result.stdout);
    expect(out).toEqual({ repo: "tiny/llama", revision: "main", sha, path: join(repoDir(), "snapshots", sha), files: ["config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json"] });
    // refs/main holds the sha with no newline
    expect(readFileSync(join(repoDir(), "refs", "main"), "utf8")).toBe(sha);
    // snapshots/<sha>/<file> are relative symlinks to blobs named by sha256 (LFS) or git sha1
    const link = join(repoDir(), "snapshots", sha, "model.safetensors");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(`../../blobs/${sha256(weights)}`);
    expect(readlinkSync(join(repoDir(), "snapshots", sha, "config.json"))).toBe(`../../blobs/${gitOid(Buffer.from(config))}`);
    expect(readFileSync(link).equals(weights)).toBe(true);
    // pickle, README and subfolder files are not fetched by default
    expect(readdirSync(join(repoDir(), "blobs")).sort()).toEqual([gitOid(Buffer.from(config)), gitOid(Buffer.from(tokenizer)), sha256(weights)].sort());
    expect(fileGets("pytorch_model.bin")).toHaveLength(0);
    // tree pagination was followed (page size 2, seven files)
    expect(hub.requests.filter((r) => r.url.includes("/tree/")).length).toBe(4);
    // JSON events precede the result, one object per line
    const events = result.stdout.trim().split("\n").map((line) => JSON.parse(line) as { type?: string });
    expect(events[0]?.type).toBe("resolved");
    expect(events.filter((e) => e.type === "file")).toHaveLength(4);
    // two files with the same content share one blob, fetched once
    expect(readlinkSync(join(repoDir(), "snapshots", sha, "special_tokens_map.json"))).toBe(`../../blobs/${gitOid(Buffer.from(config))}`);
    expect(fileGets("config.json").length + fileGets("special_tokens_map.json").length).toBe(1);
  });

  it("a second pull of the same revision downloads nothing", async () => {
    expect((await runCli(["pull", "tiny/llama"], env())).code).toBe(0);
    hub.requests.length = 0;
    const second = await runCli(["pull", "tiny/llama"], env());
    expect(second.code).toBe(0);
    expect(hub.requests.filter((r) => r.url.includes("/resolve/"))).toHaveLength(0);
    expect(second.stdout).toContain("model.safetensors");
  });

  it("pulls a branch by name (@dev) and by --revision sha, each into its own snapshot", async () => {
    const [main, dev] = hub.shas("tiny/llama");
    const byBranch = await runCli(["pull", "tiny/llama@dev", "--json"], env());
    expect(lastJson(byBranch.stdout).sha).toBe(dev);
    expect(readFileSync(join(repoDir(), "refs", "dev"), "utf8")).toBe(dev);
    const bySha = await runCli(["pull", "tiny/llama", "--revision", main ?? "", "--json"], env());
    expect(lastJson(bySha.stdout).sha).toBe(main);
    expect(existsSync(join(repoDir(), "refs", main ?? ""))).toBe(false);
    expect(readdirSync(join(repoDir(), "snapshots")).sort()).toEqual([main, dev].sort());
  });

  it("--include picks files by glob, and --force downloads again", async () => {
    const result = await runCli(["pull", "tiny/llama", "--include", "*.json", "--include", "README.md", "--json"], env());
    expect(lastJson(result.stdout).files).toEqual(["README.md", "config.json", "special_tokens_map.json", "tokenizer.json"]);
    hub.requests.length = 0;
    await runCli(["pull", "tiny/llama", "--include", "config.json", "--force"], env());
    expect(fileGets("config.json")).toHaveLength(1);
  });

  it("resumes a download interrupted by SIGKILL from its .incomplete bytes", async () => {
    const cut = 1024 * 1024;
    hub.faults.stallAfter = { path: "model.safetensors", bytes: cut };
    const child = startCli(["pull", "tiny/llama"], env());
    const done = collect(child);
    const partial = join(repoDir(), "blobs", `${sha256(weights)}.incomplete`);
    const deadline = Date.now() + 20_000;
    while (!(existsSync(partial) && statSync(partial).size === cut) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(statSync(partial).size).toBe(cut);
    child.kill("SIGKILL");
    await done;
    delete hub.faults.stallAfter;
    hub.requests.length = 0;
    const resumed = await runCli(["pull", "tiny/llama", "--json"], env());
    expect(resumed.code).toBe(0);
    const gets = fileGets("model.safetensors");
    expect(gets).toHaveLength(1);
    expect(gets[0]?.range).toBe(`bytes=${cut}-`);
    expect(gets[0]?.bytesSent).toBe(weights.length - cut);
    expect(readFileSync(join(repoDir(), "blobs", sha256(weights))).equals(weights)).toBe(true);
    expect(existsSync(partial)).toBe(false);
  });

  it("resumes within one run when the connection drops mid-file", async () => {
    hub.faults.dropAfter = { path: "model.safetensors", bytes: 500_000 };
    const result = await runCli(["pull", "tiny/llama"], env());
    expect(result.code).toBe(0);
    const gets = fileGets("model.safetensors");
    expect(gets).toHaveLength(2);
    expect(gets[0]?.range).toBeUndefined();
    // The retry asks for exactly what is missing from the partial on disk (bytes still in flight when the
    // connection broke may be lost, never duplicated), and fetches only that remainder.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]?.range ?? "")?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(500_000);
    expect(gets[1]?.bytesSent).toBe(weights.length - resumedAt);
    expect(readFileSync(join(repoDir(), "blobs", sha256(weights))).equals(weights)).toBe(true);
  });

  it("retries a 500 answer and succeeds", async () => {
    hub.faults.fail500 = { urlIncludes: "/revision/" };
    const result = await runCli(["pull", "tiny/llama", "--json"], env());
    expect(result.code).toBe(0);
    expect(hub.requests.filter((r) => r.url.includes("/revision/"))).toHaveLength(2);
  });

  it("rejects bytes whose sha256 does not match, deleting the partial", async () => {
    hub.faults.corrupt = { path: "model.safetensors" };
    const result = await runCli(["pull", "tiny/llama"], env());
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("do not match the hub's checksum");
    expect(result.stderr).not.toContain("    at ");
    const blobs = readdirSync(join(repoDir(), "blobs"));
    expect(blobs.some((b) => b.startsWith(sha256(weights)))).toBe(false);
  });

  it("works offline from the cache, and says so clearly when nothing is cached", async () => {
    const online = lastJson((await runCli(["pull", "tiny/llama", "--json"], env())).stdout);
    hub.requests.length = 0;
    const offline = await runCli(["pull", "tiny/llama", "--json"], env({ HF_HUB_OFFLINE: "1", HF_ENDPOINT: "http://127.0.0.1:9" }));
    expect(offline.code).toBe(0);
    expect(lastJson(offline.stdout)).toMatchObject({ sha: online.sha, path: online.path });
    expect(hub.requests).toHaveLength(0);
    // An unreachable hub (not offline mode) falls back to the cached snapshot, saying so.
    const unreachable = await runCli(["pull", "tiny/llama", "--json"], env({ HF_ENDPOINT: "http://127.0.0.1:59997" }));
    expect(unreachable.code).toBe(0);
    expect(lastJson(unreachable.stdout)).toMatchObject({ sha: online.sha, path: online.path });
    const human = await runCli(["pull", "tiny/llama"], env({ HF_ENDPOINT: "http://127.0.0.1:59997" }));
    expect(human.stderr).toContain("offline (http://127.0.0.1:59997 is unreachable): using the cached snapshot");
    const missing = await runCli(["pull", "tiny/other"], env({ HF_HUB_OFFLINE: "1" }));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("tiny/other@main is not in the cache");
    expect(missing.stderr).toContain("HF_HUB_OFFLINE");
  });

  it("sends the token as a bearer header and never prints it", async () => {
    for (const extra of [{ HF_TOKEN: TOKEN }, {}]) {
      const args = ["pull", "secret/gated", "--verbose", ...("HF_TOKEN" in extra ? [] : ["--token", TOKEN])];
      const result = await runCli(args, env(extra));
      expect(result.code).toBe(0);
      expect(result.stdout + result.stderr).not.toContain(TOKEN);
    }
    expect(hub.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    const files = readdirSync(cache, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    for (const file of files) expect(readFileSync(join(file.parentPath, file.name), "utf8")).not.toContain(TOKEN);
  });

  it("explains gated (403), private (401), missing repo (404) and unknown revision", async () => {
    const gated = await runCli(["pull", "secret/gated"], env());
    expect(gated.code).toBe(2);
    expect(gated.stderr).toMatch(/gated.*set HF_TOKEN.*accept the licence/s);
    const wrong = await runCli(["pull", "secret/private", "--json"], env({ HF_TOKEN: "hf_wrongButWellFormed123" }));
    expect(wrong.code).toBe(2);
    expect(lastJson(wrong.stdout)).toMatchObject({ type: "error", exit_code: 2 });
    expect(wrong.stderr).toContain("the token you gave does not grant access");
    expect(wrong.stdout + wrong.stderr).not.toContain("hf_wrongButWellFormed123");
    const missing = await runCli(["pull", "nobody/nothing"], env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nobody/nothing: repository not found");
    const rev = await runCli(["pull", "tiny/llama@no-such-branch"], env());
    expect(rev.code).toBe(2);
    expect(rev.stderr).toContain('revision "no-such-branch" not found');
    for (const r of [gated, wrong, missing, rev]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("refuses a repo whose weights exist only as pickle", async () => {
    const result = await runCli(["pull", "old/pickle-only"], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("weights only in pickle form (pytorch_model.bin)");
    expect(hub.requests.filter((r) => r.url.includes("/resolve/"))).toHaveLength(0);
  });

  it("refuses server file names that would escape the cache", async () => {
    for (const path of ["../../escape.json", "/etc/evil.json", "a/./b.json"]) {
      hub.faults.extraTreeEntries = [{ type: "file", path, oid: "a".repeat(40), size: 3 }];
      const result = await runCli(["pull", "tiny/llama"], env());
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("would be written outside the cache; refusing");
    }
    expect(existsSync(join(cache, "..", "escape.json"))).toBe(false);
    expect(hub.requests.filter((r) => r.url.includes("/resolve/"))).toHaveLength(0);
  });

  it("explains malformed API answers, invalid tokens and an unreachable hub", async () => {
    hub.faults.malformedJson = true;
    const malformed = await runCli(["pull", "tiny/llama"], env());
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain("did not answer like a Hugging Face hub");
    delete hub.faults.malformedJson;
    const badToken = await runCli(["pull", "tiny/llama"], env({ HF_TOKEN: "not a token" }));
    expect(badToken.code).toBe(2);
    expect(badToken.stderr).toContain('tokens start with "hf_"');
    expect(badToken.stderr).not.toContain("not a token");
    const closed = await runCli(["pull", "tiny/llama"], env({ HF_ENDPOINT: "http://127.0.0.1:59999" }));
    expect(closed.code).toBe(1);
    expect(closed.stderr).toContain("could not reach http://127.0.0.1:59999 (ECONNREFUSED");
    expect(closed.stderr).not.toMatch(/\n\s+at /);
  });

  it("two pulls of the same repo at once produce one correct blob", async () => {
    const [a, b] = await Promise.all([runCli(["pull", "tiny/llama"], env()), runCli(["pull", "tiny/llama"], env())]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(readFileSync(join(repoDir(), "blobs", sha256(weights))).equals(weights)).toBe(true);
    expect(fileGets("model.safetensors")).toHaveLength(1);
    expect(readdirSync(join(repoDir(), "blobs")).filter((f) => !/^[0-9a-f]+$/.test(f))).toEqual([]);
  });

  it("refuses an unwritable cache dir and a full disk without leaving a blob", async () => {
    const file = join(tmp.path, `a-file-${n}`);
    writeFileSync(file, "x");
    const unwritable = await runCli(["pull", "tiny/llama", "--cache-dir", join(file, "cache")], env());
    expect(unwritable.code).toBe(2);
    // Refused by the output-path check, before the hub is asked anything.
    expect(unwritable.stderr).toContain(`cannot use --cache-dir ${join(file, "cache")} (ENOTDIR: a part of it is a file, not a folder); choose another --cache-dir.`);
    // A partial file that is really /dev/full makes every write fail with ENOSPC.
    const blobs = join(repoDir(), "blobs");
    mkdirSync(blobs, { recursive: true });
    symlinkSync("/dev/full", join(blobs, `${sha256(weights)}.incomplete`));
    const full = await runCli(["pull", "tiny/llama"], env());
    expect(full.code).toBe(2);
    expect(full.stderr).toContain("is full");
    expect(existsSync(join(blobs, sha256(weights)))).toBe(false);
    expect(existsSync(join(repoDir(), "snapshots", hub.shas("tiny/llama")[0] ?? "", "model.safetensors"))).toBe(false);
  });

  it("pulls datasets with the same machinery (datasets/ prefix or --dataset), never pickles", async () => {
    const a = await runCli(["pull", "datasets/tiny/data", "--json"], env());
    expect(a.code).toBe(0);
    expect(lastJson(a.stdout).files).toEqual(["data/extra.csv", "train.jsonl"]);
    const sha = hub.shas("tiny/data")[0] ?? "";
    expect(readFileSync(join(cache, "datasets--tiny--data", "snapshots", sha, "data", "extra.csv"), "utf8")).toBe("a,b\n1,2\n");
    expect(readlinkSync(join(cache, "datasets--tiny--data", "snapshots", sha, "data", "extra.csv"))).toMatch(/^\.\.\/\.\.\/\.\.\/blobs\//);
    const b = await runCli(["pull", "tiny/data", "--dataset", "--json"], env());
    expect(lastJson(b.stdout).sha).toBe(sha);
  });
});

describe("finetune cache", () => {
  it("lists cached repos and removes one", async () => {
    await runCli(["pull", "tiny/llama"], env());
    await runCli(["pull", "datasets/tiny/data"], env());
    const ls = lastJson((await runCli(["cache", "ls", "--json"], env())).stdout) as { repos: Array<{ repo: string; type: string; size: number; revisions: Array<{ sha: string; refs: string[]; files: string[] }> }> };
    expect(ls.repos.map((r) => `${r.type}:${r.repo}`)).toEqual(["dataset:tiny/data", "model:tiny/llama"]);
    const llama = ls.repos[1];
    expect(llama?.size).toBe(weights.length + config.length + tokenizer.length);
    expect(llama?.revisions).toEqual([{ sha: hub.shas("tiny/llama")[0], refs: ["main"], size: llama?.size, files: ["config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json"] }]);
    const human = await runCli(["cache", "ls"], env());
    expect(human.stdout).toContain("tiny/llama");
    const rm = await runCli(["cache", "rm", "tiny/llama", "--json"], env());
    expect(rm.code).toBe(0);
    expect(lastJson(rm.stdout).freed_bytes).toBe(llama?.size);
    expect(existsSync(repoDir())).toBe(false);
    const again = await runCli(["cache", "rm", "tiny/llama"], env());
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("cached: datasets/tiny/data");
  });
});
