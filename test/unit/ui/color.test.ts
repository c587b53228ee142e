import { describe, expect, it } from "vitest";
import { colorLevel } from "../../../src/ui/color.js";
import { formatBytes, formatDuration } from "../../../src/ui/format.js";

describe("colorLevel", () => {
  it.each([
    [{ noColorFlag: true, env: { FORCE_COLOR: "1" }, isTTY: true }, 0],
    [{ noColorFlag: false, env: { NO_COLOR: "1", FORCE_COLOR: "1" }, isTTY: true }, 0],
    [{ noColorFlag: false, env: { NO_COLOR: "" }, isTTY: true }, 1],
    [{ noColorFlag: false, env: { FORCE_COLOR: "1" }, isTTY: false }, 1],
    [{ noColorFlag: false, env: { FORCE_COLOR: "3" }, isTTY: false }, 3],
    [{ noColorFlag: false, env: { FORCE_COLOR: "0" }, isTTY: true }, 0],
    [{ noColorFlag: false, env: {}, isTTY: false }, 0],
    [{ noColorFlag: false, env: { TERM: "dumb" }, isTTY: true }, 0],
    [{ noColorFlag: false, env: {}, isTTY: true }, 1],
  ] as const)("%o → %i", (input, level) => {
    expect(colorLevel({ ...input, env: { ...input.env } })).toBe(level);
  });
});

describe("format", () => {
  it("formats sizes and durations", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(999.4)).toBe("999 B");
    expect(formatBytes(1500)).toBe("1.5 kB");
    expect(formatBytes(270_000_000)).toBe("270 MB");
    expect(formatDuration(42)).toBe("42s");
    expect(formatDuration(125)).toBe("2m05s");
    expect(formatDuration(7300)).toBe("2h01m");
    expect(formatDuration(Number.NaN)).toBe("?");
  });
});

describe("Reporter.interactive", () => {
  it("uses a live line only on a TTY with a width, outside CI and without --json", async () => {
    const { Reporter } = await import("../../../src/ui/reporter.js");
    const { PassThrough } = await import("node:stream");
    const tty = (columns: number) => Object.assign(new PassThrough(), { isTTY: true, columns });
    expect(new Reporter({ json: false, verbose: false, noColor: false, stderr: tty(80), env: {} }).interactive).toBe(true);
    expect(new Reporter({ json: false, verbose: false, noColor: false, stderr: tty(0), env: {} }).interactive).toBe(false);
    expect(new Reporter({ json: false, verbose: false, noColor: false, stderr: tty(80), env: { CI: "true" } }).interactive).toBe(false);
    expect(new Reporter({ json: true, verbose: false, noColor: false, stderr: tty(80), env: {} }).interactive).toBe(false);
  });
});
