import type { Checkpoint } from "../io/checkpoint.js";
import { UserError } from "../errors.js";
import type { TensorEntry } from "../io/safetensors-header.js";
import type { FrozenMatrix, FrozenStore } from "./frozen.js";
import { transposeInto } from "./linear.js";

/**
 * Reads named tensors from a checkpoint, checking each shape against what config.json implies. With a store,
 * weight matrices go straight from the file's bytes into it, one tensor at a time.
 */
export class WeightReader {
  /** One buffer the raw bytes of every stored tensor are read into, grown to the largest: the garbage collector
   * would otherwise free each tensor's buffer late, and several could be alive at once. */
  private scratch = new Uint8Array(0);

  constructor(
    private readonly checkpoint: Checkpoint,
    /** The checkpoint folder, for messages. */
    readonly source: string,
    private readonly why: string,
    /** Where frozen matrices go; null keeps them as float32 tensors (quantize none). */
    readonly store: FrozenStore | null = null,
  ) {}

  has(name: string): boolean {
    return this.checkpoint.entry(name) !== undefined;
  }

  /** The stored dtype of a tensor (e.g. "BF16"), or undefined when it is absent. */
  dtype(name: string): string | undefined {
    return this.checkpoint.entry(name)?.dtype;
  }

  async read(name: string, shape: number[]): Promise<Float32Array> {
    this.check(name, shape);
    return this.checkpoint.readFloat32(name);
  }

  /**
   * W [rows, cols] into the store. `transpose` reads a tensor saved as [cols, rows] (GPT-2's Conv1D [in, out]);
   * it goes through one float32 copy of this tensor. Other dtypes than F32/F16/BF16 also go through float32.
   */
  async frozen(name: string, [rows, cols]: [number, number], options: { transpose?: boolean } = {}): Promise<FrozenMatrix> {
    const store = this.store;
    if (store === null) throw new Error("WeightReader.frozen needs a store (this is a bug)");
    const entry = this.check(name, options.transpose ? [cols, rows] : [rows, cols]);
    const { dtype } = entry;
    if (!options.transpose && (dtype === "F32" || dtype === "F16" || dtype === "BF16")) {
      const bytes = entry.end - entry.begin;
      if (this.scratch.length < bytes) this.scratch = new Uint8Array(bytes);
      return store.create(await this.checkpoint.readBytes(name, this.scratch), dtype, rows, cols);
    }
    const values = await this.checkpoint.readFloat32(name);
    let matrix = values;
    if (options.transpose) {
      matrix = new Float32Array(values.length);
      transposeInto(matrix, cols, 0, values, cols, rows);
    }
    return store.create(new Uint8Array(matrix.buffer, matrix.byteOffset, matrix.byteLength), "F32", rows, cols);
  }

  /** Drops the read buffer (up to the largest tensor's size): the model's closures keep the reader alive. */
  release(): void {
    this.scratch = new Uint8Array(0);
  }

  private check(name: string, shape: number[]): TensorEntry {
    const entry = this.checkpoint.entry(name);
    if (!entry) {
      throw new UserError(`${this.source}: tensor ${name} is missing (expected shape [${shape.join(", ")}] from ${this.why}).`);
    }
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      throw new UserError(
        `${this.source}: tensor ${name} has shape [${entry.shape.join(", ")}], expected [${shape.join(", ")}] from ${this.why}.`,
      );
    }
    return entry;
  }
}
