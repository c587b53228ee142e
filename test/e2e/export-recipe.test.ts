import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { cleanEnv, lastJson, runCli, tempDir } from "../helpers/run-cli.js";
import { cacheTinyModel, SHA } from "../unit/handoff/cache-fixture.js";

const tmp = tempDir();
const cache = join(tmp.path, "hub");
const env = () => cleanEnv({ HOME: tmp.path, HF_HUB_OFFLINE: "1", HF_HUB_CACHE: cache });
const chat = (i: number) => ({ messages: [{ role: "user", content: `q${i}` }, { role: "assistant", content: `a${i}` }] });

beforeAll(() => {
  cacheTinyModel(cache, "org/tiny");
  writeFileSync(join(tmp.path, "chat.jsonl"), Array.from({ length: 10 }, (_, i) => JSON.stringify(chat(i))).join("\n") + "\n");
  writeFileSync(join(tmp.path, "recipe.yaml"), "model: org/tiny\ndata:\n  train: chat.jsonl\n  validation: 0.2\noutput: runs/tiny\ntrain:\n  max_steps: 20\n  batch_size: 2\n");
});
afterAll(() => tmp.cleanup());

const readJsonl = (path: string) => readFileSync(path, "utf8").trimEnd().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);

describe("finetune export-recipe", () => {
  it("writes the Axolotl hand-off with the model pinned and the data converted", async () => {
    const out = join(tmp.path, "axolotl-out");
    const result = await runCli(["--json", "export-recipe", join(tmp.path, "recipe.yaml"), "--to", "axolotl", "--out", out], env());
    expect(result.stderr).not.toContain("error");
    expect(result.code).toBe(0);
    const summary = lastJson(result.stdout);
    expect(summary).toMatchObject({ to: "axolotl", model: `org/tiny@${SHA}`, pinned_by: "cache", train_examples: 8, validation_examples: 2, files: ["README.md", "axolotl.yaml", "data/train.jsonl", "data/validation.jsonl"] });
    expect(readdirSync(out).sort()).toEqual(["README.md", "axolotl.yaml", "data"]);
    const config = parse(readFileSync(join(out, "axolotl.yaml"), "utf8")) as Record<string, unknown>;
    expect(config).toMatchObject({ base_model: "org/tiny", revision_of_model: SHA, max_steps: 20, micro_batch_size: 2, train_on_inputs: false, output_dir: "./tiny" });
    expect(config.datasets).toMatchObject([{ path: "data/train.jsonl", type: "chat_template", field_messages: "messages", roles_to_train: ["assistant"] }]);
    const train = readJsonl(join(out, "data/train.jsonl"));
    const validation = readJsonl(join(out, "data/validation.jsonl"));
    expect(train).toHaveLength(8);
    expect(validation).toHaveLength(2);
    // Together they hold exactly the records of the recipe's file, in the messages field the config names.
    const all = [...train, ...validation].map((row) => JSON.stringify(row)).sort();
    expect(all).toEqual(Array.from({ length: 10 }, (_, i) => JSON.stringify(chat(i))).sort());
    const readme = readFileSync(join(out, "README.md"), "utf8");
    expect(readme).toContain("accelerate launch -m axolotl.cli.train axolotl.yaml");
    expect(readme).toContain(`| model.name | org/tiny | base_model: org/tiny, revision_of_model: ${SHA} |`);
    expect(result.stdout).toContain("reported: train.batch_size × train.grad_accum");
    expect(summary.reported).toEqual(expect.arrayContaining([expect.stringMatching(/^train\.seed: /)]));
  });

  it("writes the TRL hand-off: a script, an accelerate config and prompt-completion chat rows", async () => {
    const out = join(tmp.path, "nested", "trl-out");
    const result = await runCli(["export-recipe", join(tmp.path, "recipe.yaml"), "--to", "trl", "--out", out], env());
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`wrote the TRL hand-off of ${join(tmp.path, "recipe.yaml")} to ${out}`);
    expect(readdirSync(out).sort()).toEqual(["README.md", "accelerate_config.yaml", "data", "train_trl.py"]);
    const script = readFileSync(join(out, "train_trl.py"), "utf8");
    expect(script).toContain(`REVISION = "${SHA}"`);
    expect(script).toContain('    "completion_only_loss": True,');
    expect(readJsonl(join(out, "data/train.jsonl"))[0]).toEqual({ prompt: [{ role: "user", content: expect.stringMatching(/^q\d$/) as unknown }], completion: [{ role: "assistant", content: expect.stringMatching(/^a\d$/) as unknown }] });
    expect((parse(readFileSync(join(out, "accelerate_config.yaml"), "utf8")) as Record<string, unknown>).distributed_type).toBe("MULTI_GPU");
  });

  it("refuses an existing --out, an unpinnable model and a fractional alpha for Axolotl with exit 2, leaving nothing behind", async () => {
    const out = join(tmp.path, "axolotl-out");
    const again = await runCli(["export-recipe", join(tmp.path, "recipe.yaml"), "--to", "axolotl", "--out", out], env());
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`--out ${out} already exists; choose a new directory (nothing was written).`);

    writeFileSync(join(tmp.path, "unknown.yaml"), "model: org/unknown\ndata: {train: chat.jsonl}\noutput: o\ntrain: {max_steps: 1}\n");
    const fresh = join(tmp.path, "never");
    const unpinned = await runCli(["export-recipe", join(tmp.path, "unknown.yaml"), "--to", "trl", "--out", fresh], env());
    expect(unpinned.code).toBe(2);
    expect(unpinned.stderr).toContain("model org/unknown cannot be pinned to a commit");
    expect(unpinned.stderr).toContain("Run `finetune pull org/unknown`");

    const alpha = await runCli(["export-recipe", join(tmp.path, "recipe.yaml"), "--set", "lora.alpha=16.5", "--to", "axolotl", "--out", fresh], env());
    expect(alpha.code).toBe(2);
    expect(alpha.stderr).toContain("lora.alpha is 16.5, but Axolotl 0.18.0 takes lora_alpha as a whole number");
    expect(existsSync(fresh)).toBe(false);
    expect(readdirSync(tmp.path).filter((name) => name.includes(".tmp-"))).toEqual([]);

    const badTarget = await runCli(["export-recipe", join(tmp.path, "recipe.yaml"), "--to", "megatron", "--out", fresh], env());
    expect(badTarget.code).toBe(2);
    expect(badTarget.stderr).toContain("megatron");
  });
});
