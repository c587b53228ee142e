import { UserError } from "../errors.js";
import { maskUrl } from "./redact.js";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

/** The hub to talk to: HF_ENDPOINT (as Python's huggingface_hub reads it) or huggingface.co. */
export function hubEndpoint(env: NodeJS.ProcessEnv): string {
  const raw = env.HF_ENDPOINT?.trim();
  if (!raw) return DEFAULT_ENDPOINT;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UserError(`HF_ENDPOINT=${JSON.stringify(maskUrl(raw))} is not a URL; use e.g. ${DEFAULT_ENDPOINT} or unset it.`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UserError(`HF_ENDPOINT=${JSON.stringify(maskUrl(raw))} must be an http(s) URL; use e.g. ${DEFAULT_ENDPOINT}.`);
  }
  return raw.replace(/\/+$/, "");
}

/** HF_HUB_OFFLINE=1 (or true/yes/on): resolve from the cache only, never touch the network. */
export function isOffline(env: NodeJS.ProcessEnv): boolean {
  const value = env.HF_HUB_OFFLINE?.trim().toLowerCase();
  return value === "1" || value === "true" || value === "yes" || value === "on";
}
