import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeTinyCheckpoint } from "../../helpers/tiny-checkpoint.js";

export const SHA = "0123456789abcdef0123456789abcdef01234567";

/** A tiny llama checkpoint cached as the hub cache lays it out: models--org--name/snapshots/<sha>, refs/<ref> → sha. */
export function cacheTinyModel(root: string, repo: string, options: { sha?: string; ref?: string | null } = {}): string {
  const sha = options.sha ?? SHA;
  const folder = join(root, `models--${repo.split("/").join("--")}`);
  const snapshot = join(folder, "snapshots", sha);
  writeTinyCheckpoint(snapshot, { kind: "llama", seed: 7 });
  if (options.ref !== null) {
    mkdirSync(join(folder, "refs"), { recursive: true });
    writeFileSync(join(folder, "refs", options.ref ?? "main"), sha);
  }
  return snapshot;
}
