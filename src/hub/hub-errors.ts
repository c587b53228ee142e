import { HubApiError, InvalidApiResponseFormatError } from "@huggingface/hub";
import { isKnownError, RuntimeFailure, UserError } from "../errors.js";
import type { HubHttp } from "./http.js";
import { formatRepo, type RepoRef } from "./repo-ref.js";

export interface HubErrorContext {
  ref: RepoRef;
  endpoint: string;
  http: HubHttp;
  hasToken: boolean;
  /** The file being fetched, when the failure is about one file. */
  path?: string;
}

/** Turns a failed hub call into a message that says what happened and what to do next. */
export function explainHubError(error: unknown, context: HubErrorContext): Error {
  if (isKnownError(error)) return error;
  const repo = formatRepo(context.ref);
  const page = `${context.endpoint}/${repo}`;
  if (error instanceof HubApiError) {
    const code = context.http.errorCode(error.url);
    const status = error.statusCode;
    if (status === 401 || status === 403) {
      const gated = code === "GatedRepo" || status === 403;
      const tokenHint = context.hasToken
        ? "the token you gave does not grant access"
        : "no token is configured: set HF_TOKEN (or pass --token)";
      return new UserError(
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
      return new UserError(`${repo}: repository not found on ${context.endpoint}; check the spelling${context.ref.type === "model" ? " (or add --dataset for a dataset)" : ""}.`);
    }
    if (status >= 500 || status === 429) {
      return new RuntimeFailure(`${repo}: the hub answered HTTP ${status} repeatedly; try again later.`);
    }
    return new UserError(`${repo}: the hub refused the request (HTTP ${status}): ${firstLine(error.message)}`);
  }
  if (error instanceof InvalidApiResponseFormatError || error instanceof SyntaxError) {
    return malformed(context.endpoint, firstLine(error.message));
  }
  return error instanceof Error ? error : new Error(String(error));
}

export function malformed(endpoint: string, detail: string): UserError {
  return new UserError(
    `the server at ${endpoint} did not answer like a Hugging Face hub (${detail}); check HF_ENDPOINT, or try again later.`,
  );
}

function firstLine(message: string): string {
  return message.split("\n")[0] ?? message;
}
