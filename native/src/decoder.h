// The lean decode loop (issue #13): a whole Llama-family forward pass for the tokens given — embedding, every
// layer, the final norm and the LM head for the last token — in one native call, against weight stores and a KV
// cache preallocated for the whole generation and written in place. No tensor is made per token.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "weight_store.h"

namespace finetune {

struct DecoderShape {
  int64_t layers = 0, hidden = 0, intermediate = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  // Positions the KV cache holds: the prompt plus every token that will be generated.
  int64_t capacity = 0;
  // Mistral-style sliding window (query i sees keys j with i - j < window) from layer window_from on; 0 = none.
  int64_t window = 0, window_from = 0;
  float eps = 0.0f;
};

// The projections of a layer, in this order everywhere (weights, biases, adapters).
enum Projection : int { kQ, kK, kV, kO, kGate, kUp, kDown, kProjections };
// A projection's W is [out, in].
int64_t projection_in(const DecoderShape& s, Projection p);
int64_t projection_out(const DecoderShape& s, Projection p);

// A LoRA update on one projection: y += ((x·A) · scale)·B with A [in, rank], B [rank, out] (the adapter's own
// orientation), the same three products the tfjs path runs.
struct LowRank {
  int64_t rank = 0;
  float scale = 0.0f;
  std::vector<float> a, b;
};

struct DecoderWeights {
  const WeightStore* embed = nullptr;
  const WeightStore* head = nullptr;
  std::vector<const WeightStore*> projections;  // layers · kProjections
  std::vector<float> final_norm;
  std::vector<std::vector<float>> input_norms, post_norms;  // one per layer
  // Qwen3's per-head RMSNorm weights on q and k ([head_dim], empty = none), one per layer.
  std::vector<std::vector<float>> q_norms, k_norms;
  // Per layer: 1 when it applies RoPE (SmolLM3's NoPE layers do not; they only scale the queries by 1/√head_dim).
  std::vector<uint8_t> rope_layers;
  std::vector<std::vector<float>> biases;                   // layers · kProjections, empty = none
  std::vector<LowRank> adapters;                            // layers · kProjections, rank 0 = none
};

class Decoder {
 public:
  // inv_freq: the rotary inverse frequencies (head_dim / 2), as the model computed them. Allocates the KV cache
  // (throws std::bad_alloc when it does not fit).
  Decoder(const DecoderShape& shape, std::vector<float> inv_freq, DecoderWeights weights);

  const DecoderShape& shape() const { return shape_; }
  DecoderWeights& weights() { return weights_; }
  // Tokens seen so far (the KV cache's length).
  int64_t length() const { return length_; }

  // Runs ids[0 : n] (n ≥ 1, every id in [0, vocab), length() + n ≤ capacity) at positions length() … and writes
  // the last token's logits [vocab]. Throws std::length_error past the capacity.
  void step(const int32_t* ids, int64_t n, float* logits);

 private:
  // Where one projection's output goes: y [n, out].
  struct Output {
    Projection p;
    float* y;
  };
  // Rows [r0, r1) of one matrix in a streamed product.
  struct Task {
    const WeightStore* w;
    float* y;
    int64_t r0, r1;
  };

  void run_chunk(const int32_t* ids, int64_t n);
  // Each y = x [n, in] · Wᵀ (+ bias) (+ the adapter's update), for projections that read the same x.
  void project(int64_t layer, std::initializer_list<Output> outputs, const float* x, int64_t n);
  void add_low_rank(const LowRank& adapter, const float* x, int64_t n, int64_t in, int64_t out, float* y);
  // cos and sin [n, head_dim / 2] of positions length() …, for keys and (times 1/√head_dim) for queries.
  void rope_tables(int64_t n);
  void rope(float* x, int64_t n, int64_t heads, bool query) const;
  void store_kv(int64_t layer, const float* k, const float* v, int64_t n);
  void attend(int64_t layer, const float* q, int64_t n, float* out);
  // y[i, :] = RMSNorm(x[i, :]) · weight for `rows` rows of weight.size() floats (y may be x).
  void rms_norm(const float* x, int64_t rows, const std::vector<float>& weight, float* y) const;

  DecoderShape shape_;
  std::vector<float> inv_freq_;
  DecoderWeights weights_;
  int64_t length_ = 0;
  std::vector<float> keys_, values_;  // per layer [kv_heads, capacity, head_dim]
  // Activations of one chunk of tokens, reused.
  std::vector<float> x_, h_, q_, k_, v_, attended_, gate_, up_, delta_, low_rank_;
  std::vector<Task> tasks_;
  std::vector<float> key_cos_, key_sin_, query_cos_, query_sin_;
};

}  // namespace finetune
