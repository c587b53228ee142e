import ora, { type Ora } from "ora";

/**
 * A live line on stderr. Two of ora's defaults are turned off because they take Ctrl-C away from us:
 * - hideCursor loads signal-exit (through restore-cursor), whose handler re-raises SIGINT as soon as our listener
 *   is not the only one left, killing a training run before it can write its checkpoint;
 * - discardStdin puts the terminal in raw mode, so Ctrl-C is no longer a signal but a byte ora re-emits only to
 *   this process, and a second Ctrl-C cannot end a long synchronous step.
 * The cursor stays visible; typed keys echo. A real SIGINT reaches the process in every case.
 */
export function startSpinner(text: string, stream: NodeJS.WritableStream): Ora {
  return ora({ text, stream, hideCursor: false, discardStdin: false }).start();
}
