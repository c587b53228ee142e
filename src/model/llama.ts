import type * as tfc from "@tensorflow/tfjs-core";
import type { LlamaConfig } from "./config.js";
import { attentionMask, groupedAttention, splitHeads } from "./attention.js";
import { assembleModel, defaultPositions } from "./assemble.js";
import { runLayer, type LayerBody } from "./layer-runner.js";
import { nativeDecoder, type DecoderLayer } from "../backend/native-decoder.js";
import type { FrozenMatrix } from "./frozen.js";
import { adapterVariables, addAdapterDeltas, applyGroup, groupMember, type ProjectionGroup } from "./linear.js";
import { applyRope, rmsNorm, rotateHalfMatrix, silu } from "./ops.js";
import { headRopeTables } from "./rope.js";
import type { CausalLM, ForwardInput, Projection, Tf } from "./types.js";
import { weightLoaders } from "./weight-loaders.js";
import type { WeightReader } from "./weight-reader.js";

interface Layer {
  inputNorm: tfc.Tensor1D;
  /** Qwen3's per-head norms on q and k ([headDim]), or null. */
  qNorm: tfc.Tensor1D | null;
  kNorm: tfc.Tensor1D | null;
  qkv: ProjectionGroup;
  o: ProjectionGroup;
  postNorm: tfc.Tensor1D;
  gateUp: ProjectionGroup;
  down: ProjectionGroup;
  /** Per group, the projections its outputs belong to: q, k, v (or Phi-3's one qkv_proj); o; gate, up (or gate_up_proj); down. */
  projections: { qkv: Projection[]; o: Projection; gateUp: Projection[]; down: Projection };
}

/**
 * Loads a Llama-family checkpoint (Llama, Mistral, Qwen2, Qwen3, SmolLM 1-3, TinyLlama): as fused, pre-transposed float32
 * tensors, or, when the reader has a store, every projection and the embedding into the store, one at a time.
 */
export async function loadLlama(tf: Tf, config: LlamaConfig, reader: WeightReader, options: { fuse: boolean }): Promise<CausalLM> {
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: hd, vocabSize: V } = config;
  const qOut = numHeads * hd;
  const kvOut = numKvHeads * hd;
  const { tensors, matrices, vector, group, table: matrixTable } = weightLoaders(tf, reader, options);
  /** A fused output [N, Σ sizes] (Phi-3) split into its parts; separate outputs pass through. */
  const unfuse = (parts: tfc.Tensor2D[], sizes: number[]): tfc.Tensor2D[] =>
    parts.length === 1 && sizes.length > 1 ? (tf.split(parts[0] as tfc.Tensor2D, sizes, 1) as tfc.Tensor2D[]) : parts;
  const table = (name: string): Promise<FrozenMatrix> => matrixTable(name, V, H);

  const embed = await table("model.embed_tokens.weight");
  const layers: Layer[] = [];
  const projections = new Map<string, Projection>();
  for (let l = 0; l < config.numLayers; l += 1) {
    const p = `model.layers.${l}`;
    const attn = (m: string) => `${p}.self_attn.${m}_proj`;
    const mlp = (m: string) => `${p}.mlp.${m}_proj`;
    // Phi-3 stores q/k/v and gate/up fused ([q | k | v], [gate | up]); its adapters target the fused modules.
    const qkvModules = config.fusedProjections ? [attn("qkv")] : ["q", "k", "v"].map(attn);
    const gateUpModules = config.fusedProjections ? [mlp("gate_up")] : ["gate", "up"].map(mlp);
    const qkv = await group(qkvModules, config.fusedProjections ? [qOut + 2 * kvOut] : [qOut, kvOut, kvOut], H, config.qkvBias);
    const o = await group([attn("o")], [H], qOut, config.oBias);
    const gateUp = await group(gateUpModules, config.fusedProjections ? [2 * I] : [I, I], H, config.mlpBias);
    const down = await group([mlp("down")], [H], I, config.mlpBias);
    const layerProjections = {
      qkv: qkvModules.map((name, i) => groupMember(tf, qkv, i, name)),
      o: groupMember(tf, o, 0, attn("o")),
      gateUp: gateUpModules.map((name, i) => groupMember(tf, gateUp, i, name)),
      down: groupMember(tf, down, 0, mlp("down")),
    };
    for (const projection of [...layerProjections.qkv, layerProjections.o, ...layerProjections.gateUp, layerProjections.down]) projections.set(projection.name, projection);
    layers.push({
      inputNorm: await vector(`${p}.input_layernorm.weight`, H),
      qNorm: config.qkNorm ? await vector(`${p}.self_attn.q_norm.weight`, hd) : null,
      kNorm: config.qkNorm ? await vector(`${p}.self_attn.k_norm.weight`, hd) : null,
      qkv,
      o,
      postNorm: await vector(`${p}.post_attention_layernorm.weight`, H),
      gateUp,
      down,
      projections: layerProjections,
    });
  }
  const norm = await vector("model.norm.weight", H);
  const lmHead = config.tieWordEmbeddings ? embed : await table("lm_head.weight");
  const hidden = (input: ForwardInput): tfc.Tensor3D => {
    const [B = 1, T = 1] = input.ids.shape;
    const past = input.cache?.length ?? 0;
    const positions = input.positions ?? defaultPositions(B, T, past);
    const result = tf.tidy(() => {
      // Rotary tables [B or 1, 1, T, hd] for keys, and for queries with the attention scale folded in.
      const ropePositions = input.positions ? positions : positions.subarray(0, T);
      const ropeShape = [input.positions ? B : 1, 1, T, hd];
      // LongRoPE: the long factors for every position once the sequence is longer than the original context
      // (transformers decides by the largest position id, as here).
      const long = config.ropeLong !== null && positions.some((position) => position >= (config.ropeLong?.fromLength ?? 0));
      const invFreq = long && config.ropeLong ? config.ropeLong.invFreq : config.ropeInvFreq;
      const tableOptions = { headDim: hd, attentionFactor: config.ropeAttentionFactor };
      const keyRope = headRopeTables(invFreq, ropePositions, tableOptions);
      const queryRope = headRopeTables(invFreq, ropePositions, { ...tableOptions, scale: 1 / Math.sqrt(hd) });
      const rope = [keyRope.cos, keyRope.sin, queryRope.cos, queryRope.sin].map((table) => tf.tensor(table, ropeShape));
      const rotation = tf.tensor2d(rotateHalfMatrix(hd, config.rotaryDim), [hd, hd]);
      const maskFor = (slidingWindow: number | null) => attentionMask(tf, { batch: B, queries: T, past, slidingWindow, segments: input.segments });
      const fullMask = maskFor(null);
      const windowMask = config.slidingWindow === null ? fullMask : maskFor(config.slidingWindow);
      const training = input.training ?? false;
      let x: tfc.Tensor2D = embed.lookup(input.ids);
      // Tensors every layer reads; passed explicitly so a checkpointed layer can keep them for its recompute.
      const separateWindow = windowMask !== null && windowMask !== fullMask;
      const constants = [...rope, rotation, ...(fullMask ? [fullMask] : []), ...(separateWindow ? [windowMask] : [])];
      for (const [l, layer] of layers.entries()) {
        const pr = layer.projections;
        const body: LayerBody = (x, c) => {
          const [cos, sin, queryCos, querySin, rotation] = c as [tfc.Tensor, tfc.Tensor, tfc.Tensor, tfc.Tensor, tfc.Tensor2D];
          const full = fullMask ? (c[5] ?? null) : null;
          const window = separateWindow ? (c[fullMask ? 6 : 5] ?? null) : full;
          const h = rmsNorm(tf, x, layer.inputNorm, config.rmsNormEps, training) as tfc.Tensor2D;
          const [q, k, v] = unfuse(addAdapterDeltas(tf, h, applyGroup(tf, layer.qkv, h), pr.qkv, training), [qOut, kvOut, kvOut]);
          // Per head: Qwen3's RMSNorm, then RoPE — or, on SmolLM3's NoPE layers, only the queries' 1/√hd (which
          // the query tables carry otherwise).
          const heads = (t: tfc.Tensor2D, count: number, headNorm: tfc.Tensor1D | null) => {
            const split = splitHeads(tf, t, { batch: B, tokens: T, heads: count, headDim: hd });
            return headNorm ? (rmsNorm(tf, split, headNorm, config.rmsNormEps, training) as tfc.Tensor4D) : split;
          };
          const rope = config.ropeLayers[l] ?? true;
          const q4 = rope ? applyRope(tf, heads(q as tfc.Tensor2D, numHeads, layer.qNorm), queryCos, querySin, rotation) : (tf.mul(heads(q as tfc.Tensor2D, numHeads, layer.qNorm), 1 / Math.sqrt(hd)) as tfc.Tensor4D);
          let k4 = rope ? applyRope(tf, heads(k as tfc.Tensor2D, numKvHeads, layer.kNorm), cos, sin, rotation) : heads(k as tfc.Tensor2D, numKvHeads, layer.kNorm);
          let v4 = heads(v as tfc.Tensor2D, numKvHeads, null);
          if (input.cache) ({ k: k4, v: v4 } = input.cache.append(tf, l, k4, v4));
          const attended = groupedAttention(tf, q4, k4, v4, l >= config.slidingWindowFromLayer ? window : full);
          const [o] = addAdapterDeltas(tf, attended as tfc.Tensor2D, applyGroup(tf, layer.o, attended as tfc.Tensor2D), [pr.o], training) as [tfc.Tensor2D];
          x = tf.add(x, o);
          const h2 = rmsNorm(tf, x, layer.postNorm, config.rmsNormEps, training) as tfc.Tensor2D;
          const [gate, up] = unfuse(addAdapterDeltas(tf, h2, applyGroup(tf, layer.gateUp, h2), pr.gateUp, training), [I, I]);
          const act = tf.mul(silu(tf, gate as tfc.Tensor2D), up as tfc.Tensor2D) as tfc.Tensor2D;
          const [d] = addAdapterDeltas(tf, act, applyGroup(tf, layer.down, act), [pr.down], training) as [tfc.Tensor2D];
          x = tf.add(x, d);
          return x;
        };
        x = runLayer(tf, x, constants, body, { training, checkpoint: input.checkpoint ?? false, variables: adapterVariables([...pr.qkv, pr.o, ...pr.gateUp, pr.down]) });
      }
      let out = tf.reshape(x, [B, T, H]) as tfc.Tensor3D;
      if (input.lastOnly) out = tf.slice(out, [0, T - 1, 0], [B, 1, H]);
      return rmsNorm(tf, out, norm, config.rmsNormEps, training) as tfc.Tensor3D;
    });
    input.cache?.commit(past + T);
    return result;
  };

  /**
   * With every matrix in the native store, generation runs the whole model natively (backend/native-decoder.ts).
   * It knows neither fused projections nor partial or LongRoPE rotation (Phi-3): those keep the tfjs path.
   */
  const leanDecoder = (capacity: number) => {
    if (config.fusedProjections || config.rotaryDim !== hd || config.ropeLong !== null || config.ropeAttentionFactor !== 1) return null;
    const decoderLayers = layers.map((layer): DecoderLayer | null => {
      const groups = [layer.qkv, layer.o, layer.gateUp, layer.down];
      if (groups.some((g) => g.kind !== "frozen")) return null;
      const pr = layer.projections;
      return {
        inputNorm: layer.inputNorm,
        postNorm: layer.postNorm,
        qNorm: layer.qNorm,
        kNorm: layer.kNorm,
        matrices: groups.flatMap((g) => (g.kind === "frozen" ? g.matrices : [])),
        biases: groups.flatMap((g) => g.biases),
        projections: [...pr.qkv, pr.o, ...pr.gateUp, pr.down],
      };
    });
    if (decoderLayers.some((layer) => layer === null)) return null;
    return nativeDecoder({ config, embed, head: lmHead, norm, layers: decoderLayers as DecoderLayer[] }, capacity);
  };

  return assembleModel({ tf, config, hidden, head: lmHead, projections, tensors, matrices, leanDecoder });
}
