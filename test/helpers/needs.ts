/**
 * Tests that need something outside the repo (the models in ../shared, the native addon) go through here, so a
 * missing resource is never silent: locally the test is skipped and the reason printed (and appended to
 * $FINETUNE_SKIP_LOG, which .ci/run prints); where the resource must exist (on CI) the test fails instead.
 */
import { appendFileSync, existsSync } from "node:fs";
import { relative, resolve } from "node:path";
import { describe, expect, it, type TestFunction } from "vitest";
import type { NativeMatmul } from "../../src/backend/native-matmul.js";
import type { NativeWeightsLoad } from "../../src/backend/native-weights.js";
import { ROOT } from "./run-cli.js";

/** The repo's sibling `shared` folder (models too big for the repo), found from the repo root, never by an absolute path. */
export const SHARED = resolve(ROOT, "..", "shared");

/** What a test needs: `missing` says what is absent (null: all there); `required` turns a skip into a failure. */
export interface Need {
  missing: string | null;
  required: boolean;
  /** Why it must exist, for the failure message. */
  requiredBecause: string;
}

/** True on CI (CI=true, as GitHub Actions, GitLab and most others set it; also CI=1). */
export function onCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = (env.CI ?? "").trim().toLowerCase();
  return value !== "" && value !== "false" && value !== "0";
}

/** Files under ../shared (e.g. "models/stories260K/tokenizer.json"); on CI, where ../shared always exists, required. */
export function sharedFiles(paths: string[], env: NodeJS.ProcessEnv = process.env): Need {
  const absent = paths.filter((path) => !existsSync(resolve(SHARED, path)));
  const where = existsSync(SHARED) ? `not in ${SHARED}` : `${SHARED} does not exist (it sits next to the repo)`;
  return {
    missing: absent.length > 0 ? `../shared/${absent.join(", ../shared/")} ${absent.length === 1 ? "is" : "are"} missing: ${where}` : null,
    required: onCi(env),
    requiredBecause: "CI is set and CI always provides ../shared, so a missing shared model is a failure there",
  };
}

/** Several needs at once: the first missing one decides, with its own `required`. */
export function allNeeds(...needs: Need[]): Need {
  return needs.find((need) => need.missing !== null && need.required) ?? needs.find((need) => need.missing !== null) ?? { missing: null, required: false, requiredBecause: "" };
}

/** A path inside ../shared. */
export function sharedPath(path: string): string {
  return resolve(SHARED, path);
}

/** What the helper does with a need: run the test, skip it (saying why), or fail it (saying why). */
export function decide(need: Need): { action: "run" } | { action: "skip"; reason: string } | { action: "fail"; reason: string } {
  if (need.missing === null) return { action: "run" };
  if (need.required) return { action: "fail", reason: `${need.missing}; ${need.requiredBecause}` };
  return { action: "skip", reason: need.missing };
}

/** Prints why a test is skipped and appends it to $FINETUNE_SKIP_LOG (one JSON line) for .ci/run's summary. */
function announceSkip(name: string, reason: string): void {
  const file = relative(ROOT, callerFile() ?? "");
  console.log(`skipped: ${name}: ${reason}`);
  const log = process.env.FINETUNE_SKIP_LOG;
  if (log) appendFileSync(log, `${JSON.stringify({ file, name, reason })}\n`);
}

/** The test file that called into this helper (the first stack frame outside it). */
function callerFile(): string | null {
  const frames = (new Error().stack ?? "").split("\n").slice(1);
  for (const frame of frames) {
    const match = /(?:file:\/\/)?(\/[^():]+\.test\.ts)/.exec(frame);
    if (match?.[1]) return match[1];
  }
  return null;
}

/** `it` that runs only when `need` is met; otherwise skipped with its reason printed, or failing where required. */
export function itNeeds(need: Need, name: string, fn: TestFunction, timeout?: number): void {
  const decision = decide(need);
  if (decision.action === "fail") {
    it(name, () => expect.fail(decision.reason));
    return;
  }
  if (decision.action === "skip") announceSkip(name, decision.reason);
  it.runIf(decision.action === "run")(name, fn, timeout);
}

/** `describe` that runs only when `need` is met; otherwise its tests are skipped (reason printed) or one test fails. */
export function describeNeeds(need: Need, name: string, fn: () => void): void {
  const decision = decide(need);
  if (decision.action === "fail") {
    describe(name, () => it("has what it needs", () => expect.fail(decision.reason)));
    return;
  }
  if (decision.action === "skip") announceSkip(name, decision.reason);
  describe.runIf(decision.action === "run")(name, fn);
}

/** The native matmul addon (or its weight store); required when FINETUNE_EXPECT_NATIVE=1 (.ci/run sets it where a C++ toolchain is present). */
export function nativeAddon(native: NativeMatmul | NativeWeightsLoad, env: NodeJS.ProcessEnv = process.env): Need {
  return {
    missing: native.addon === null ? `the native matmul addon is not available (${native.reason})` : null,
    required: env.FINETUNE_EXPECT_NATIVE === "1",
    requiredBecause: "FINETUNE_EXPECT_NATIVE=1 says a C++ toolchain is present, so the addon must have built (see `npm install` output for the build error)",
  };
}
