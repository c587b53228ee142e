import type * as tfc from "@tensorflow/tfjs-core";
import { UserError } from "../errors.js";
import { seededRandom } from "../model/sampling.js";
import type { CausalLM, Projection, Tf } from "../model/types.js";
import { LoraAdapter, loraScale } from "./adapter.js";

export interface LoraSpec {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: string[] | "all-linear";
  layers: number[] | "all";
  rslora: boolean;
  seed: number;
}

export interface AttachedLora {
  name: string;
  projection: Projection;
  adapter: LoraAdapter;
}

export interface LoraSet {
  spec: LoraSpec;
  adapters: AttachedLora[];
  /** The short module names adapted, sorted (PEFT's target_modules). */
  targetModules: string[];
  /** Sets the seed source for dropout masks: the trainer moves it on every micro-batch. */
  dropoutClock: { step: number; micro: number };
  variables(): tfc.Variable[];
  /** Removes the adapters from the model and frees them. */
  dispose(): void;
}

/** The layer index in a module path (model.layers.N… or transformer.h.N…). */
export function layerOf(name: string): number {
  const match = /\.(?:layers|h)\.(\d+)\./.exec(name);
  return match ? Number(match[1]) : -1;
}

export const shortName = (name: string): string => name.slice(name.lastIndexOf(".") + 1);

/** Attaches LoRA adapters to the target modules. A: uniform ±1/√in (seeded), B: zeros, so training starts at the base model. */
export function attachLora(tf: Tf, model: CausalLM, spec: LoraSpec): LoraSet {
  const projections = [...model.projections.values()];
  const available = [...new Set(projections.map((p) => shortName(p.name)))];
  const targets = spec.targetModules === "all-linear" ? available : spec.targetModules;
  const unknown = targets.filter((t) => !available.includes(t));
  if (unknown.length > 0) {
    throw new UserError(`lora.target_modules: ${unknown.join(", ")} ${unknown.length === 1 ? "is" : "are"} not in this ${model.config.modelType} model; available: ${available.join(", ")} (or "all-linear").`);
  }
  const numLayers = model.config.numLayers;
  if (spec.layers !== "all") {
    const bad = spec.layers.filter((l) => l >= numLayers);
    if (bad.length > 0) throw new UserError(`lora.layers: ${bad.join(", ")} out of range; this model has layers 0–${numLayers - 1}.`);
  }
  const layers = spec.layers;
  const chosen = projections.filter((p) => targets.includes(shortName(p.name)) && (layers === "all" || layers.includes(layerOf(p.name))));
  const scale = loraScale(spec.alpha, spec.r, spec.rslora);
  const clock = { step: 0, micro: 0 };
  const adapters = chosen.map((projection, index) => {
    const random = seededRandom(hashSeed(spec.seed, projection.name));
    const bound = 1 / Math.sqrt(projection.inFeatures);
    const aInit = Float32Array.from({ length: projection.inFeatures * spec.r }, () => (random() * 2 - 1) * bound);
    const a = variableFrom(tf, tf.tensor2d(aInit, [projection.inFeatures, spec.r]), true, `${projection.name}.lora_A`);
    const b = variableFrom(tf, tf.zeros([spec.r, projection.outFeatures]), true, `${projection.name}.lora_B`);
    const adapter = new LoraAdapter(tf, a, b, scale, spec.dropout, () => hashSeed(spec.seed, `${clock.step}:${clock.micro}:${index}`));
    projection.adapter = adapter;
    return { name: projection.name, projection, adapter };
  });
  return loraSet(spec, adapters, clock);
}

/** Wraps attached adapters as a LoraSet (used for trained and for loaded adapters). */
export function loraSet(spec: LoraSpec, adapters: AttachedLora[], clock = { step: 0, micro: 0 }): LoraSet {
  return {
    spec,
    adapters,
    targetModules: [...new Set(adapters.map((a) => shortName(a.name)))].sort(),
    dropoutClock: clock,
    variables: () => adapters.flatMap((a) => [a.adapter.a, a.adapter.b]),
    dispose: () => detachAdapters(adapters),
  };
}

/**
 * A variable holding `initial`, which is then freed: tf.variable keeps a reference to the initial tensor's data, so
 * an initial tensor left undisposed would hold its memory after the variable is gone.
 */
export function variableFrom(tf: Tf, initial: tfc.Tensor, trainable: boolean, name: string): tfc.Variable<tfc.Rank.R2> {
  const variable = tf.variable(initial, trainable, name) as tfc.Variable<tfc.Rank.R2>;
  initial.dispose();
  return variable;
}

/** Removes adapters from their projections and frees their tensors. */
export function detachAdapters(adapters: AttachedLora[]): void {
  for (const a of adapters) {
    a.projection.adapter = null;
    a.adapter.a.dispose();
    a.adapter.b.dispose();
  }
}

/** A 32-bit seed from a base seed and a label (FNV-1a), so each module and step gets its own stream. */
export function hashSeed(seed: number, label: string): number {
  let h = (2166136261 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < label.length; i += 1) h = Math.imul(h ^ label.charCodeAt(i), 16777619) >>> 0;
  return h;
}
