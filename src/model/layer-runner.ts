import type * as tfc from "@tensorflow/tfjs-core";
import type { Tf } from "./types.js";

/** A decoder layer: its input and the per-call constants it reads (RoPE tables, masks) → its output. */
export type LayerBody = (x: tfc.Tensor2D, constants: tfc.Tensor[]) => tfc.Tensor2D;

export interface LayerRun {
  training: boolean;
  /** Recompute the layer in the backward pass instead of keeping its activations (gradient checkpointing). */
  checkpoint: boolean;
  /** Trainable tensors used inside the layer (its LoRA A/B), whose gradients the checkpointed layer returns. */
  variables: tfc.Variable[];
}

/**
 * Runs one decoder layer. Inference: inside its own tidy, so a layer's intermediates are freed before the next.
 * Training with checkpointing: the forward keeps only the layer's input (and its constants); the backward
 * recomputes the layer under a fresh tape and returns gradients for the input and the layer's LoRA variables.
 * Memory per layer drops from every activation to one [tokens, hidden] tensor, for one extra forward pass.
 */
export function runLayer(tf: Tf, x: tfc.Tensor2D, constants: tfc.Tensor[], body: LayerBody, run: LayerRun): tfc.Tensor2D {
  if (!run.training) return tf.tidy(() => body(x, constants));
  if (!run.checkpoint) return body(x, constants);
  const layer = tf.customGrad((...args: Array<tfc.Tensor | tfc.GradSaveFunc>) => {
    const input = args[0] as tfc.Tensor2D;
    // The gradient tape frees everything the forward pass made unless it is saved, constants included.
    (args[args.length - 1] as tfc.GradSaveFunc)([input, ...constants]);
    return {
      value: tf.tidy(() => body(input, constants)),
      gradFunc: (dy: tfc.Tensor, saved: tfc.Tensor[]) => recompute(tf, dy, saved, body, run.variables),
    };
  });
  return layer(x, ...run.variables) as tfc.Tensor2D;
}

interface EngineState {
  state: { activeTape: unknown };
}

/** The backward of a checkpointed layer: gradients of Σ(layer(x) · dy) for x and the variables. */
function recompute(tf: Tf, dy: tfc.Tensor, saved: tfc.Tensor[], body: LayerBody, variables: tfc.Variable[]): tfc.Tensor[] {
  const [input, ...constants] = saved;
  const x0 = tf.variable(input as tfc.Tensor2D, true);
  // tfjs's gradients() replaces and then clears the engine's active tape; keep the outer pass's tape intact.
  const engine = tf.engine() as unknown as EngineState;
  const outerTape = engine.state.activeTape;
  try {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(body(x0 as unknown as tfc.Tensor2D, constants), dy)), [x0, ...variables]);
    value.dispose();
    return [grads[x0.name] ?? tf.zerosLike(x0), ...variables.map((v) => grads[v.name] ?? tf.zerosLike(v))];
  } finally {
    engine.state.activeTape = outerTape;
    x0.dispose();
  }
}
