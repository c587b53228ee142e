import { Chalk, type ChalkInstance } from "chalk";

/**
 * Colour decision, in order: --no-color, then NO_COLOR (any non-empty value), then FORCE_COLOR
 * ("0"/"false" off, "1"–"3" that level), then whether the stream is a TTY.
 */
export function colorLevel(params: { noColorFlag: boolean; env: NodeJS.ProcessEnv; isTTY: boolean }): 0 | 1 | 2 | 3 {
  if (params.noColorFlag) return 0;
  if (params.env.NO_COLOR !== undefined && params.env.NO_COLOR !== "") return 0;
  const force = params.env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === "0" || force === "false") return 0;
    if (force === "2") return 2;
    if (force === "3") return 3;
    return 1;
  }
  if (!params.isTTY || params.env.TERM === "dumb") return 0;
  return 1;
}

export function makeChalk(level: 0 | 1 | 2 | 3): ChalkInstance {
  return new Chalk({ level });
}
