import type * as tfc from "@tensorflow/tfjs-core";
import { UserError } from "../errors.js";
import type { GemmaConfig } from "./config.js";
import { attentionMask, groupedAttention, splitHeads } from "./attention.js";
import { assembleModel, defaultPositions } from "./assemble.js";
import { runLayer, type LayerBody } from "./layer-runner.js";
import type { FrozenMatrix } from "./frozen.js";
import { adapterVariables, addAdapterDeltas, applyGroup, groupMember, type ProjectionGroup } from "./linear.js";
import { applyRope, geluNew, rmsNorm, rotateHalfMatrix } from "./ops.js";
import { ropeTables } from "./rope.js";
import type { CausalLM, ForwardInput, Projection, Tf } from "./types.js";
import { weightLoaders } from "./weight-loaders.js";
import type { WeightReader } from "./weight-reader.js";

interface Layer {
  local: boolean;
  /** Every norm weight is stored here as 1 + w (Gemma's RMSNorm scales by 1 + w, in float32). */
  inputNorm: tfc.Tensor1D;
  postAttentionNorm: tfc.Tensor1D;
  preFeedforwardNorm: tfc.Tensor1D;
  postFeedforwardNorm: tfc.Tensor1D;
  qNorm: tfc.Tensor1D | null;
  kNorm: tfc.Tensor1D | null;
  qkv: ProjectionGroup;
  o: ProjectionGroup;
  gateUp: ProjectionGroup;
  down: ProjectionGroup;
  projections: { q: Projection; k: Projection; v: Projection; o: Projection; gate: Projection; up: Projection; down: Projection };
}

/**
 * √hidden rounded as transformers rounds it: a float32 scalar cast to the embedding's dtype
 * (Gemma3TextScaledWordEmbedding: embed_scale.to(weight.dtype); Gemma2Model: torch.tensor(√hidden, dtype=hidden
 * dtype)), so a bf16 checkpoint of hidden 640 scales by 25.25, not 25.298.
 */
export function embeddingScale(hiddenSize: number, dtype: string | undefined): number {
  const scale = Math.fround(Math.sqrt(hiddenSize));
  const significantBits = dtype === "BF16" ? 8 : dtype === "F16" ? 11 : 0;
  if (significantBits === 0) return scale;
  const unit = 2 ** (Math.floor(Math.log2(scale)) - (significantBits - 1));
  const scaled = scale / unit;
  const floor = Math.floor(scaled);
  const diff = scaled - floor;
  const rounded = diff > 0.5 || (diff === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  return rounded * unit;
}

/**
 * Loads a Gemma 2 / Gemma 3 (text) checkpoint. Projections are the same ProjectionGroups as the Llama loader's
 * (fused or separate float32 tensors, or one FrozenMatrix each in a native store), named by their HF module paths
 * so LoRA adapters attach by PEFT's target names. Generation keeps the tfjs forward pass: the native lean decoder
 * only knows Llama-family math.
 */
export async function loadGemma(tf: Tf, config: GemmaConfig, reader: WeightReader, options: { fuse: boolean }): Promise<CausalLM> {
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: hd, vocabSize: V } = config;
  const qOut = numHeads * hd;
  const kvOut = numKvHeads * hd;
  const { tensors, matrices, keep, group: projectionGroup, table: matrixTable } = weightLoaders(tf, reader, options);
  /** A norm weight w as the float32 vector 1 + w (Gemma3RMSNorm: output * (1.0 + weight.float())). */
  const norm = async (name: string, size: number) => {
    const w = await reader.read(name, [size]);
    const onePlus = new Float32Array(size);
    for (let i = 0; i < size; i += 1) onePlus[i] = 1 + (w[i] ?? 0);
    return keep(tf.tensor1d(onePlus));
  };
  /** Projections sharing an input, as in llama.ts; Gemma has no projection biases. */
  const group = (modules: string[], outs: number[], inFeatures: number): Promise<ProjectionGroup> => projectionGroup(modules, outs, inFeatures, false);
  const table = (name: string): Promise<FrozenMatrix> => matrixTable(name, V, H);

  const base = modulePrefix(config, reader);
  const embedScale = embeddingScale(H, reader.dtype(`${base}embed_tokens.weight`));
  const embed = await table(`${base}embed_tokens.weight`);
  const layers: Layer[] = [];
  const projections = new Map<string, Projection>();
  for (let l = 0; l < config.numLayers; l += 1) {
    const p = `${base}layers.${l}`;
    const attn = (m: string) => `${p}.self_attn.${m}_proj`;
    const mlp = (m: string) => `${p}.mlp.${m}_proj`;
    const qkv = await group(["q", "k", "v"].map(attn), [qOut, kvOut, kvOut], H);
    const o = await group([attn("o")], [H], qOut);
    const gateUp = await group(["gate", "up"].map(mlp), [I, I], H);
    const down = await group([mlp("down")], [H], I);
    const layerProjections = {
      q: groupMember(tf, qkv, 0, attn("q")),
      k: groupMember(tf, qkv, 1, attn("k")),
      v: groupMember(tf, qkv, 2, attn("v")),
      o: groupMember(tf, o, 0, attn("o")),
      gate: groupMember(tf, gateUp, 0, mlp("gate")),
      up: groupMember(tf, gateUp, 1, mlp("up")),
      down: groupMember(tf, down, 0, mlp("down")),
    };
    for (const projection of Object.values(layerProjections)) projections.set(projection.name, projection);
    layers.push({
      local: config.localLayers[l] ?? false,
      inputNorm: await norm(`${p}.input_layernorm.weight`, H),
      postAttentionNorm: await norm(`${p}.post_attention_layernorm.weight`, H),
      preFeedforwardNorm: await norm(`${p}.pre_feedforward_layernorm.weight`, H),
      postFeedforwardNorm: await norm(`${p}.post_feedforward_layernorm.weight`, H),
      qNorm: config.qkNorm ? await norm(`${p}.self_attn.q_norm.weight`, hd) : null,
      kNorm: config.qkNorm ? await norm(`${p}.self_attn.k_norm.weight`, hd) : null,
      qkv,
      o,
      gateUp,
      down,
      projections: layerProjections,
    });
  }
  const finalNorm = await norm(`${base}norm.weight`, H);
  const lmHead = config.tieWordEmbeddings ? embed : await table(base === "language_model.model." ? "language_model.lm_head.weight" : "lm_head.weight");
  const eps = config.rmsNormEps;
  const queryScale = 1 / Math.sqrt(config.queryPreAttnScalar);
  // Gemma 2 (and a Gemma 3 whose bases agree): one set of RoPE tables serves every layer.
  const oneRope = config.localInvFreq.every((f, i) => f === config.globalInvFreq[i]);

  const hidden = (input: ForwardInput): tfc.Tensor3D => {
    const [B = 1, T = 1] = input.ids.shape;
    const past = input.cache?.length ?? 0;
    const positions = input.positions ?? defaultPositions(B, T, past);
    const result = tf.tidy(() => {
      const ropePositions = input.positions ? positions : positions.subarray(0, T);
      const ropeShape = [input.positions ? B : 1, 1, T, hd];
      /** [key cos, key sin, query cos, query sin] for one inverse-frequency set; queries carry the attention scale. */
      const ropeFor = (invFreq: Float32Array) => {
        const key = ropeTables(invFreq, ropePositions);
        const query = ropeTables(invFreq, ropePositions, queryScale);
        return [key.cos, key.sin, query.cos, query.sin].map((t) => tf.tensor(t, ropeShape));
      };
      const globalRope = ropeFor(config.globalInvFreq);
      const localRope = oneRope ? globalRope : ropeFor(config.localInvFreq);
      const rotation = tf.tensor2d(rotateHalfMatrix(hd), [hd, hd]);
      // Local layers: query i sees key j when i - j < sliding_window, as transformers' sliding_window_overlay
      // (masking_utils.py: `return kv_idx > q_idx - sliding_window`), which attentionMask implements.
      const maskFor = (slidingWindow: number | null) => attentionMask(tf, { batch: B, queries: T, past, slidingWindow, segments: input.segments });
      const fullMask = maskFor(null);
      const windowMask = maskFor(config.slidingWindow);
      const training = input.training ?? false;
      let x = tf.mul(embed.lookup(input.ids), embedScale) as tfc.Tensor2D;
      for (const [l, layer] of layers.entries()) {
        const pr = layer.projections;
        const mask = layer.local ? windowMask : fullMask;
        // Tensors the layer reads, passed explicitly so a checkpointed layer keeps them for its recompute.
        const constants = [rotation, ...(layer.local ? localRope : globalRope), ...(mask ? [mask] : [])];
        const body: LayerBody = (x, c) => {
          const [rot, cos, sin, queryCos, querySin, layerMask] = c as [tfc.Tensor2D, tfc.Tensor, tfc.Tensor, tfc.Tensor, tfc.Tensor, tfc.Tensor | undefined];
          const h = rmsNorm(tf, x, layer.inputNorm, eps, training) as tfc.Tensor2D;
          const [q, k, v] = addAdapterDeltas(tf, h, applyGroup(tf, layer.qkv, h), [pr.q, pr.k, pr.v], training);
          const heads = (t: tfc.Tensor2D, count: number) => splitHeads(tf, t, { batch: B, tokens: T, heads: count, headDim: hd });
          let q4 = heads(q as tfc.Tensor2D, numHeads);
          let k4 = heads(k as tfc.Tensor2D, numKvHeads);
          // Gemma 3: per-head RMSNorm of queries and keys, before RoPE.
          if (layer.qNorm) q4 = rmsNorm(tf, q4, layer.qNorm, eps, training) as tfc.Tensor4D;
          if (layer.kNorm) k4 = rmsNorm(tf, k4, layer.kNorm, eps, training) as tfc.Tensor4D;
          q4 = applyRope(tf, q4, queryCos, querySin, rot);
          k4 = applyRope(tf, k4, cos, sin, rot);
          let v4 = heads(v as tfc.Tensor2D, numKvHeads);
          if (input.cache) ({ k: k4, v: v4 } = input.cache.append(tf, l, k4, v4));
          const attended = groupedAttention(tf, q4, k4, v4, layerMask ?? null, config.attnSoftcap);
          const [o] = addAdapterDeltas(tf, attended, applyGroup(tf, layer.o, attended), [pr.o], training) as [tfc.Tensor2D];
          // The residual is added after the post-norms (sandwich norms).
          x = tf.add(x, rmsNorm(tf, o, layer.postAttentionNorm, eps, training));
          const h2 = rmsNorm(tf, x, layer.preFeedforwardNorm, eps, training) as tfc.Tensor2D;
          const [gate, up] = addAdapterDeltas(tf, h2, applyGroup(tf, layer.gateUp, h2), [pr.gate, pr.up], training);
          const act = tf.mul(geluNew(tf, gate as tfc.Tensor2D), up as tfc.Tensor2D) as tfc.Tensor2D;
          const [d] = addAdapterDeltas(tf, act, applyGroup(tf, layer.down, act), [pr.down], training) as [tfc.Tensor2D];
          return tf.add(x, rmsNorm(tf, d, layer.postFeedforwardNorm, eps, training)) as tfc.Tensor2D;
        };
        x = runLayer(tf, x, constants, body, { training, checkpoint: input.checkpoint ?? false, variables: adapterVariables(Object.values(pr)) });
      }
      let out = tf.reshape(x, [B, T, H]) as tfc.Tensor3D;
      if (input.lastOnly) out = tf.slice(out, [0, T - 1, 0], [B, 1, H]);
      return rmsNorm(tf, out, finalNorm, eps, training) as tfc.Tensor3D;
    });
    input.cache?.commit(past + T);
    return result;
  };

  return assembleModel({ tf, config, hidden, head: lmHead, projections, tensors, matrices, finalLogitSoftcap: config.finalSoftcap });
}

/**
 * Where the language model's modules live: "model." in a text checkpoint; in a gemma3 (image and text) one,
 * "language_model.model." as Google released them, or "model.language_model." as transformers 4.52 and later save
 * them. Projections are named with it, so adapters and merges address the checkpoint's own tensors.
 */
function modulePrefix(config: GemmaConfig, reader: WeightReader): string {
  if (!config.multimodal) return "model.";
  for (const prefix of ["language_model.model.", "model.language_model."]) if (reader.has(`${prefix}embed_tokens.weight`)) return prefix;
  throw new UserError(
    `${reader.source}: this gemma3 checkpoint has no language model weights (neither language_model.model.embed_tokens.weight nor model.language_model.embed_tokens.weight).`,
  );
}
