import type { Checkpoint } from "../io/checkpoint.js";
import { UserError } from "../errors.js";

/** Reads named tensors from a checkpoint, checking each shape against what config.json implies. */
export class WeightReader {
  constructor(
    private readonly checkpoint: Checkpoint,
    private readonly source: string,
    private readonly why: string,
  ) {}

  has(name: string): boolean {
    return this.checkpoint.entry(name) !== undefined;
  }

  async read(name: string, shape: number[]): Promise<Float32Array> {
    const entry = this.checkpoint.entry(name);
    if (!entry) {
      throw new UserError(`${this.source}: tensor ${name} is missing (expected shape [${shape.join(", ")}] from ${this.why}).`);
    }
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      throw new UserError(
        `${this.source}: tensor ${name} has shape [${entry.shape.join(", ")}], expected [${shape.join(", ")}] from ${this.why}.`,
      );
    }
    return this.checkpoint.readFloat32(name);
  }
}
