// The skip helper (test/helpers/needs.ts), .ci/summary.mjs and `build-native.mjs --can-build`: together they decide
// whether a missing resource skips a test (saying why) or fails it, and what .ci/run prints at the end.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decide, nativeAddon, onCi, SHARED, sharedFiles } from "../helpers/needs.js";
import { ROOT, tempDir } from "../helpers/run-cli.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe("needs", () => {
  it("finds ../shared next to the repo root, and no test or bench file names it by an absolute path", () => {
    expect(SHARED).toBe(resolve(ROOT, "..", "shared"));
    // A string literal starting with "/" that reaches a folder called shared (e.g. an absolute path to the models).
    const absolute = new RegExp(String.raw`["'\x60]/[^"'\x60\s]*/shared(/|["'\x60])`);
    const offenders = [...filesUnder(join(ROOT, "test")), ...filesUnder(join(ROOT, "bench"))]
      .filter((path) => /\.(ts|js|mjs)$/.test(path))
      .filter((path) => absolute.test(readFileSync(path, "utf8")))
      .map((path) => relative(ROOT, path));
    expect(offenders).toEqual([]);
  });

  it("skips with the reason where a shared file is missing, fails on CI, runs when it is there", () => {
    expect(onCi({ CI: "true" })).toBe(true);
    expect(onCi({ CI: "1" })).toBe(true);
    expect(onCi({ CI: "false" })).toBe(false);
    expect(onCi({})).toBe(false);
    const local = decide(sharedFiles(["models/absent-model/model.safetensors"], {}));
    expect(local).toEqual({ action: "skip", reason: expect.stringContaining("../shared/models/absent-model/model.safetensors is missing") });
    const ci = decide(sharedFiles(["models/absent-model/model.safetensors"], { CI: "true" }));
    expect(ci).toEqual({ action: "fail", reason: expect.stringContaining("CI always provides ../shared") });
    expect(decide(sharedFiles([], { CI: "true" }))).toEqual({ action: "run" });
  });

  it("a missing native addon skips, unless FINETUNE_EXPECT_NATIVE=1 says it must have built", () => {
    const absent = { addon: null, reason: "native addon not built" } as const;
    expect(decide(nativeAddon(absent, {}))).toEqual({ action: "skip", reason: expect.stringContaining("native addon not built") });
    expect(decide(nativeAddon(absent, { FINETUNE_EXPECT_NATIVE: "1" }))).toEqual({ action: "fail", reason: expect.stringContaining("FINETUNE_EXPECT_NATIVE=1") });
  });
});

describe("a vitest run through the helper, summarised by .ci/summary.mjs", () => {
  // A real vitest run of a small test file: skips print their reason and reach the summary; a skip without a reason
  // and, on CI, a missing shared file are failures; the last line is the plain count.
  const dir = join(tmp.path, "suite");
  mkdirSync(dir);
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  const needs = join(ROOT, "test", "helpers", "needs.ts");
  writeFileSync(
    join(dir, "sample.test.ts"),
    [
      `import { expect, it } from "vitest";`,
      `import { describeNeeds, itNeeds, sharedFiles } from ${JSON.stringify(needs)};`,
      `it("passes", () => expect(1 + 1).toBe(2));`,
      `itNeeds(sharedFiles(["models/absent-model/a.bin"]), "needs a missing shared file", () => expect(1).toBe(1));`,
      `describeNeeds(sharedFiles(["models/absent-model/b.bin"]), "a group needing a missing file", () => {`,
      `  it("first", () => expect(1).toBe(1));`,
      `  it("second", () => expect(1).toBe(1));`,
      `});`,
      `it.runIf(false)("skips without saying why", () => expect(1).toBe(1));`,
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "vitest.config.mjs"), `export default { test: { include: ["sample.test.ts"], pool: "forks" } };\n`);

  function runSample(ci: boolean): { lines: string[]; code: number | null; vitestOut: string } {
    const out = join(tmp.path, ci ? "ci" : "local");
    mkdirSync(out);
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: tmp.path, NO_COLOR: "1", FINETUNE_SKIP_LOG: join(out, "skips.jsonl") };
    if (ci) env.CI = "true";
    const vitest = spawnSync(
      process.execPath,
      [join(ROOT, "node_modules", "vitest", "vitest.mjs"), "run", "--root", dir, "--config", join(dir, "vitest.config.mjs"), "--reporter=default", "--reporter=json", `--outputFile.json=${join(out, "report.json")}`],
      { cwd: dir, env, encoding: "utf8", timeout: 120_000 },
    );
    const summary = spawnSync(process.execPath, [join(ROOT, ".ci", "summary.mjs"), join(out, "report.json"), join(out, "skips.jsonl")], { cwd: ROOT, encoding: "utf8" });
    return { lines: summary.stdout.trim().split("\n"), code: summary.status, vitestOut: vitest.stdout + vitest.stderr };
  }

  it("locally: each skip is printed by the test and listed with its reason; an unexplained skip counts as failed", () => {
    const { lines, code, vitestOut } = runSample(false);
    expect(vitestOut).toContain("skipped: needs a missing shared file: ../shared/models/absent-model/a.bin is missing");
    expect(lines.at(-1)).toBe("1 passed, 1 failed, 4 skipped");
    expect(lines[0]).toBe("4 skipped:");
    const body = lines.slice(1, -1).join("\n");
    expect(body).toMatch(/sample\.test\.ts > needs a missing shared file: \.\.\/shared\/models\/absent-model\/a\.bin is missing/);
    expect(body).toMatch(/a group needing a missing file first: \.\.\/shared\/models\/absent-model\/b\.bin is missing/);
    expect(body).toMatch(/a group needing a missing file second: \.\.\/shared\/models\/absent-model\/b\.bin is missing/);
    expect(body).toMatch(/skips without saying why: skipped without saying why \(counted as failed/);
    expect(code).toBe(1);
  });

  it("on CI (CI=true): a missing shared file fails, naming the file", () => {
    const { lines, code, vitestOut } = runSample(true);
    expect(vitestOut).toContain("../shared/models/absent-model/a.bin is missing");
    expect(vitestOut).toContain("CI always provides ../shared");
    // passes + (single test, group's one failing test) + the unexplained skip
    expect(lines.at(-1)).toBe("1 passed, 3 failed, 1 skipped");
    expect(code).toBe(1);
  });

  it("prints a failing count when there is no report at all", () => {
    const summary = spawnSync(process.execPath, [join(ROOT, ".ci", "summary.mjs"), join(tmp.path, "nowhere.json")], { cwd: ROOT, encoding: "utf8" });
    expect(summary.stdout.trim().split("\n").at(-1)).toBe("0 passed, 1 failed");
    expect(summary.status).toBe(1);
  });
});

describe("build-native.mjs --can-build (.ci/run requires the addon when it says yes)", () => {
  const script = join(ROOT, "scripts", "build-native.mjs");
  const run = (path: string, extra: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [script, "--can-build"], { env: { PATH: path, ...extra }, encoding: "utf8" });

  it("says no, and why, without a C++ compiler, and when FINETUNE_NATIVE=0", () => {
    const empty = join(tmp.path, "empty-bin");
    mkdirSync(empty);
    const none = run(empty);
    expect(none.status).toBe(1);
    expect(none.stdout).toContain("no C++ compiler (g++/c++/clang++)");
    const off = run(process.env.PATH ?? "", { FINETUNE_NATIVE: "0" });
    expect(off.status).toBe(1);
    expect(off.stdout).toContain("disabled by FINETUNE_NATIVE=0");
  });

  it("says yes with a compiler, make and python3 on PATH (node-gyp ships with node's npm)", () => {
    const bin = join(tmp.path, "tool-bin");
    mkdirSync(bin);
    for (const tool of ["g++", "make", "python3"]) {
      writeFileSync(join(bin, tool), "#!/bin/sh\nexit 0\n");
      chmodSync(join(bin, tool), 0o755);
    }
    const yes = run(bin);
    expect(yes.stdout).toBe("");
    expect(yes.status).toBe(0);
    const noMake = join(tmp.path, "no-make-bin");
    mkdirSync(noMake);
    writeFileSync(join(noMake, "clang++"), "#!/bin/sh\nexit 0\n");
    chmodSync(join(noMake, "clang++"), 0o755);
    expect(run(noMake).stdout).toContain("`make` not found");
  });
});
