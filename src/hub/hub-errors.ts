import { HubApiError, InvalidApiResponseFormatError } from "@huggingface/hub";
import { isKnownError, RuntimeFailure, UserError } from "../errors.js";
import type { HubHttp } from "./http.js";
import { maskUrl, redactSecrets } from "./redact.js";
import { formatRepo, type RepoRef } from "./repo-ref.js";

export interface HubErrorContext {
  ref: RepoRef;
  endpoint: string;
  http: HubHttp;
  hasToken: boolean;
  /** The file being fetched, when the failure is about one file. */
  path?: string;
}

/** The hub has no such repo, or will not show it to us (401/403/404): the id may be a mistyped local folder. */
export class RepoUnavailable extends UserError {}

/**
 * Turns a failed hub call into a message that says what happened and what to do next. Text quoted from the
 * server is redacted: a proxy may echo our Authorization header back in its error body.
 */
export function explainHubError(error: unknown, context: HubErrorContext): Error {
  if (isKnownError(error)) return error;
  const repo = formatRepo(context.ref);
  const endpoint = maskUrl(context.endpoint);
  const page = `${endpoint}/${repo}`;
  if (error instanceof HubApiError) {
    const code = context.http.errorCode(error.url);
    const status = error.statusCode;
    if (status === 401 || status === 403) {
      const gated = code === "GatedRepo" || status === 403;
      const tokenHint = context.hasToken
        ? "the token you gave does not grant access"
        : "no token is configured: set HF_TOKEN (or pass --token)";
      return new RepoUnavailable(
        `${repo}: access denied (HTTP ${status}${code ? `, ${code}` : ""}). The repo is ${gated ? "gated or private" : "private, gated or does not exist"}; ` +
          `${tokenHint}, and accept the licence on ${page} if it is gated.`,
      );
    }
    if (status === 404) {
      if (code === "RevisionNotFound" || (context.ref.revision && code !== "RepoNotFound" && code !== "EntryNotFound")) {
        return new UserError(
          `${repo}: revision "${context.ref.revision ?? "main"}" not found; check the branch, tag or commit on ${page}/tree/main.`,
        );
      }
      if (code === "EntryNotFound" && context.path) {
        return new UserError(`${repo}: file "${context.path}" not found at this revision.`);
      }
      return new RepoUnavailable(`${repo}: repository not found on ${endpoint}; check the spelling${context.ref.type === "model" ? " (or add --dataset for a dataset)" : ""}.`);
    }
    if (status >= 500 || status === 429) {
      return new RuntimeFailure(`${repo}: the hub answered HTTP ${status} repeatedly; try again later.`);
    }
    return new UserError(`${repo}: the hub refused the request (HTTP ${status}): ${quoted(error.message)}`);
  }
  if (error instanceof InvalidApiResponseFormatError || error instanceof SyntaxError) {
    return malformed(context.endpoint, quoted(error.message));
  }
  return error instanceof Error ? error : new Error(String(error));
}

export function malformed(endpoint: string, detail: string): UserError {
  return new UserError(
    `the server at ${maskUrl(endpoint)} did not answer like a Hugging Face hub (${detail}); check HF_ENDPOINT, or try again later.`,
  );
}

/** Server text fit to quote: its first line, secrets masked, at most 300 characters. */
function quoted(message: string): string {
  const line = redactSecrets(message.split("\n")[0] ?? message);
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}
