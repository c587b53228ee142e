import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { filesOf, startHubServer, type HubServer } from "../helpers/hub-server.js";
import { cleanEnv, collect, lastJson, runCli, startCli, tempDir } from "../helpers/run-cli.js";
import { writeTinyCheckpoint } from "../helpers/tiny-checkpoint.js";

const tmp = tempDir();
let hub: HubServer;

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const env = () => cleanEnv({ HOME: tmp.path, HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(tmp.path, "cache") });

const TEXT = ["a b c d e f g", "h i j k l m n", "o p q r s t u", "v w x y z a b"].map((text) => ({ text }));
const CHAT = [
  { messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello there" }] },
  { messages: [{ role: "system", content: "be brief" }, { role: "user", content: "name" }, { role: "assistant", content: "tiny" }, { role: "user", content: "age" }, { role: "assistant", content: "new" }] },
  { messages: [{ role: "user", content: "sky" }, { role: "assistant", content: "blue" }] },
  { messages: [{ role: "user", content: "grass" }, { role: "assistant", content: "green" }] },
];
const ALPACA = [
  { instruction: "color of sky", output: "blue" },
  { instruction: "color of grass", input: "in summer", output: "green" },
  { instruction: "color of snow", output: "white" },
];

function jsonl(path: string, rows: object[]): void {
  writeFileSync(path, `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
}

/** A recipe folder with its data; `extra` is YAML appended under train:. */
function recipeDir(name: string, params: { model: string; data: string; rows: object[]; lora?: string; train?: string; validation?: string }): string {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  jsonl(join(dir, params.data), params.rows);
  writeFileSync(
    join(dir, "recipe.yaml"),
    [
      `model: ${params.model}`,
      "data:",
      `  train: ${params.data}`,
      `  validation: ${params.validation ?? "0"}`,
      "lora:",
      params.lora ?? "  r: 8\n  alpha: 16\n  dropout: 0.0\n  target_modules: all-linear",
      "train:",
      params.train ?? "  max_steps: 30\n  batch_size: 4\n  lr: 1.0e-2\n  warmup_steps: 2\n  eval_every: 10\n  save_every: 10\n  max_seq_len: 64",
      `output: ${join(dir, "run")}`,
    ].join("\n") + "\n",
  );
  return dir;
}

const metrics = (run: string) => readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { type: string; step: number; loss: number; val_loss: number });

beforeAll(async () => {
  const llama = join(tmp.path, "src-llama");
  const gpt2 = join(tmp.path, "src-gpt2");
  writeTinyCheckpoint(llama, { kind: "llama", seed: 31 });
  writeTinyCheckpoint(gpt2, { kind: "gpt2", seed: 32 });
  hub = await startHubServer([
    { name: "tiny/llama", commits: [{ files: filesOf(llama) }] },
    { name: "tiny/gpt2", commits: [{ files: filesOf(gpt2) }] },
  ]);
});
afterAll(async () => {
  await hub.close();
  tmp.cleanup();
});

describe("finetune train", () => {
  it("trains a tiny Llama from the hub: loss falls, PEFT files, the adapter lowers eval loss", async () => {
    const dir = recipeDir("llama-text", { model: "tiny/llama", data: "train.jsonl", rows: TEXT });
    const result = await runCli(["train", join(dir, "recipe.yaml"), "--json"], env());
    expect(result.code, result.stderr).toBe(0);
    const run = join(dir, "run");
    const out = lastJson(result.stdout);
    expect(out).toMatchObject({ output: run, steps: 30, adapter: join(run, "adapter") });
    const rows = metrics(run).filter((r) => r.type === "train");
    expect(rows.map((r) => r.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    const first = rows[0]?.loss ?? 0;
    const last = rows[rows.length - 1]?.loss ?? Infinity;
    expect(last).toBeLessThan(first * 0.5);
    // PEFT layout
    const config = JSON.parse(readFileSync(join(run, "adapter", "adapter_config.json"), "utf8")) as Record<string, unknown>;
    expect(config).toMatchObject({ peft_type: "LORA", task_type: "CAUSAL_LM", r: 8, lora_alpha: 16, base_model_name_or_path: "tiny/llama", revision: hub.shas("tiny/llama")[0], fan_in_fan_out: false, use_dora: false, bias: "none" });
    expect(config.target_modules).toEqual(["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]);
    const st = readFileSync(join(run, "adapter", "adapter_model.safetensors"));
    const header = JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString()) as Record<string, { shape: number[]; dtype: string }>;
    expect(header.__metadata__).toEqual({ format: "pt" });
    expect(header["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]).toMatchObject({ dtype: "F32", shape: [8, 32] });
    expect(header["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"]).toMatchObject({ shape: [32, 8] });
    expect(Object.keys(header).filter((k) => k !== "__metadata__")).toHaveLength(2 * 7 * 2);
    const svg = readFileSync(join(run, "loss.svg"), "utf8");
    expect(svg).toMatch(/^<svg /);
    for (const label of [">step</text>", ">loss (nats)</text>", ">train loss</text>", "<path d=\"M"]) expect(svg).toContain(label);
    expect(readFileSync(join(run, "recipe.resolved.yaml"), "utf8")).toContain("max_steps: 30");
    // eval with and without the adapter on the training text
    writeFileSync(join(dir, "eval.jsonl"), readFileSync(join(dir, "train.jsonl")));
    const base = lastJson((await runCli(["eval", "--model", "tiny/llama", "--data", join(dir, "eval.jsonl"), "--json"], env())).stdout);
    const tuned = lastJson((await runCli(["eval", "--model", "tiny/llama", "--adapter", join(run, "adapter"), "--data", join(dir, "eval.jsonl"), "--json"], env())).stdout);
    expect(tuned.loss as number).toBeLessThan((base.loss as number) * 0.5);
  });

  it("trains GPT-2 on alpaca data with a validation split and rsLoRA", async () => {
    const dir = recipeDir("gpt2-alpaca", {
      model: "tiny/gpt2",
      data: "a.jsonl",
      rows: [...ALPACA, ...ALPACA, ...ALPACA],
      validation: "0.2",
      lora: "  r: 4\n  alpha: 8\n  rslora: true\n  target_modules: [c_attn, c_fc]",
      train: "  max_steps: 30\n  batch_size: 4\n  lr: 1.0e-2\n  eval_every: 10\n  save_every: 10\n  max_seq_len: 128",
    });
    const result = await runCli(["train", join(dir, "recipe.yaml")], env());
    expect(result.code, result.stderr).toBe(0);
    const run = join(dir, "run");
    const rows = metrics(run);
    expect(rows.filter((r) => r.type === "eval").map((r) => r.step)).toEqual([10, 20, 30]);
    const config = JSON.parse(readFileSync(join(run, "adapter", "adapter_config.json"), "utf8")) as Record<string, unknown>;
    expect(config).toMatchObject({ fan_in_fan_out: true, use_rslora: true, target_modules: ["c_attn", "c_fc"] });
    const st = readFileSync(join(run, "adapter", "adapter_model.safetensors"));
    const header = JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString()) as Record<string, { shape: number[] }>;
    expect(header["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"]?.shape).toEqual([4, 32]);
    expect(header["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"]?.shape).toEqual([96, 4]);
    expect(result.stderr).toContain("data: 7 training sequences, 2 validation (format alpaca, detected)");
    const evals = rows.filter((r) => r.type === "eval");
    expect(evals[evals.length - 1]?.val_loss ?? Infinity).toBeLessThan(evals[0]?.val_loss ?? 0);
  });

  it("is deterministic, and resumes byte-identically after SIGKILL and after SIGINT", async () => {
    const trainYaml = "  max_steps: 24\n  batch_size: 2\n  lr: 5.0e-3\n  eval_every: 8\n  save_every: 4\n  max_seq_len: 64\n  seed: 7";
    const lora = "  r: 4\n  alpha: 8\n  dropout: 0.1\n  target_modules: [q_proj, v_proj]";
    const make = (name: string) => recipeDir(name, { model: "tiny/llama", data: "chat.jsonl", rows: CHAT, validation: "0.25", lora, train: trainYaml });
    const straight = make("straight");
    const again = make("again");
    expect((await runCli(["train", join(straight, "recipe.yaml")], env())).code).toBe(0);
    expect((await runCli(["train", join(again, "recipe.yaml")], env())).code).toBe(0);
    const adapter = (dir: string) => sha256(join(dir, "run", "adapter", "adapter_model.safetensors"));
    const losses = (dir: string) => metrics(join(dir, "run")).map((r) => [r.type, r.step, r.loss ?? r.val_loss]);
    expect(adapter(again)).toBe(adapter(straight));
    expect(losses(again)).toEqual(losses(straight));

    for (const signal of ["SIGKILL", "SIGINT"] as const) {
      const dir = make(`stopped-${signal}`);
      const child = startCli(["train", join(dir, "recipe.yaml")], env());
      const done = collect(child);
      const file = join(dir, "run", "metrics.jsonl");
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && !(existsSync(file) && readFileSync(file, "utf8").split("\n").length > 10)) await new Promise((r) => setTimeout(r, 10));
      child.kill(signal);
      const stopped = await done;
      expect(existsSync(join(dir, "run", "adapter"))).toBe(false);
      if (signal === "SIGINT") {
        expect(stopped.code).toBe(130);
        expect(stopped.stderr).toMatch(/interrupted at step \d+ by Ctrl-C \(SIGINT\); a checkpoint was written to .*\. Resume with: finetune train .* --resume/);
      }
      const resumed = await runCli(["train", join(dir, "recipe.yaml"), "--resume"], env());
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stderr).toMatch(/resuming from step \d+/);
      expect(adapter(dir)).toBe(adapter(straight));
      expect(losses(dir)).toEqual(losses(straight));
    }
  });

  it("stops on a NaN/Inf loss with a clear message, keeping the last good checkpoint", async () => {
    const dir = recipeDir("nan", { model: "tiny/llama", data: "t.jsonl", rows: TEXT, train: "  max_steps: 20\n  batch_size: 2\n  lr: 1.0e+30\n  max_grad_norm: null\n  save_every: 1\n  max_seq_len: 64" });
    const result = await runCli(["train", join(dir, "recipe.yaml")], env());
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/the training loss became (NaN|Infinity|-Infinity) at step (\d+); nothing from this step was saved/);
    const step = Number(/at step (\d+)/.exec(result.stderr)?.[1]);
    expect(existsSync(join(dir, "run", "checkpoints", `step-${step - 1}`, "state.json"))).toBe(true);
    expect(result.stderr).toContain(`checkpoints/step-${step - 1} is the last good checkpoint and is intact.`);
  });
});

describe("finetune train: bad input gets a clear message, exit 2, nothing overwritten", () => {
  const base = () => recipeDir("bad", { model: "tiny/llama", data: "t.jsonl", rows: TEXT });
  const recipeWith = (dir: string, yaml: string) => {
    writeFileSync(join(dir, "r.yaml"), yaml);
    return join(dir, "r.yaml");
  };
  let runs = 0;
  const ok = (extra = "") => `model: tiny/llama\ndata:\n  train: t.jsonl\n  validation: 0\ntrain:\n  max_steps: 2\n  max_seq_len: 64\n${extra}output: ${join(tmp.path, `run-bad-${(runs += 1)}`)}\n`;

  it.each([
    ["malformed YAML", "model: [x\ndata: {\n", /r\.yaml is not valid YAML:\n\s+.*r\.yaml:\d+:\d+:/],
    ["misspelt key", ok().replace("max_steps", "max_step"), /train\.max_step: unknown key; did you mean "max_steps"\? \(line 6\)/],
    ["wrong type", ok().replace("max_steps: 2", "max_steps: two"), /train\.max_steps: max_steps must be a number \(line 6\)/],
    ["r ≤ 0", ok("lora:\n  r: 0\n"), /lora\.r: r must be > 0 \(line 9\)/],
    ["lr ≤ 0", ok().replace("max_seq_len: 64", "max_seq_len: 64\n  lr: 0"), /train\.lr: lr must be > 0 \(line 8\)/],
  ])("%s", async (_name, yaml, message) => {
    const dir = base();
    const result = await runCli(["train", recipeWith(dir, yaml)], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("reports every recipe problem at once, --set problems included", async () => {
    const dir = base();
    const result = await runCli(["recipe", "validate", recipeWith(dir, ok("lora:\n  r: -1\n  alpah: 3\n")), "--set", "train.lr=-5"], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("has 3 problems");
    expect(result.stderr).toContain('lora.alpah: unknown key; did you mean "alpha"?');
    expect(result.stderr).toContain("train.lr: lr must be > 0 (from --set train.lr)");
  });

  it.each([
    ["a target module absent from the model", ok("lora:\n  target_modules: [q_proj, c_attn]\n"), "lora.target_modules: c_attn is not in this llama model; available: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"],
    ["max_seq_len above the context", ok().replace("max_seq_len: 64", "max_seq_len: 4096"), "train.max_seq_len 4096 is above the model's context of 128 tokens"],
    ["an empty dataset", ok().replace("t.jsonl", "empty.jsonl"), "empty.jsonl"],
    ["a non-UTF-8 file", ok().replace("t.jsonl", "latin1.jsonl"), "latin1.jsonl is not UTF-8"],
    ["a missing field", ok().replace("t.jsonl", "missing.jsonl"), 'missing.jsonl:2: missing field "output"'],
    ["a chat record with an unknown role", ok().replace("t.jsonl", "role.jsonl"), "role.jsonl:1"],
    ["a missing data file", ok().replace("t.jsonl", "nope.jsonl"), 'no such file "nope.jsonl"'],
  ])("%s", async (_name, yaml, message) => {
    const dir = base();
    writeFileSync(join(dir, "empty.jsonl"), "");
    writeFileSync(join(dir, "latin1.jsonl"), Buffer.from([0x7b, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d, 0x0a]));
    jsonl(join(dir, "missing.jsonl"), [{ instruction: "a", output: "b" }, { instruction: "c" }]);
    jsonl(join(dir, "role.jsonl"), [{ messages: [{ role: "wizard", content: "x" }, { role: "assistant", content: "y" }] }]);
    const result = await runCli(["train", recipeWith(dir, yaml)], env());
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("refuses a run that would not fit the wasm heap, saying what would fit", async () => {
    const dir = base();
    const result = await runCli(["train", recipeWith(dir, ok().replace("max_steps: 2", "max_steps: 2\n  batch_size: 30000\n  gradient_checkpointing: false"))], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/this run needs about [\d.]+ GiB on the wasm backend, whose limit is 4\.0 GiB .*What would fit: train\.batch_size \d+ .*; or the tensorflow backend/);
  });

  it("--overwrite replaces only a finetune run, and --resume refuses a changed recipe", async () => {
    const dir = base();
    const precious = join(dir, "project");
    mkdirSync(precious, { recursive: true });
    writeFileSync(join(precious, "notes.txt"), "mine");
    const refused = await runCli(["train", join(dir, "recipe.yaml"), "--output", precious, "--overwrite"], env());
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("it holds notes.txt, which finetune did not write");
    expect(readFileSync(join(precious, "notes.txt"), "utf8")).toBe("mine");
    const run = join(dir, "resumable");
    const first = await runCli(["train", join(dir, "recipe.yaml"), "--output", run, "--max-steps", "12"], env());
    expect(first.code, first.stderr).toBe(0);
    const changed = await runCli(["train", join(dir, "recipe.yaml"), "--output", run, "--max-steps", "12", "--set", "train.lr=0.5", "--resume"], env());
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain("this value differs from the recipe the run started with");
    expect(changed.stderr).toContain("  train.lr: 0.01 → 0.5\n");
    const again = await runCli(["train", join(dir, "recipe.yaml"), "--output", run, "--max-steps", "12", "--overwrite"], env());
    expect(again.code, again.stderr).toBe(0);
    // A damaged record of the run's recipe (garbage, or an alias bomb) is an exit-2 error naming it, never a crash.
    const resolved = join(run, "recipe.resolved.yaml");
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x]", ...["b", "c", "d", "e", "f", "g"].map((name, i) => `${name}: &${name} [${Array.from({ length: 9 }, () => `*${"abcdefg"[i]}`).join(", ")}]`)].join("\n");
    for (const [content, message] of [["output: [\n\u0001{{", "is not valid YAML"], [bomb, "alias bomb"]] as const) {
      writeFileSync(resolved, content);
      const damaged = await runCli(["train", join(dir, "recipe.yaml"), "--output", run, "--max-steps", "14", "--resume"], env());
      expect(damaged.code, damaged.stderr).toBe(2);
      expect(damaged.stderr).toContain(`error: --resume: ${resolved}`);
      expect(damaged.stderr).toContain(message);
      expect(damaged.stderr).not.toMatch(/this is a bug|\n\s+at /);
      // Resuming with the damaged file itself as the recipe fails as cleanly.
      const asRecipe = await runCli(["train", resolved, "--resume"], env());
      expect(asRecipe.code).toBe(2);
      expect(asRecipe.stderr).toContain(message);
    }
  });

  it("bad --set values are exit-2 errors naming the flag (attacks)", async () => {
    const dir = base();
    const cases: Array<[string, string]> = [
      ["train.lr=[unclosed", "--set train.lr is not valid YAML: Flow sequence must end with a ]"],
      ["train.lr=*a", "--set train.lr is not valid YAML: Unresolved alias"],
    ];
    for (const [set, message] of cases) {
      const result = await runCli(["train", join(dir, "recipe.yaml"), "--set", set], env());
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).not.toMatch(/this is a bug|\n\s+at /);
      expect(existsSync(join(dir, "run"))).toBe(false);
    }
  });

  it("refuses a non-empty output directory and leaves it untouched", async () => {
    const dir = base();
    mkdirSync(join(dir, "run"), { recursive: true });
    writeFileSync(join(dir, "run", "precious.txt"), "keep me");
    const result = await runCli(["train", join(dir, "recipe.yaml")], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("is not empty (it holds precious.txt, which finetune did not write); choose another --output");
    expect(readFileSync(join(dir, "run", "precious.txt"), "utf8")).toBe("keep me");
    expect(readdirSync(join(dir, "run"))).toEqual(["precious.txt"]);
    const resume = await runCli(["train", join(dir, "recipe.yaml"), "--resume"], env());
    expect(resume.code).toBe(2);
    expect(resume.stderr).toContain("has no checkpoint to resume from");
  });
});
