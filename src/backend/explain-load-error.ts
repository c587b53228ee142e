/** Says in a line why a backend package failed to load, with what to do about it. */
export function explainLoadError(pkg: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
  const firstLine = message.split("\n")[0] ?? message;
  if ((code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") && message.includes(pkg)) {
    return `package not installed (\`npm install ${pkg}\`; its install step downloads libtensorflow)`;
  }
  const cuda = /lib(cudart|cublas|cudnn|cufft|curand|cusolver|cusparse|nvinfer)[^\s:]*/.exec(message);
  if (cuda) return `CUDA library missing: ${cuda[0]} (install the CUDA/cuDNN versions tfjs-node-gpu needs; see README)`;
  if (/libtensorflow/.test(message)) return `libtensorflow missing or broken: ${firstLine} (reinstall ${pkg})`;
  return firstLine;
}
