import { basename, isAbsolute } from "node:path";

/**
 * How a base model is named in files others see (model card, GGUF metadata, loss plot): a hub id as it is, a
 * local folder by its own name only — the user's absolute paths (home, project folders) never leak into them.
 */
export function modelName(nameOrPath: string): string {
  if (!isLocalPath(nameOrPath)) return nameOrPath;
  const trimmed = nameOrPath.replace(/[\\/]+$/, "");
  return basename(trimmed.replace(/\\/g, "/")) || "model";
}

/** A filesystem path rather than a hub id `org/name[@revision]`. */
export function isLocalPath(nameOrPath: string): boolean {
  return isAbsolute(nameOrPath) || /^([.~]|[A-Za-z]:[\\/])/.test(nameOrPath) || nameOrPath.includes("\\") || nameOrPath.split("/").length > 2;
}
