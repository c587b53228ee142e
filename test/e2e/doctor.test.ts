import { totalmem } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHubServer, type HubServer } from "../helpers/hub-server.js";
import { cleanEnv, lastJson, runCli, tempDir } from "../helpers/run-cli.js";
import { SUPPORTED_MODEL_TYPES } from "../../src/model/config.js";

const TOKEN = "hf_doctorSecret987654321";
const tmp = tempDir();
let hub: HubServer;

beforeAll(async () => {
  hub = await startHubServer([]);
});
afterAll(async () => {
  await hub.close();
  tmp.cleanup();
});

describe("finetune doctor", () => {
  it("reports backends, cache, token presence and hub reachability, never the token", async () => {
    const env = cleanEnv({ HOME: tmp.path, HF_ENDPOINT: hub.url, HF_HUB_CACHE: tmp.path, HF_TOKEN: TOKEN });
    const result = await runCli(["doctor", "--json"], env, { cwd: "/" });
    expect(result.code).toBe(0);
    expect(result.stdout + result.stderr).not.toContain(TOKEN);
    const report = lastJson(result.stdout) as Record<string, any>;
    expect(report.node).toBe(process.version);
    expect(report.backends.map((b: { name: string }) => b.name)).toEqual(["tensorflow (CUDA)", "tensorflow (CPU)", "wasm", "cpu"]);
    // wasm finds its .wasm files even from another working directory (cwd is /)
    expect(report.backends.find((b: { name: string }) => b.name === "wasm")).toMatchObject({ loaded: true, version: "4.22.0" });
    for (const b of report.backends) if (!b.loaded) expect(b.reason).toBeTruthy();
    expect(report.model_types).toEqual(expect.arrayContaining(["llama", "mistral", "qwen2", "gpt2", "gemma2", "gemma3_text"]));
    expect(report.cache).toEqual({ path: tmp.path, repos: 0, size_bytes: 0 });
    expect(report.token).toEqual({ configured: true, source: "HF_TOKEN", valid: true });
    expect(report.hub).toMatchObject({ endpoint: hub.url, reachable: true, status: 200 });
    // The machine's RAM, where bf16/int8/nf4 base weights live: the total is fixed, the free part between 0 and it.
    expect(report.ram.total_bytes).toBe(totalmem());
    expect(report.ram.free_bytes).toBeGreaterThan(0);
    expect(report.ram.free_bytes).toBeLessThanOrEqual(report.ram.total_bytes);
    const human = await runCli(["doctor"], env);
    expect(human.stdout).toContain(`RAM: ${(totalmem() / 1024 ** 3).toFixed(1)} GiB total, `);
    expect(human.stdout).toMatch(/RAM: [\d.]+ GiB total, [\d.]+ GiB free \(bf16\/int8\/nf4 base weights live here, outside the wasm heap\)/);
    expect(human.stdout).toMatch(/✓ wasm/);
    // The model types config.json may name.
    expect(report.model_types).toEqual([...SUPPORTED_MODEL_TYPES]);
    expect(report.model_types).toEqual(expect.arrayContaining(["llama", "qwen2", "qwen3", "smollm3", "phi3", "gpt2"]));
    expect(human.stdout).toContain(`model types: ${SUPPORTED_MODEL_TYPES.join(", ")}`);
    expect(human.stdout).toContain("configured (HF_TOKEN)");
    expect(human.stdout).not.toContain(TOKEN);
  });

  it("honours FINETUNE_BACKEND and --backend, and reports an unreachable hub", async () => {
    const env = cleanEnv({ HOME: tmp.path, HF_ENDPOINT: "http://127.0.0.1:59998", HF_HUB_CACHE: tmp.path, FINETUNE_BACKEND: "cpu" });
    const cpu = lastJson((await runCli(["doctor", "--json"], env)).stdout);
    expect(cpu.selected).toBe("cpu");
    expect(cpu.hub).toMatchObject({ reachable: false });
    expect(String((cpu.hub as { error: string }).error)).toContain("ECONNREFUSED");
    expect(cpu.token).toEqual({ configured: false, source: "none", valid: true });
    const wasm = lastJson((await runCli(["doctor", "--json", "--backend", "wasm"], env)).stdout);
    expect(wasm.selected).toBe("wasm");
  });

  it("masks credentials written into HF_ENDPOINT, whether the hub answers or the URL is refused", async () => {
    const masked = hub.url.replace("http://", "http://***@");
    const env = cleanEnv({ HOME: tmp.path, HF_HUB_CACHE: tmp.path, FINETUNE_BACKEND: "cpu", HF_ENDPOINT: hub.url.replace("http://", "http://bob:hunter2secret@") });
    const json = await runCli(["doctor", "--json"], env);
    expect(json.code).toBe(0);
    // The probe still reaches the hub (credentials are not part of the URL fetched).
    expect(lastJson(json.stdout).hub).toMatchObject({ endpoint: masked, reachable: true, status: 200 });
    const human = await runCli(["doctor"], env);
    expect(human.stdout).toContain(`hub: ${masked} · ✓ answers`);
    const refused = await runCli(["doctor", "--json"], { ...env, HF_ENDPOINT: "ftp://bob:hunter2secret@host/" });
    expect(lastJson(refused.stdout).hub).toMatchObject({ endpoint: "ftp://***@host/", reachable: false });
    expect(String((lastJson(refused.stdout).hub as { error: string }).error)).toContain('HF_ENDPOINT="ftp://***@host/" must be an http(s) URL');
    for (const result of [json, human, refused]) expect(result.stdout + result.stderr).not.toMatch(/hunter2secret|bob:/);
  });
});
