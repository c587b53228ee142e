import { Interrupted } from "./errors.js";

/** The signals that ask us to stop: Ctrl-C, a polite kill, and the terminal going away. */
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
type StopSignal = (typeof SIGNALS)[number];

const CAUSE: Record<StopSignal, string> = {
  SIGINT: "Ctrl-C (SIGINT)",
  SIGTERM: "SIGTERM",
  SIGHUP: "SIGHUP (the terminal was closed)",
};

/** The abort reason of a command's signal: why the run was asked to stop. */
export class StopRequested extends Interrupted {
  /** What asked: "Ctrl-C (SIGINT)", "a closed stdout (EPIPE)". */
  constructor(readonly by: string) {
    super(`interrupted by ${by}`);
  }
}

/** The cause of an aborted signal ("Ctrl-C (SIGINT)"), or "an interrupt" when it was aborted some other way. */
export function stopCause(signal: AbortSignal): string {
  return signal.reason instanceof StopRequested ? signal.reason.by : "an interrupt";
}

export interface InterruptHandlersParams {
  /** Aborted with a StopRequested naming the cause on the first signal. */
  controller: AbortController;
  /** A further signal arrived while uninterruptible work runs; `doing` says what (e.g. "writing the checkpoint"). */
  onSignalWhileBusy?: (signal: StopSignal, doing: string) => void;
}

/**
 * Signal handling for the whole process (signals are process-wide, so this is one object).
 *
 * 1st SIGINT/SIGTERM/SIGHUP: abort the command's signal; the command stops at its next safe point (training finishes
 * the step and writes a checkpoint). Our listener is removed only after every listener of this signal has run: a
 * library's signal-exit handler (ora's cursor restore loads one) re-raises the signal when it finds itself alone,
 * which killed Ctrl-C'd runs before their checkpoint.
 * 2nd signal: our listeners are gone by then, so the default action ends the process at once, even in the middle of
 * a long synchronous training step. The exception is uninterruptible work (`uninterruptible`): while a checkpoint is
 * being written our listeners are back, and a further signal only waits for the write, so the run is always left
 * with the new checkpoint or the previous one, never only a temp folder.
 */
export class InterruptHandlers {
  private readonly controller: AbortController;
  private readonly onBusy: ((signal: StopSignal, doing: string) => void) | undefined;
  /** What uninterruptible work is running, innermost last. */
  private readonly busy: string[] = [];
  private listening = false;
  private disposed = false;

  constructor(params: InterruptHandlersParams) {
    this.controller = params.controller;
    this.onBusy = params.onSignalWhileBusy;
  }

  private readonly listener = (signal: NodeJS.Signals): void => {
    const name = SIGNALS.find((s) => s === signal) ?? "SIGINT";
    if (!this.controller.signal.aborted) this.controller.abort(new StopRequested(CAUSE[name]));
    else if (this.busy.length > 0) this.onBusy?.(name, this.busy[this.busy.length - 1] ?? "");
    // After the other listeners of this emit (see above), but before any synchronous work resumes.
    queueMicrotask(() => this.settle());
  };

  install(): this {
    this.listen(true);
    return this;
  }

  /** Abort for a reason other than a signal (stdout closed): the same stop, and a later signal ends at once. */
  abort(reason: StopRequested): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
    this.settle();
  }

  /** Runs work that a second signal must not cut short; signals that arrive meanwhile wait for it. */
  async uninterruptible<T>(doing: string, work: () => Promise<T>): Promise<T> {
    this.busy.push(doing);
    this.settle();
    try {
      return await work();
    } finally {
      this.busy.splice(this.busy.lastIndexOf(doing), 1);
      this.settle();
    }
  }

  dispose(): void {
    this.disposed = true;
    this.listen(false);
    if (current === this) current = null;
  }

  /** Listen while nothing was asked yet or while busy; otherwise leave the signal its default action. */
  private settle(): void {
    if (this.disposed) return;
    this.listen(!this.controller.signal.aborted || this.busy.length > 0);
  }

  private listen(on: boolean): void {
    if (on === this.listening) return;
    this.listening = on;
    for (const signal of SIGNALS) {
      if (on) process.on(signal, this.listener);
      else process.off(signal, this.listener);
    }
  }
}

let current: InterruptHandlers | null = null;

/** Installs the process's handlers (src/index.ts does this once per run); returns them for disposal. */
export function installInterruptHandlers(params: InterruptHandlersParams): InterruptHandlers {
  current?.dispose();
  current = new InterruptHandlers(params).install();
  return current;
}

/** Work a second Ctrl-C must not cut in half (checkpoint writes). Without installed handlers it simply runs. */
export function uninterruptible<T>(doing: string, work: () => Promise<T>): Promise<T> {
  return current ? current.uninterruptible(doing, work) : work();
}

/** Ends the run like a signal would, for causes the process notices itself (its output was closed). */
export function interruptFor(cause: string): void {
  current?.abort(new StopRequested(cause));
}
