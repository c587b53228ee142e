import { spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/run-cli.js";

/**
 * The signal policy of src/interrupt.ts with real OS signals, in a child process: the first signal asks to stop,
 * signals during uninterruptible work wait for it, and after that a signal ends the process at once — even in the
 * middle of synchronous work, where no JavaScript handler could run.
 */
const script = `
import { installInterruptHandlers, uninterruptible } from ${JSON.stringify(pathToFileURL(join(ROOT, "dist", "interrupt.js")).href)};
// Signal handles do not keep Node alive; this does, until the end.
setInterval(() => undefined, 1000);
const controller = new AbortController();
installInterruptHandlers({ controller, onSignalWhileBusy: (signal, doing) => console.log("busy:" + signal + ":" + doing) });
const line = (text) => console.log(text);
const waitForLine = (text) => new Promise((resolve) => process.stdin.on("data", (d) => { if (String(d).includes(text)) resolve(); }));
line("ready");
await new Promise((resolve) => controller.signal.addEventListener("abort", resolve));
line("aborted:" + controller.signal.reason.message);
await uninterruptible("writing the checkpoint", async () => {
  line("writing");
  await waitForLine("finish");
});
line("written");
// Synchronous work: only the default action of a signal can stop this.
const started = Date.now();
while (Date.now() - started < 20000);
line("survived the busy loop");
`;

describe("interrupt handlers (real signals)", () => {
  it("1st signal aborts; signals during a checkpoint write wait for it; the next one ends a synchronous loop at once", async () => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    const waitFor = (text: string) =>
      new Promise<void>((resolve) => {
        const check = () => (out.includes(text) ? resolve() : setTimeout(check, 5));
        check();
      });
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    await waitFor("ready");
    child.kill("SIGHUP");
    await waitFor("writing");
    child.kill("SIGINT");
    await waitFor("busy:SIGINT:writing the checkpoint");
    child.kill("SIGTERM");
    await waitFor("busy:SIGTERM:writing the checkpoint");
    child.stdin.write("finish\n");
    await waitFor("written");
    child.kill("SIGINT");
    expect(await exit).toEqual({ code: null, signal: "SIGINT" });
    expect(out.split("\n").filter(Boolean)).toEqual([
      "ready",
      "aborted:interrupted by SIGHUP (the terminal was closed)",
      "writing",
      "busy:SIGINT:writing the checkpoint",
      "busy:SIGTERM:writing the checkpoint",
      "written",
    ]);
  });
});
