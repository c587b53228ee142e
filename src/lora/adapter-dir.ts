import { stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { UserError } from "../errors.js";

const CONFIG = "adapter_config.json";

/**
 * The folder an `--adapter` value names, checked before any model is loaded: a PEFT adapter folder, or a run or
 * checkpoint folder (its adapter/), or one of the adapter's own files. A missing path says it does not exist.
 */
export async function resolveAdapterDir(typed: string): Promise<string> {
  const path = resolve(typed);
  const info = await stat(path).catch(() => null);
  if (info === null) throw new UserError(`--adapter ${path} does not exist; give the adapter folder of a run (runs/<name>/adapter) or a PEFT adapter folder.`);
  const hasConfig = (dir: string) => stat(join(dir, CONFIG)).then((s) => s.isFile(), () => false);
  if (info.isFile()) {
    if ((basename(path) === CONFIG || basename(path) === "adapter_model.safetensors") && (await hasConfig(dirname(path)))) return dirname(path);
    throw new UserError(`--adapter ${path} is a file; give the folder that holds ${CONFIG} and adapter_model.safetensors.`);
  }
  if (await hasConfig(path)) return path;
  // A run directory or a checkpoint (checkpoints/step-N) keeps its adapter in adapter/.
  if (await hasConfig(join(path, "adapter"))) return join(path, "adapter");
  throw new UserError(`--adapter ${path} is not a PEFT adapter: it has no ${CONFIG} (nor has ${join(path, "adapter")}); give the adapter folder of a run.`);
}
