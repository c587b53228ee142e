import { execFile } from "node:child_process";

/** GPU names as the NVIDIA driver reports them (`nvidia-smi -L`); empty when there is no driver. */
export function listNvidiaGpus(timeoutMs = 3000): Promise<string[]> {
  return new Promise((resolve) => {
    execFile("nvidia-smi", ["-L"], { timeout: timeoutMs }, (error, stdout) => {
      if (error) return resolve([]);
      resolve(stdout.split("\n").map((line) => line.trim()).filter((line) => line.startsWith("GPU ")));
    });
  });
}
