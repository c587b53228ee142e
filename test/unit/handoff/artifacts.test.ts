import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { axolotlYaml } from "../../../src/handoff/axolotl.js";
import { planHandoff, type DataFacts } from "../../../src/handoff/mapping.js";
import type { PinnedModel } from "../../../src/handoff/pin-model.js";
import { handoffReadme } from "../../../src/handoff/readme.js";
import { accelerateConfig, pyLiteral, trlScript } from "../../../src/handoff/trl.js";
import { parseRecipe } from "../../../src/recipe/load.js";
import { itNeeds, type Need } from "../../helpers/needs.js";
import { tempDir } from "../../helpers/run-cli.js";
import { SHA } from "./cache-fixture.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const MODEL: PinnedModel = { kind: "hub", repo: "org/tiny", sha: SHA, dir: "/c", pinnedBy: "cache" };
const CHAT: DataFacts = { kind: "chat", promptCompletionChat: false, hasValidation: true, validationFrom: "split" };
const recipe = (extra = "") => parseRecipe(`model: {name: org/tiny, quantize: nf4}\ndata: {train: d.jsonl}\noutput: runs/x\ntrain:\n  max_steps: 30\n  early_stopping_patience: 2\n  packing: true\n${extra}`, "r.yaml", [], {});

/** python3 on PATH; never required (the generated script is checked by py_compile only where Python exists). */
function python3(): Need {
  const probe = spawnSync("python3", ["--version"], { encoding: "utf8" });
  return { missing: probe.status === 0 ? null : "python3 is not on PATH, so the generated train_trl.py cannot be compiled", required: false, requiredBecause: "" };
}

describe("axolotl.yaml", () => {
  it("parses as YAML with the mapped values and the dataset entries", () => {
    const plan = planHandoff({ recipe: recipe(), target: "axolotl", model: MODEL, data: CHAT });
    const text = axolotlYaml({ plan, kind: "chat", completionOnly: true, hasValidation: true, recipeFile: "r.yaml" });
    expect(text.split("\n")[0]).toBe("# Written by `finetune export-recipe r.yaml --to axolotl` for Axolotl 0.18.0.");
    const config = parse(text) as Record<string, unknown>;
    expect(config).toMatchObject({ base_model: "org/tiny", revision_of_model: SHA, adapter: "qlora", load_in_4bit: true, max_steps: 30, sample_packing: true, early_stopping_patience: 2, output_dir: "./x", val_set_size: 0 });
    const entry = { ds_type: "json", split: "train", type: "chat_template", chat_template: "tokenizer_default", field_messages: "messages", message_property_mappings: { role: "role", content: "content" }, roles_to_train: ["assistant"], train_on_eos: "turn" };
    expect(config.datasets).toEqual([{ path: "data/train.jsonl", ...entry }]);
    expect(config.test_datasets).toEqual([{ path: "data/validation.jsonl", ...entry }]);
  });

  it("points text and completion data at the fields the rows hold", () => {
    const plan = planHandoff({ recipe: recipe(), target: "axolotl", model: MODEL, data: { ...CHAT, kind: "text" } });
    const text = parse(axolotlYaml({ plan, kind: "text", completionOnly: true, hasValidation: false, recipeFile: "r.yaml" })) as Record<string, unknown>;
    expect(text.datasets).toEqual([{ path: "data/train.jsonl", ds_type: "json", split: "train", type: "completion", field: "text" }]);
    expect(text).not.toHaveProperty("test_datasets");
    const completion = parse(axolotlYaml({ plan, kind: "completion", completionOnly: true, hasValidation: false, recipeFile: "r.yaml" })) as Record<string, unknown>;
    expect(completion.datasets).toEqual([{ path: "data/train.jsonl", ds_type: "json", split: "train", type: "input_output" }]);
  });
});

describe("train_trl.py and accelerate_config.yaml", () => {
  const plan = planHandoff({ recipe: recipe(), target: "trl", model: MODEL, data: CHAT });
  const script = trlScript({ plan, hasValidation: true, recipeFile: "r.yaml" });

  it("writes Python literals for settings", () => {
    expect(pyLiteral({ a: [1, true, null, "x\"y"], b: 1e-8 })).toBe('{"a": [1, True, None, "x\\"y"], "b": 1e-8}');
  });

  it("pins the revision and carries the mapped settings", () => {
    expect(script).toContain(`REVISION = "${SHA}"`);
    expect(script).toContain('MODEL = "org/tiny"');
    expect(script).toContain('    "max_steps": 30,');
    expect(script).toContain('    "assistant_only_loss": True,');
    expect(script).toContain('    "packing": True,');
    expect(script).toContain('    "lora_alpha": 16,');
    expect(script).toContain("EARLY_STOPPING_PATIENCE = 2");
    expect(script).toContain('BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4"');
    expect(script).toContain('"attn_implementation": "flash_attention_2"');
    expect(script).toContain('{"train": data_path("data/train.jsonl"), "validation": data_path("data/validation.jsonl")}');
  });

  itNeeds(python3(), "compiles with python3 -m py_compile", () => {
    for (const [name, text] of [["with-validation.py", script], ["plain.py", trlScript({ plan: planHandoff({ recipe: parseRecipe("model: org/tiny\ndata: {train: d.jsonl}\noutput: o\ntrain: {epochs: 1}", "r.yaml", [], {}), target: "trl", model: { kind: "local", dir: "/m" }, data: { ...CHAT, hasValidation: false, validationFrom: "none" } }), hasValidation: false, recipeFile: "r.yaml" })]] as const) {
      const path = join(tmp.path, name);
      writeFileSync(path, text);
      const result = spawnSync("python3", ["-m", "py_compile", path], { encoding: "utf8" });
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
    }
  });

  it("writes an accelerate config for data parallel with ZeRO-3 commented", () => {
    const text = accelerateConfig();
    expect(parse(text)).toEqual({ compute_environment: "LOCAL_MACHINE", distributed_type: "MULTI_GPU", num_machines: 1, machine_rank: 0, num_processes: 2, gpu_ids: "all", mixed_precision: "no", rdzv_backend: "static", same_network: true, main_training_function: "main", use_cpu: false });
    expect(text).toContain("# distributed_type: DEEPSPEED");
    expect(text).toContain("#   zero_stage: 3");
  });
});

describe("README.md", () => {
  it("gives the commands, the mapping, the reported options and the way back", () => {
    const plan = planHandoff({ recipe: recipe(), target: "trl", model: MODEL, data: CHAT });
    const text = handoffReadme({ plan, target: "trl", recipeFile: "r.yaml", model: `org/tiny@${SHA}`, trainExamples: 9, validationExamples: 1, files: ["README.md", "train_trl.py"] });
    expect(text).toContain("Targets TRL 1.9.0 with PEFT >= 0.14.0.");
    expect(text).toContain("accelerate launch --config_file accelerate_config.yaml --num_processes <GPUs> train_trl.py");
    expect(text).toContain("| lora.r | 8 | r=8 |");
    expect(text).toContain(`| model.name | org/tiny | from_pretrained("org/tiny", revision="${SHA}") |`);
    expect(text).toContain(`finetune generate --model org/tiny@${SHA} --adapter ./x/adapter --chat --prompt "Hello"`);
    expect(text).toContain("finetune eval --model");
    for (const line of plan.reported) expect(text).toContain(`- ${line}`);
  });
});
