// `npm run bench`: prints figures measured on this machine, in one run. No thresholds: tests never time things.
import { generationBench } from "./generation.js";
import { matmulBench } from "./matmul.js";
import { startupBench } from "./startup.js";
import { trainingBench } from "./training.js";

const print = (lines) => {
  for (const line of lines) console.log(line);
};
print(await startupBench());
const machine = await matmulBench();
print(machine.lines);
print(await generationBench(machine.results));
print(await trainingBench(machine.results));
