// `npm run bench`: prints figures measured on this machine, in one run. No thresholds: tests never time things.
import { generationBench } from "./generation.js";
import { startupBench } from "./startup.js";

const sections = [startupBench, generationBench];
for (const section of sections) {
  const lines = await section();
  for (const line of lines) console.log(line);
}
