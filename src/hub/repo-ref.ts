import { UserError } from "../errors.js";

export type RepoType = "model" | "dataset";

/** A hub repository and the revision asked for (undefined: the default branch, "main"). */
export interface RepoRef {
  type: RepoType;
  name: string;
  revision: string | undefined;
}

// org/name or a bare legacy name; letters, digits, '-', '_', '.'; no '..' and no leading/trailing separators.
const NAME_PART = /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Parses `org/name[@revision]`, `datasets/org/name[@revision]` (or `--dataset`), and `--revision`.
 * A revision given both ways must agree.
 */
export function parseRepoRef(input: string, opts: { dataset?: boolean; revision?: string | undefined } = {}): RepoRef {
  let rest = input.trim();
  let type: RepoType = opts.dataset ? "dataset" : "model";
  if (rest.startsWith("datasets/")) {
    type = "dataset";
    rest = rest.slice("datasets/".length);
  } else if (rest.startsWith("models/")) {
    rest = rest.slice("models/".length);
  }
  let revision: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    revision = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (revision === "") throw new UserError(`"${input}": nothing after "@"; write org/name@revision (e.g. @main).`);
  }
  if (opts.revision !== undefined) {
    if (revision !== undefined && revision !== opts.revision) {
      throw new UserError(`"${input}" names revision "${revision}" but --revision says "${opts.revision}"; give one.`);
    }
    revision = opts.revision;
  }
  const parts = rest.split("/");
  if (parts.length > 2 || !parts.every((part) => NAME_PART.test(part))) {
    throw new UserError(
      `"${input}" is not a hub repo id: expected org/name (letters, digits, "-", "_", "."), e.g. HuggingFaceTB/SmolLM2-135M.`,
    );
  }
  if (revision !== undefined) assertRevision(revision);
  return { type, name: rest, revision };
}

function assertRevision(revision: string): void {
  if (revision.split("/").some((part) => part === "" || part === "." || part === "..") || /[\s\\:~^?*[]/.test(revision)) {
    throw new UserError(`"${revision}" is not a valid revision: use a branch, tag or 40-character commit sha.`);
  }
}

export function formatRepo(ref: Pick<RepoRef, "type" | "name">): string {
  return ref.type === "dataset" ? `datasets/${ref.name}` : ref.name;
}

export const COMMIT_SHA = /^[0-9a-f]{40}$/;
