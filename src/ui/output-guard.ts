import { errnoCode } from "../errors.js";

export interface OutputGuardParams {
  streams: { name: string; stream: NodeJS.WritableStream }[];
  /** Called once, with the first stream that failed and the error code (EPIPE when a reader like `head` exits). */
  onClosed(name: string, code: string): void;
}

/**
 * Turns a closed stdout/stderr into a cause to stop instead of an uncaught 'error' event: `finetune --json train |
 * head -2` closes the pipe after two lines, and a closed terminal (SIGHUP) fails writes with EIO. Writes after that
 * are dropped by the destroyed stream; the command is told once so it can stop cleanly (training checkpoints).
 * Returns a function that removes the listeners.
 */
export function guardOutput(params: OutputGuardParams): () => void {
  let told = false;
  const listeners = params.streams.map(({ name, stream }) => {
    const listener = (error: unknown): void => {
      if (told) return;
      told = true;
      params.onClosed(name, errnoCode(error) ?? "error");
    };
    stream.on("error", listener);
    return () => stream.off("error", listener);
  });
  return () => {
    for (const off of listeners) off();
  };
}
