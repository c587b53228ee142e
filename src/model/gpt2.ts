import type * as tfc from "@tensorflow/tfjs-core";
import type { Gpt2Config } from "./config.js";
import { attentionMask, groupedAttention, splitHeads } from "./attention.js";
import { runLayer, type LayerBody } from "./layer-runner.js";
import { adapterVariables, addAdapterDeltas } from "./linear.js";
import { assembleModel, defaultPositions } from "./assemble.js";
import { tensorMatrix, type FrozenMatrix } from "./frozen.js";
import { geluNew, layerNorm } from "./ops.js";
import type { CausalLM, ForwardInput, Projection, ProjectionAdapter, Tf } from "./types.js";
import type { WeightReader } from "./weight-reader.js";

/** A Conv1D's weight: x·W for W stored [in, out] as a tensor, or x·Mᵀ for M [out, in] in a store. */
interface ConvWeight {
  apply(x: tfc.Tensor2D): tfc.Tensor2D;
  inFeatures: number;
  outFeatures: number;
  /** [out, in] (PEFT orientation), a new tensor. */
  weight(): tfc.Tensor2D;
}

interface Block {
  ln1: [tfc.Tensor1D, tfc.Tensor1D];
  attn: [ConvWeight, tfc.Tensor1D];
  proj: [ConvWeight, tfc.Tensor1D];
  ln2: [tfc.Tensor1D, tfc.Tensor1D];
  fc: [ConvWeight, tfc.Tensor1D];
  fcProj: [ConvWeight, tfc.Tensor1D];
  projections: { attn: Projection; proj: Projection; fc: Projection; fcProj: Projection };
}

/**
 * Loads GPT-2. Conv1D weights are stored [in, out], so as tensors they are used as they are; into a store they go
 * transposed to [out, in], one at a time.
 */
export async function loadGpt2(tf: Tf, config: Gpt2Config, reader: WeightReader): Promise<CausalLM> {
  const { hiddenSize: E, innerSize: F, numHeads, headDim: hd, vocabSize: V, maxPositions: P } = config;
  // Checkpoints are saved with or without the `transformer.` prefix.
  const prefix = reader.has("wte.weight") ? "" : "transformer.";
  const tensors: tfc.Tensor[] = [];
  const keep = <T extends tfc.Tensor>(t: T): T => {
    tensors.push(t);
    return t;
  };
  const vector = async (name: string, size: number) => keep(tf.tensor1d(await reader.read(`${prefix}${name}`, [size])));
  const matrices: FrozenMatrix[] = [];
  const matrix = async (name: string, rows: number, cols: number) => keep(tf.tensor2d(await reader.read(`${prefix}${name}`, [rows, cols]), [rows, cols]));
  const frozen = async (name: string, rows: number, cols: number, transpose: boolean) => {
    const m = await reader.frozen(`${prefix}${name}`, [rows, cols], { transpose });
    matrices.push(m);
    return m;
  };
  const convWeight = async (name: string, rows: number, cols: number): Promise<ConvWeight> => {
    if (reader.store) {
      const m = await frozen(name, cols, rows, true);
      return { apply: (x) => m.apply(x), inFeatures: rows, outFeatures: cols, weight: () => m.dense() };
    }
    const w = await matrix(name, rows, cols);
    return { apply: (x) => tf.matMul(x, w), inFeatures: rows, outFeatures: cols, weight: () => tf.transpose(w) };
  };
  const conv = async (name: string, rows: number, cols: number): Promise<[ConvWeight, tfc.Tensor1D]> => [
    await convWeight(`${name}.weight`, rows, cols),
    await vector(`${name}.bias`, cols),
  ];
  const projection = (name: string, w: ConvWeight): Projection => ({
    // PEFT names GPT-2 modules under `transformer.` whatever the file's prefix.
    name: `transformer.${name}`,
    inFeatures: w.inFeatures,
    outFeatures: w.outFeatures,
    adapter: null as ProjectionAdapter | null,
    weight: () => w.weight(),
  });

  const wte = reader.store ? await frozen("wte.weight", V, E, false) : tensorMatrix(tf, await matrix("wte.weight", V, E));
  const wpe = await matrix("wpe.weight", P, E);
  const blocks: Block[] = [];
  const projections = new Map<string, Projection>();
  for (let l = 0; l < config.numLayers; l += 1) {
    const p = `h.${l}`;
    const attn = await conv(`${p}.attn.c_attn`, E, 3 * E);
    const proj = await conv(`${p}.attn.c_proj`, E, E);
    const fc = await conv(`${p}.mlp.c_fc`, E, F);
    const fcProj = await conv(`${p}.mlp.c_proj`, F, E);
    const blockProjections = {
      attn: projection(`${p}.attn.c_attn`, attn[0]),
      proj: projection(`${p}.attn.c_proj`, proj[0]),
      fc: projection(`${p}.mlp.c_fc`, fc[0]),
      fcProj: projection(`${p}.mlp.c_proj`, fcProj[0]),
    };
    for (const pr of Object.values(blockProjections)) projections.set(pr.name, pr);
    blocks.push({
      ln1: [await vector(`${p}.ln_1.weight`, E), await vector(`${p}.ln_1.bias`, E)],
      attn,
      proj,
      ln2: [await vector(`${p}.ln_2.weight`, E), await vector(`${p}.ln_2.bias`, E)],
      fc,
      fcProj,
      projections: blockProjections,
    });
  }
  const lnF: [tfc.Tensor1D, tfc.Tensor1D] = [await vector("ln_f.weight", E), await vector("ln_f.bias", E)];
  const eps = config.layerNormEps;
  const scale = 1 / Math.sqrt(hd);

  const dense = (x: tfc.Tensor2D, [w, b]: [ConvWeight, tfc.Tensor1D], pr: Projection, training: boolean): tfc.Tensor2D => {
    const [out] = addAdapterDeltas(tf, x, [tf.add(w.apply(x), b)], [pr], training);
    return out as tfc.Tensor2D;
  };

  const hidden = (input: ForwardInput): tfc.Tensor3D => {
    const [B = 1, T = 1] = input.ids.shape;
    const past = input.cache?.length ?? 0;
    const positions = input.positions ?? defaultPositions(B, T, past);
    const result = tf.tidy(() => {
      const training = input.training ?? false;
      const mask = attentionMask(tf, { batch: B, queries: T, past, slidingWindow: null, segments: input.segments });
      const pos = tf.tensor2d(positions, [B, T], "int32");
      let x = tf.add(wte.lookup(input.ids), tf.reshape(tf.gather(wpe, pos), [B * T, E])) as tfc.Tensor2D;
      const constants = mask ? [mask] : [];
      for (const [l, block] of blocks.entries()) {
        const body: LayerBody = (x, c) => {
          const h = layerNorm(tf, x, block.ln1[0], block.ln1[1], eps) as tfc.Tensor2D;
          const [q, k, v] = tf.split(dense(h, block.attn, block.projections.attn, training), 3, 1) as tfc.Tensor2D[];
          const heads = (t: tfc.Tensor2D) => splitHeads(tf, t, { batch: B, tokens: T, heads: numHeads, headDim: hd });
          const q4 = heads(tf.mul(q as tfc.Tensor2D, scale));
          let k4 = heads(k as tfc.Tensor2D);
          let v4 = heads(v as tfc.Tensor2D);
          if (input.cache) ({ k: k4, v: v4 } = input.cache.append(tf, l, k4, v4));
          const attended = groupedAttention(tf, q4, k4, v4, c[0] ?? null);
          const x1 = tf.add(x, dense(attended, block.proj, block.projections.proj, training));
          const h2 = layerNorm(tf, x1, block.ln2[0], block.ln2[1], eps) as tfc.Tensor2D;
          const inner = geluNew(tf, dense(h2, block.fc, block.projections.fc, training)) as tfc.Tensor2D;
          return tf.add(x1, dense(inner, block.fcProj, block.projections.fcProj, training));
        };
        x = runLayer(tf, x, constants, body, { training, checkpoint: input.checkpoint ?? false, variables: adapterVariables(Object.values(block.projections)) });
      }
      let out = tf.reshape(x, [B, T, E]) as tfc.Tensor3D;
      if (input.lastOnly) out = tf.slice(out, [0, T - 1, 0], [B, 1, E]);
      return layerNorm(tf, out, lnF[0], lnF[1], eps) as tfc.Tensor3D;
    });
    input.cache?.commit(past + T);
    return result;
  };

  return assembleModel({ tf, config, hidden, head: wte, projections, tensors, matrices });
}
