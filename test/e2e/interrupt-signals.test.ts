import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/run-cli.js";

/**
 * The signal policy of src/interrupt.ts with real OS signals, in a child process: the first signal asks to stop,
 * signals during uninterruptible work wait for it, and after that a signal ends the process at once — even in the
 * middle of synchronous work, where no JavaScript handler could run.
 */
const url = (path: string) => JSON.stringify(pathToFileURL(path).href);
// The signal-exit that ora's cursor restore loads (the cause of Ctrl-C killing training in a terminal).
const signalExit = createRequire(join(ROOT, "node_modules", "restore-cursor", "package.json")).resolve("signal-exit");

const script = (withSignalExit: boolean) => `
import { installInterruptHandlers, uninterruptible } from ${url(join(ROOT, "dist", "interrupt.js"))};
// Signal handles do not keep Node alive; this does, until the end.
setInterval(() => undefined, 1000);
const controller = new AbortController();
installInterruptHandlers({ controller, onSignalWhileBusy: (signal, doing) => console.log("busy:" + signal + ":" + doing) });
${withSignalExit ? `const { onExit } = await import(${url(signalExit)}); onExit(() => undefined);` : ""}
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
${withSignalExit ? "process.exit(0);" : ""}
// Synchronous work: only the default action of a signal can stop this.
const started = Date.now();
while (Date.now() - started < 20000);
line("survived the busy loop");
`;

function start(withSignalExit: boolean) {
  const child = spawn(process.execPath, ["--input-type=module", "-e", script(withSignalExit)], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const waitFor = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => (out.includes(text) ? resolve() : setTimeout(check, 5));
      check();
    });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, waitFor, exit, lines: () => out.split("\n").filter(Boolean) };
}

describe("interrupt handlers (real signals)", () => {
  it("1st signal aborts; signals during a checkpoint write wait for it; the next one ends a synchronous loop at once", async () => {
    const { child, waitFor, exit, lines } = start(false);
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
    expect(lines()).toEqual([
      "ready",
      "aborted:interrupted by SIGHUP (the terminal was closed)",
      "writing",
      "busy:SIGINT:writing the checkpoint",
      "busy:SIGTERM:writing the checkpoint",
      "written",
    ]);
  });

  it("a signal-exit handler (as ora's cursor restore registers) does not turn the first Ctrl-C into a kill", async () => {
    const { child, waitFor, exit, lines } = start(true);
    await waitFor("ready");
    child.kill("SIGINT");
    await waitFor("writing");
    child.kill("SIGINT");
    await waitFor("busy:SIGINT:writing the checkpoint");
    child.stdin.write("finish\n");
    expect(await exit).toEqual({ code: 0, signal: null });
    expect(lines()).toEqual(["ready", "aborted:interrupted by Ctrl-C (SIGINT)", "writing", "busy:SIGINT:writing the checkpoint", "written"]);
  });
});
