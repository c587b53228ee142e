import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sha256, startHubServer, type FakeRepo, type HubServer } from "../helpers/hub-server.js";
import { cleanEnv, lastJson, runCli, tempDir } from "../helpers/run-cli.js";
import { processStartTime } from "../../src/io/process-start.js";

// Attacks from a hostile or broken hub (issue 11: secrets, hangs, locks; issue 10: local folder vs hub id).
const TOKEN = "hf_attackTokenValue1234567890abcdefXYZ";
const SHA = "1234567890abcdef1234567890abcdef12345678";
const weights = Buffer.alloc(2 * 1024 * 1024 + 5);
for (let i = 0; i < weights.length; i += 1) weights[i] = (i * 31) % 253;
const shard2 = Buffer.alloc(4096, 7);
const config = JSON.stringify({ model_type: "llama", hidden_size: 8 });

const repos: FakeRepo[] = [
  {
    name: "tiny/llama",
    commits: [{ sha: SHA, files: [
      { path: "config.json", content: config },
      { path: "tokenizer.json", content: '{"t":1}' },
      { path: "model.safetensors", content: weights, lfs: true },
      { path: "generation_config.json", content: '{"g":1}' },
      { path: "special_tokens_map.json", content: '{"s":1}' },
    ] }],
  },
  { name: "secret/gated", access: { token: TOKEN, kind: "gated" }, commits: [{ files: [{ path: "config.json", content: config }, { path: "model.safetensors", content: shard2, lfs: true }] }] },
  {
    name: "tiny/sharded",
    commits: [{ files: [
      { path: "config.json", content: config },
      { path: "model-00001-of-00002.safetensors", content: weights, lfs: true },
      { path: "model-00002-of-00002.safetensors", content: shard2, lfs: true },
    ] }],
  },
];

let hub: HubServer;
/** Another origin serving the same repos: a CDN, or a host a hostile `Link` header points at. */
let other: HubServer;
const tmp = tempDir();
let cache: string;
let n = 0;

beforeAll(async () => {
  hub = await startHubServer(repos, { treePageSize: 2 });
  other = await startHubServer(repos, { treePageSize: 2 });
});

afterAll(async () => {
  await Promise.all([hub.close(), other.close()]);
  tmp.cleanup();
});

beforeEach(() => {
  n += 1;
  cache = join(tmp.path, `cache-${n}`);
  for (const server of [hub, other]) {
    server.requests.length = 0;
    for (const key of Object.keys(server.faults)) delete server.faults[key as keyof typeof server.faults];
  }
});

const env = (extra: Record<string, string | undefined> = {}) => cleanEnv({ HOME: tmp.path, HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, ...extra });
const blobs = (repo = "models--tiny--llama") => join(cache, repo, "blobs");
const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at /);

describe("secrets", () => {
  it("a hub that echoes the Authorization header never gets the token printed, in text or --json", async () => {
    hub.faults.echoAuthorization = { urlIncludes: "/revision/", status: 400, times: 2 };
    const human = await runCli(["pull", "tiny/llama"], env({ HF_TOKEN: TOKEN }));
    expect(human.code).toBe(2);
    expect(human.stderr).toContain("the hub refused the request (HTTP 400)");
    // The echoed header is quoted, with the credential masked.
    expect(human.stderr).toContain("authorization=***");
    const json = await runCli(["pull", "tiny/llama", "--json", "--token", TOKEN], env());
    expect(json.code).toBe(2);
    const error = lastJson(json.stdout);
    expect(error).toMatchObject({ type: "error", exit_code: 2 });
    expect(String(error.message)).toContain("authorization=***");
    for (const result of [human, json]) expect(result.stdout + result.stderr).not.toContain(TOKEN);
    // The server really did receive (and echo) the token: the redaction is what kept it off the terminal.
    expect(hub.requests.filter((r) => r.url.includes("/revision/")).map((r) => r.authorization)).toEqual([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
  });

  it("sends the token to the endpoint's origin only: not to cross-origin Link pages, not to a CDN redirect", async () => {
    hub.faults.nextPageOrigin = other.url;
    hub.faults.redirectFilesTo = other.url;
    const result = await runCli(["pull", "tiny/llama", "--json"], env({ HF_TOKEN: TOKEN }));
    expect(result.code).toBe(0);
    expect(lastJson(result.stdout)).toMatchObject({ sha: SHA, files: ["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json"] });
    expect(readFileSync(join(blobs(), sha256(weights))).equals(weights)).toBe(true);
    // The other origin served the later tree pages and every file, and never saw a credential.
    const tree = other.requests.filter((r) => r.url.includes("/tree/"));
    const files = other.requests.filter((r) => r.url.includes("/resolve/"));
    expect(tree.length).toBe(2);
    expect(files.length).toBe(5);
    expect(other.requests.every((r) => r.authorization === undefined)).toBe(true);
    // The configured hub got the token on each of its requests (revision, first tree page, the 5 redirects).
    expect(hub.requests).toHaveLength(7);
    expect(hub.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it("keeps the token on same-origin redirects (a renamed repo), so gated repos still work", async () => {
    hub.faults.renamed = { from: "old/name", to: "secret/gated" };
    const result = await runCli(["pull", "old/name", "--json"], env({ HF_TOKEN: TOKEN }));
    expect(result.code).toBe(0);
    expect(lastJson(result.stdout).files).toEqual(["config.json", "model.safetensors"]);
    const redirected = hub.requests.filter((r) => r.url.includes("/secret/gated/"));
    // revision, tree, two files: each reached through a 307 from old/name, each with the token.
    expect(redirected).toHaveLength(4);
    expect(hub.requests).toHaveLength(8);
    expect(hub.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it("masks credentials written into HF_ENDPOINT in errors and sends them as Basic auth to that host only", async () => {
    const withCredentials = hub.url.replace("http://", "http://alice:s3cretPass@");
    const missing = await runCli(["pull", "nobody/nothing"], env({ HF_ENDPOINT: withCredentials }));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`repository not found on ${hub.url.replace("http://", "http://***@")}`);
    expect(missing.stderr).not.toContain("s3cretPass");
    expect(missing.stderr).not.toContain("alice");
    expect(hub.requests[0]?.authorization).toBe(`Basic ${Buffer.from("alice:s3cretPass").toString("base64")}`);
    hub.requests.length = 0;
    hub.faults.redirectFilesTo = other.url;
    const pulled = await runCli(["pull", "tiny/llama", "--json"], env({ HF_ENDPOINT: withCredentials }));
    expect(pulled.code).toBe(0);
    expect(pulled.stdout + pulled.stderr).not.toContain("s3cretPass");
    expect(other.requests.length).toBeGreaterThan(0);
    expect(other.requests.every((r) => r.authorization === undefined)).toBe(true);
  });
});

describe("hangs and floods", () => {
  it("refuses an oversize metadata answer, streamed or declared, naming the path and the limit", async () => {
    hub.faults.oversizeJson = { urlIncludes: "/tree/", bytes: 200_000_000 };
    const streamed = await runCli(["pull", "tiny/llama"], env());
    expect(streamed.code).toBe(1);
    expect(streamed.stderr).toContain(`the hub's answer to /api/models/tiny/llama/tree/${SHA} is more than 64.0 MB, over the 64.0 MB limit for metadata`);
    noStack(streamed.stderr);
    const tree = hub.requests.find((r) => r.url.includes("/tree/"));
    // It stopped reading near the limit instead of taking all 200 MB.
    expect(tree?.bytesSent).toBeLessThan(100_000_000);
    hub.faults.oversizeJson = { urlIncludes: "/revision/", bytes: 600_000_000, declared: true };
    const declared = await runCli(["pull", "tiny/llama", "--json"], env());
    expect(declared.code).toBe(1);
    expect(String(lastJson(declared.stdout).message)).toContain(`/api/models/tiny/llama/revision/main is 600 MB, over the 64.0 MB limit`);
  });

  it("cuts a stalled download after the stall timeout, says so, and resumes where it stopped", async () => {
    hub.faults.stallAfter = { path: "model.safetensors", bytes: 700_000 };
    const result = await runCli(["pull", "tiny/llama"], env({ FINETUNE_HUB_STALL_SECONDS: "1" }));
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/model\.safetensors: no data for 1 s after \d+ of 2097157 bytes: the connection stalled; retrying in 0\.4 s \(attempt 2\)/);
    const gets = hub.requests.filter((r) => r.url.endsWith("/model.safetensors"));
    expect(gets).toHaveLength(2);
    expect(Number(/^bytes=(\d+)-$/.exec(gets[1]?.range ?? "")?.[1])).toBeGreaterThan(0);
    expect(readFileSync(join(blobs(), sha256(weights))).equals(weights)).toBe(true);
  });

  it("cuts a hub that never answers, or stops mid-answer, after the stall timeout and says so", async () => {
    hub.faults.hangHead = { urlIncludes: "/revision/" };
    const hung = await runCli(["pull", "tiny/llama"], env({ FINETUNE_HUB_STALL_SECONDS: "1" }));
    expect(hung.code).toBe(0);
    expect(hung.stderr).toMatch(/\/api\/models\/tiny\/llama\/revision\/main: no answer within 1 s; retrying in \d\.\d s \(attempt 2 of 5\)/);
    expect(hub.requests.filter((r) => r.url.includes("/revision/"))).toHaveLength(2);
    hub.faults.stallJson = { urlIncludes: "/tree/" };
    const stalled = await runCli(["pull", "tiny/llama", "--json"], env({ FINETUNE_HUB_STALL_SECONDS: "1", HF_HUB_CACHE: join(cache, "second") }));
    expect(stalled.code).toBe(1);
    expect(lastJson(stalled.stdout)).toMatchObject({
      type: "error",
      message: `the hub's answer to /api/models/tiny/llama/tree/${SHA} stalled: no data for 1 s after 5 B; check your connection (or HF_ENDPOINT), then run the command again.`,
    });
  });

  it("gives up on a download that keeps stalling without progress, keeping the partial", async () => {
    hub.faults.stallAfter = { path: "model.safetensors", bytes: 300_000, resumedBytes: 0, times: 100 };
    const result = await runCli(["pull", "tiny/llama"], env({ FINETUNE_HUB_STALL_SECONDS: "0.5" }));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/downloading model\.safetensors kept failing \(5 attempts in a row made no progress; last: no data for 0.5 s after 300000 of 2097157 bytes/);
    expect(result.stderr).toContain("300000 of 2097157 bytes are kept and the next run resumes from there");
    expect(hub.requests.filter((r) => r.url.endsWith("/model.safetensors"))).toHaveLength(5);
    // Every attempt was announced: 4 retries, then the failure.
    expect(result.stderr.match(/retrying in/g)).toHaveLength(4);
  });

  it("honours a short Retry-After and refuses a long one, saying when to try again", async () => {
    hub.faults.retryAfter = { urlIncludes: "/revision/", status: 429, value: "1" };
    const short = await runCli(["pull", "tiny/llama"], env());
    expect(short.code).toBe(0);
    expect(short.stderr).toContain("HTTP 429, the hub asked to wait 1 s (Retry-After); retrying in 1.0 s (attempt 2 of 5)");
    hub.requests.length = 0;
    hub.faults.retryAfter = { urlIncludes: "/revision/", status: 503, value: "3600" };
    const long = await runCli(["pull", "tiny/llama", "--json"], env());
    expect(long.code).toBe(1);
    expect(String(lastJson(long.stdout).message)).toMatch(
      /answered HTTP 503 to \/api\/models\/tiny\/llama\/revision\/main and asks to retry after 3600 s \(at \d\d:\d\d:\d\d UTC\), longer than finetune waits \(60 s\); try again then\./,
    );
    // No retries were spent on it.
    expect(hub.requests).toHaveLength(1);
  });
});

describe("download locks", () => {
  it("a failed pull leaves no lock behind, even for downloads still running when it failed", async () => {
    hub.faults.stallAfter = { path: "model-00001-of-00002.safetensors", bytes: 100_000 };
    hub.faults.corrupt = { path: "model-00002-of-00002.safetensors" };
    const result = await runCli(["pull", "tiny/sharded"], env());
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("model-00002-of-00002.safetensors: downloaded bytes do not match");
    const left = readdirSync(blobs("models--tiny--sharded"));
    expect(left.filter((f) => f.includes(".lock") || f.includes(".tmp-"))).toEqual([]);
    // The stalled shard's partial is kept for the next run.
    expect(left).toContain(`${sha256(weights)}.incomplete`);
  });

  it("takes over a lock whose pid now belongs to another process (start time differs)", async () => {
    mkdirSync(blobs(), { recursive: true });
    const lock = join(blobs(), `${sha256(weights)}.lock`);
    // process.pid is alive (this test runner), but it did not start at tick 1.
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), start: "1", since: "2026-01-01T00:00:00.000Z", id: "old" }));
    const result = await runCli(["pull", "tiny/llama"], env({ FINETUNE_HUB_LOCK_WAIT_SECONDS: "30" }));
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain("waiting for");
    expect(existsSync(lock)).toBe(false);
    expect(readFileSync(join(blobs(), sha256(weights))).equals(weights)).toBe(true);
  });

  it("waits for a live owner it cannot disprove, says so, and gives up after the bound with exit 2", async () => {
    mkdirSync(blobs(), { recursive: true });
    const lock = join(blobs(), `${sha256(weights)}.lock`);
    // An old-style lock (a bare pid) naming a live process: it may really be downloading, so we wait, boundedly.
    writeFileSync(lock, String(process.pid));
    const result = await runCli(["pull", "tiny/llama"], env({ FINETUNE_HUB_LOCK_WAIT_SECONDS: "1" }));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`model.safetensors: waiting for pid ${process.pid}, which is downloading it`);
    expect(result.stderr).toContain(`its download is locked by pid ${process.pid}, and nothing was downloaded for 1 s`);
    expect(result.stderr).toContain(`delete ${lock} and run again`);
    // The lock is not ours: it is left alone.
    expect(readFileSync(lock, "utf8")).toBe(String(process.pid));
    // A new-style lock naming this live process with its true start time is held, not stale.
    writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), start: processStartTime(process.pid), since: null, id: "live" }));
    const live = await runCli(["pull", "tiny/llama"], env({ FINETUNE_HUB_LOCK_WAIT_SECONDS: "1" }));
    expect(live.code).toBe(2);
    expect(live.stderr).toContain(`its download is locked by pid ${process.pid} on host ${hostname()}, and nothing was downloaded for 1 s`);
    const otherHost = JSON.stringify({ pid: 1, host: "elsewhere.example", start: "5", since: "2026-01-01T00:00:00.000Z", id: "x" });
    writeFileSync(lock, otherHost);
    const remote = await runCli(["pull", "tiny/llama", "--json"], env({ FINETUNE_HUB_LOCK_WAIT_SECONDS: "1" }));
    expect(remote.code).toBe(2);
    const lines = remote.stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.find((l) => l.type === "lock_wait")).toMatchObject({ path: "model.safetensors", pid: 1, host: "elsewhere.example" });
    expect(String(lines.at(-1)?.message)).toContain("locked by pid 1 on host elsewhere.example, since 2026-01-01T00:00:00.000Z");
  });
});

describe("a model named without ./", () => {
  it("says a missing folder was read as a hub id, and how to name a folder", async () => {
    const project = join(tmp.path, `project-${n}`);
    mkdirSync(project, { recursive: true });
    for (const model of ["mymodel", "my/model", "models/foo"]) {
      const result = await runCli(["generate", "--model", model, "--prompt", "hi"], env(), { cwd: project });
      expect(result.code).toBe(2);
      const id = model.replace(/^models\//, "");
      expect(result.stderr).toContain(`${id}: repository not found`);
      expect(result.stderr).toContain(`"${model}" was read as the hub id ${id} because no folder ${join(project, model)} exists; for a model on disk, give its folder's path (./${model} or an absolute path)`);
    }
    // A file where a folder was meant is named as such, without asking the hub.
    writeFileSync(join(project, "model.safetensors"), "x");
    hub.requests.length = 0;
    const file = await runCli(["generate", "--model", "model.safetensors", "--prompt", "hi"], env(), { cwd: project });
    expect(file.code).toBe(2);
    expect(file.stderr).toContain(`model ${join(project, "model.safetensors")} is a file; give the folder that holds config.json`);
    expect(hub.requests).toHaveLength(0);
  });

  it("an unreachable hub says so while retrying, then how to use the cache or a local folder", async () => {
    const project = join(tmp.path, `project-${n}`);
    mkdirSync(project, { recursive: true });
    const result = await runCli(["generate", "--model", "my/model", "--prompt", "hi"], env({ HF_ENDPOINT: "http://127.0.0.1:59996" }), { cwd: project });
    expect(result.code).toBe(1);
    expect(result.stderr.match(/\/api\/models\/my\/model\/revision\/main: ECONNREFUSED.*; retrying in \d\.\d s \(attempt \d of 5\)/g)).toHaveLength(4);
    expect(result.stderr).toContain("could not reach http://127.0.0.1:59996 (ECONNREFUSED");
    expect(result.stderr).toContain(`my/model@main is not in the cache at ${cache} either`);
    expect(result.stderr).toContain("HF_HUB_OFFLINE=1 uses the cache only");
    expect(result.stderr).toContain(`"my/model" was read as the hub id my/model because no folder ${join(project, "my/model")} exists`);
    noStack(result.stderr);
  });
});
