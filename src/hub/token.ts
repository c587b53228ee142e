import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { hfHome } from "./cache-paths.js";
import { registerSecret } from "./redact.js";

export type TokenSource = "--token" | "HF_TOKEN" | "HUGGING_FACE_HUB_TOKEN" | "token file" | "none";

export interface ResolvedToken {
  /** Sent as a bearer header and nowhere else: never printed, logged or written by us. */
  token: string | undefined;
  source: TokenSource;
}

/** Where Python's `hf auth login` stores the token. */
export function tokenFilePath(env: NodeJS.ProcessEnv): string {
  if (env.HF_TOKEN_PATH) return env.HF_TOKEN_PATH;
  return join(hfHome(env), "token");
}

// Hub tokens are `hf_` followed by letters and digits; the hub client rejects anything else.
const TOKEN_PATTERN = /^hf_[A-Za-z0-9]+$/;

/** --token, then HF_TOKEN, then HUGGING_FACE_HUB_TOKEN, then the saved token file. Validates the format. */
export function resolveToken(params: { flag?: string | undefined; env: NodeJS.ProcessEnv }): ResolvedToken {
  const candidates: Array<[TokenSource, string | undefined]> = [
    ["--token", params.flag],
    ["HF_TOKEN", params.env.HF_TOKEN],
    ["HUGGING_FACE_HUB_TOKEN", params.env.HUGGING_FACE_HUB_TOKEN],
  ];
  const file = tokenFilePath(params.env);
  for (const [source, value] of candidates) {
    if (value !== undefined && value.trim() !== "") return checked(value.trim(), source);
  }
  if (existsSync(file)) {
    const value = readFileSync(file, "utf8").trim();
    if (value !== "") return checked(value, "token file");
  }
  return { token: undefined, source: "none" };
}

function checked(token: string, source: TokenSource): ResolvedToken {
  if (!TOKEN_PATTERN.test(token)) {
    const where = source === "token file" ? "the saved token file" : source;
    throw new UserError(
      `the hub token from ${where} is not a valid access token: tokens start with "hf_" followed by letters and digits ` +
        `(the value is not shown). Create one at https://huggingface.co/settings/tokens and set HF_TOKEN.`,
    );
  }
  registerSecret(token);
  return { token, source };
}
