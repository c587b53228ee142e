/**
 * The three kinds of failure. Only src/index.ts turns them into exit codes:
 * UserError → 2 (the user can fix it; no stack trace), RuntimeFailure → 1 (the environment failed us),
 * Interrupted → 130, anything else → 1 with "this is a bug" and the stack.
 */
export class UserError extends Error {
  override readonly name = "UserError";
  readonly exitCode = 2;
}

export class RuntimeFailure extends Error {
  override readonly name = "RuntimeFailure";
  readonly exitCode = 1;
}

export class Interrupted extends Error {
  override readonly name = "Interrupted";
  readonly exitCode = 130;
}

export type KnownError = UserError | RuntimeFailure | Interrupted;

export function isKnownError(error: unknown): error is KnownError {
  return error instanceof UserError || error instanceof RuntimeFailure || error instanceof Interrupted;
}

/** A system error's code (ENOENT, ENOSPC, …), or undefined. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") {
    return error.code;
  }
  return undefined;
}
