import { describe, expect, it } from "vitest";
import { buildProgram, parseAndRun, type Invocation } from "../../../src/cli.js";

async function parse(argv: string[]): Promise<Invocation> {
  let captured: Invocation | undefined;
  const program = buildProgram("1.2.3", async (invocation) => {
    captured = invocation;
  });
  program.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
  await parseAndRun(program, ["node", "finetune", ...argv]);
  if (!captured) throw new Error("no command ran");
  return captured;
}

describe("export-recipe argv → invocation", () => {
  it.each([
    [["export-recipe", "r.yaml", "--to", "axolotl", "--out", "h"], { command: "export-recipe", args: ["r.yaml"], options: { to: "axolotl", out: "h" } }],
    [["--json", "export-recipe", "r.yaml", "--to", "trl", "--out", "h", "--set", "lora.r=16", "--set", "train.lr=1e-4"], { command: "export-recipe", options: { to: "trl", out: "h", set: ["lora.r=16", "train.lr=1e-4"] }, globals: { json: true } }],
  ])("%j", async (argv, expected) => {
    expect(await parse(argv)).toMatchObject(expected);
  });

  it("refuses a missing or unknown --to and a missing --out, naming the choices", async () => {
    await expect(parse(["export-recipe", "r.yaml", "--out", "h"])).rejects.toThrow("required option '--to <trainer>' not specified");
    await expect(parse(["export-recipe", "r.yaml", "--to", "megatron", "--out", "h"])).rejects.toThrow("option '--to <trainer>' argument 'megatron' is invalid. Allowed choices are axolotl, trl.");
    await expect(parse(["export-recipe", "r.yaml", "--to", "trl"])).rejects.toThrow("required option '--out <dir>' not specified");
  });
});
