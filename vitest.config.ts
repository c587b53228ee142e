import { defineConfig } from "vitest/config";

// In CI a JSON report is written too, so .ci/run can print the plain "N passed, N failed" line.
const reportFile = process.env.FINETUNE_TEST_REPORT;

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Both cores: vitest's default leaves one idle on a 2-core machine, and the run then takes 8 to 9.5 minutes
    // instead of under 7.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: reportFile ? ["default", ["json", { outputFile: reportFile }]] : ["default"],
  },
});
