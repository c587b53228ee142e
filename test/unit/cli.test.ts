import { describe, expect, it } from "vitest";
import { buildProgram, parseAndRun, type Invocation } from "../../src/cli.js";
import { UserError } from "../../src/errors.js";

async function parse(argv: string[]): Promise<Invocation | "help"> {
  let captured: Invocation | undefined;
  const program = buildProgram("1.2.3", async (invocation) => {
    captured = invocation;
  });
  program.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
  const outcome = await parseAndRun(program, ["node", "finetune", ...argv]);
  if (outcome === "help") return "help";
  if (!captured) throw new Error("no command ran");
  return captured;
}

describe("argv → invocation", () => {
  it.each([
    [["pull", "org/name"], { command: "pull", args: ["org/name"], options: { dataset: false, force: false }, globals: { json: false, verbose: false, color: true } }],
    [
      ["--json", "pull", "org/name@dev", "--include", "*.json", "--include", "*.safetensors", "--cache-dir", "/c", "--force"],
      { command: "pull", args: ["org/name@dev"], options: { include: ["*.json", "*.safetensors"], cacheDir: "/c", force: true, dataset: false }, globals: { json: true } },
    ],
    [["pull", "d/x", "--dataset", "--revision", "v1", "--token", "hf_abc"], { options: { dataset: true, revision: "v1", token: "hf_abc" } }],
    [["doctor", "--backend", "wasm", "--no-color", "--verbose"], { command: "doctor", globals: { backend: "wasm", color: false, verbose: true } }],
    [["cache", "ls", "--cache-dir", "/c"], { command: "cache-ls", options: { cacheDir: "/c" } }],
    [["cache", "rm", "org/name"], { command: "cache-rm", args: ["org/name"] }],
    [["pull", "org/name", "--json"], { globals: { json: true } }],
    [["train", "r.yaml", "--quantize", "nf4"], { command: "train", args: ["r.yaml"], options: { quantize: "nf4" } }],
    [["generate", "--model", "m", "--prompt", "p", "--quantize", "int8"], { command: "generate", options: { model: "m", quantize: "int8" } }],
    [["eval", "--model", "m", "--text", "t", "--quantize", "bf16"], { command: "eval", options: { quantize: "bf16" } }],
  ])("%j", async (argv, expected) => {
    expect(await parse(argv)).toMatchObject(expected);
  });

  it("help and version exit cleanly", async () => {
    expect(await parse(["--help"])).toBe("help");
    expect(await parse(["--version"])).toBe("help");
    expect(await parse(["pull", "--help"])).toBe("help");
  });

  it.each([
    [["pull"], "missing required argument 'repo'"],
    [["pull", "a/b", "--bogus"], "unknown option '--bogus'"],
    [["--backend", "gpu", "doctor"], "Allowed choices are tensorflow, wasm, cpu"],
    [["frobnicate"], "unknown command 'frobnicate'"],
    [["train", "r.yaml", "--quantize", "q4"], "option '--quantize <format>' argument 'q4' is invalid. Allowed choices are none, bf16, int8, nf4."],
    [["eval", "--model", "m", "--text", "t", "--quantize", "fp8"], "argument 'fp8' is invalid. Allowed choices are none, bf16, int8, nf4."],
  ])("%j is a usage error", async (argv, message) => {
    await expect(parse(argv)).rejects.toThrow(UserError);
    await expect(parse(argv)).rejects.toThrow(message);
  });
});
