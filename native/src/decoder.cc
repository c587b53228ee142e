// The lean decode loop: the same arithmetic as the model's tfjs forward pass (model/llama.ts), in the same order
// where it matters for the result (bias, then the adapter's update; the rotary tables rounded as rope.ts rounds
// them), on the weight store's kernels and a preallocated KV cache.
#include "decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include "gemm.h"
#include "gemv.h"
#include "weight_kernels.h"
#include "weight_ops.h"

namespace finetune {
namespace {

// Prompt tokens per pass: bounds the activations (a 256 × 8192 MLP buffer is 8 MB) while keeping the products
// large enough for the GEMM.
constexpr int64_t kChunk = 256;
// Weights per task when few rows stream through several matrices at once: small enough that the q/k/v or gate/up
// projections of a small model still spread over every core, large enough that a task outweighs taking it.
constexpr int64_t kTaskWeights = 32768;

// y [m, n] = a [m, k] · b [k, n], row-major.
void product(const float* a, const float* b, float* y, int64_t m, int64_t n, int64_t k) {
  GemmArgs g{};
  g.a = a;
  g.b = b;
  g.c = y;
  g.m = m;
  g.n = n;
  g.k = k;
  g.batch = 1;
  sgemm(g);
}

}  // namespace

int64_t projection_in(const DecoderShape& s, Projection p) {
  if (p == kO) return s.heads * s.head_dim;
  return p == kDown ? s.intermediate : s.hidden;
}

int64_t projection_out(const DecoderShape& s, Projection p) {
  switch (p) {
    case kQ: return s.heads * s.head_dim;
    case kK:
    case kV: return s.kv_heads * s.head_dim;
    case kO:
    case kDown: return s.hidden;
    default: return s.intermediate;
  }
}

Decoder::Decoder(const DecoderShape& shape, std::vector<float> inv_freq, DecoderWeights weights)
    : shape_(shape), inv_freq_(std::move(inv_freq)), weights_(std::move(weights)) {
  const int64_t per_layer = shape_.kv_heads * shape_.capacity * shape_.head_dim;
  keys_.assign(static_cast<size_t>(shape_.layers * per_layer), 0.0f);
  values_.assign(static_cast<size_t>(shape_.layers * per_layer), 0.0f);
}

void Decoder::step(const int32_t* ids, int64_t n, float* logits) {
  if (n < 1) throw std::invalid_argument("no tokens to decode");
  if (length_ + n > shape_.capacity) {
    throw std::length_error(std::to_string(length_) + " tokens in the cache plus " + std::to_string(n) +
                            " new ones exceed its capacity of " + std::to_string(shape_.capacity));
  }
  int64_t last = 0;
  for (int64_t start = 0; start < n; start += kChunk) {
    last = std::min(kChunk, n - start);
    run_chunk(ids + start, last);
  }
  // The final norm and the LM head, for the last token only.
  const int64_t H = shape_.hidden;
  rms_norm(x_.data() + (last - 1) * H, 1, weights_.final_norm, h_.data());
  weights_matmul(*weights_.head, h_.data(), 1, logits, false);
}

void Decoder::run_chunk(const int32_t* ids, int64_t n) {
  const DecoderShape& s = shape_;
  const int64_t H = s.hidden, I = s.intermediate, qOut = s.heads * s.head_dim, kvOut = s.kv_heads * s.head_dim;
  x_.resize(static_cast<size_t>(n * H));
  h_.resize(static_cast<size_t>(n * H));
  q_.resize(static_cast<size_t>(n * qOut));
  k_.resize(static_cast<size_t>(n * kvOut));
  v_.resize(static_cast<size_t>(n * kvOut));
  attended_.resize(static_cast<size_t>(n * qOut));
  gate_.resize(static_cast<size_t>(n * I));
  up_.resize(static_cast<size_t>(n * I));
  float* x = x_.data();
  float* h = h_.data();
  weights_rows(*weights_.embed, ids, n, x);
  // The rotary tables of these positions serve every layer.
  rope_tables(n);
  for (int64_t l = 0; l < s.layers; ++l) {
    rms_norm(x, n, weights_.input_norms[l], h);
    project(l, {{kQ, q_.data()}, {kK, k_.data()}, {kV, v_.data()}}, h, n);
    if (!weights_.q_norms[l].empty()) rms_norm(q_.data(), n * s.heads, weights_.q_norms[l], q_.data());
    if (!weights_.k_norms[l].empty()) rms_norm(k_.data(), n * s.kv_heads, weights_.k_norms[l], k_.data());
    if (weights_.rope_layers[l] != 0) {
      rope(q_.data(), n, s.heads, true);
      rope(k_.data(), n, s.kv_heads, false);
    } else {
      const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
      for (int64_t i = 0; i < n * qOut; ++i) q_[static_cast<size_t>(i)] *= scale;
    }
    store_kv(l, k_.data(), v_.data(), n);
    attend(l, q_.data(), n, attended_.data());
    project(l, {{kO, h}}, attended_.data(), n);
    for (int64_t i = 0; i < n * H; ++i) x[i] += h[i];
    rms_norm(x, n, weights_.post_norms[l], h);
    project(l, {{kGate, gate_.data()}, {kUp, up_.data()}}, h, n);
    float* gate = gate_.data();
    const float* up = up_.data();
    for (int64_t i = 0; i < n * I; ++i) {
      const float g = gate[i];
      gate[i] = g * (1.0f / (1.0f + std::exp(-g))) * up[i];
    }
    project(l, {{kDown, h}}, gate, n);
    for (int64_t i = 0; i < n * H; ++i) x[i] += h[i];
  }
  length_ += n;
}

void Decoder::project(int64_t layer, std::initializer_list<Output> outputs, const float* x, int64_t n) {
  const auto store = [&](Projection p) -> const WeightStore& {
    return *weights_.projections[static_cast<size_t>(layer * kProjections + p)];
  };
  if (n <= kStreamingRows) {
    // Decoding: every row of every matrix once, all of them in one parallel job. Each row's sum is computed whole
    // by one kernel call, as weights_matmul's streaming path does, so the split does not change a bit.
    tasks_.clear();
    for (const Output& o : outputs) {
      const WeightStore& w = store(o.p);
      const int64_t step = std::max<int64_t>(1, kTaskWeights / std::max<int64_t>(1, w.cols));
      for (int64_t r0 = 0; r0 < w.rows; r0 += step) tasks_.push_back({&w, o.y, r0, std::min(w.rows, r0 + step)});
    }
    parallel_for(static_cast<int64_t>(tasks_.size()), thread_count(), [&](int64_t i) {
      const Task& task = tasks_[static_cast<size_t>(i)];
      weight_kernels(task.w->format).rows_dot(*task.w, x, task.w->cols, n, task.y, task.w->rows, task.r0, task.r1);
    });
  } else {
    for (const Output& o : outputs) weights_matmul(store(o.p), x, n, o.y, false);
  }
  for (const Output& o : outputs) {
    const size_t slot = static_cast<size_t>(layer * kProjections + o.p);
    const int64_t out = store(o.p).rows, in = store(o.p).cols;
    const std::vector<float>& bias = weights_.biases[slot];
    if (!bias.empty()) {
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < out; ++j) o.y[i * out + j] += bias[static_cast<size_t>(j)];
      }
    }
    const LowRank& adapter = weights_.adapters[slot];
    if (adapter.rank > 0) add_low_rank(adapter, x, n, in, out, o.y);
  }
}

// y += ((x·A) · scale)·B. A few rows are cheaper in plain loops (they vectorize: every inner loop runs along a
// row) than as four pool jobs; more take the GEMM.
void Decoder::add_low_rank(const LowRank& adapter, const float* x, int64_t n, int64_t in, int64_t out, float* y) {
  const int64_t r = adapter.rank;
  low_rank_.assign(static_cast<size_t>(n * r), 0.0f);
  delta_.assign(static_cast<size_t>(n * out), 0.0f);
  float* t = low_rank_.data();
  float* delta = delta_.data();
  if (n <= kStreamingRows) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t c = 0; c < in; ++c) {
        const float xc = x[i * in + c];
        const float* a = adapter.a.data() + c * r;
        for (int64_t k = 0; k < r; ++k) t[i * r + k] += xc * a[k];
      }
      for (int64_t k = 0; k < r; ++k) {
        const float tk = t[i * r + k] * adapter.scale;
        const float* b = adapter.b.data() + k * out;
        for (int64_t j = 0; j < out; ++j) delta[i * out + j] += tk * b[j];
      }
    }
  } else {
    product(x, adapter.a.data(), t, n, r, in);
    for (int64_t k = 0; k < n * r; ++k) t[k] *= adapter.scale;
    product(t, adapter.b.data(), delta, n, out, r);
  }
  for (int64_t k = 0; k < n * out; ++k) y[k] += delta[k];
}

// Hugging Face's split-halves rotation at positions length_ …: x·cos + rotate_half(x)·sin, the tables rounded to
// float32 as rope.ts makes them (the queries' with attention's 1/√head_dim folded in).
void Decoder::rope_tables(int64_t n) {
  const int64_t half = shape_.head_dim / 2;
  const double query_scale = 1.0 / std::sqrt(static_cast<double>(shape_.head_dim));
  for (std::vector<float>* table : {&key_cos_, &key_sin_, &query_cos_, &query_sin_}) table->resize(static_cast<size_t>(n * half));
  for (int64_t t = 0; t < n; ++t) {
    const double position = static_cast<double>(length_ + t);
    for (int64_t i = 0; i < half; ++i) {
      const auto at = static_cast<size_t>(t * half + i);
      const float angle = static_cast<float>(position * static_cast<double>(inv_freq_[static_cast<size_t>(i)]));
      const double c = std::cos(static_cast<double>(angle)), sn = std::sin(static_cast<double>(angle));
      key_cos_[at] = static_cast<float>(c);
      key_sin_[at] = static_cast<float>(sn);
      query_cos_[at] = static_cast<float>(c * query_scale);
      query_sin_[at] = static_cast<float>(sn * query_scale);
    }
  }
}

void Decoder::rope(float* x, int64_t n, int64_t heads, bool query) const {
  const int64_t hd = shape_.head_dim, half = hd / 2;
  const float* cos = (query ? query_cos_ : key_cos_).data();
  const float* sin = (query ? query_sin_ : key_sin_).data();
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t head = 0; head < heads; ++head) {
      float* v = x + (t * heads + head) * hd;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        const float c = cos[t * half + i], sn = sin[t * half + i];
        const float first = a * c;
        const float second = b * c;
        v[i] = first + (-b) * sn;
        v[i + half] = second + a * sn;
      }
    }
  }
}

void Decoder::store_kv(int64_t layer, const float* k, const float* v, int64_t n) {
  const int64_t hd = shape_.head_dim, per_head = shape_.capacity * hd;
  float* keys = keys_.data() + layer * shape_.kv_heads * per_head;
  float* values = values_.data() + layer * shape_.kv_heads * per_head;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t g = 0; g < shape_.kv_heads; ++g) {
      const int64_t at = g * per_head + (length_ + t) * hd;
      std::memcpy(keys + at, k + (t * shape_.kv_heads + g) * hd, static_cast<size_t>(hd) * 4);
      std::memcpy(values + at, v + (t * shape_.kv_heads + g) * hd, static_cast<size_t>(hd) * 4);
    }
  }
}

// Softmax attention of each query token over the cached keys it may see (causal, within the window on the
// layers that have one). The query heads that share a kv head read its keys and values together, up to
// kStreamingRows at a time, through the GEMM's streaming kernels: one task per (token, kv head, block of heads).
void Decoder::attend(int64_t layer, const float* q, int64_t n, float* out) {
  const DecoderShape& s = shape_;
  const int64_t hd = s.head_dim, per_head = s.capacity * hd, group = s.heads / s.kv_heads;
  const int64_t blocks = (group + kStreamingRows - 1) / kStreamingRows;
  const float* keys = keys_.data() + layer * s.kv_heads * per_head;
  const float* values = values_.data() + layer * s.kv_heads * per_head;
  const bool windowed = s.window > 0 && layer >= s.window_from;
  const GemvKernels& kernels = active_gemv_kernels();
  parallel_for(n * s.kv_heads * blocks, thread_count(), [&](int64_t task) {
    thread_local std::vector<float> scores;
    const int64_t t = task / (s.kv_heads * blocks), g = task / blocks % s.kv_heads, block = task % blocks;
    const int64_t head = g * group + block * kStreamingRows;
    const int64_t rows = std::min(kStreamingRows, group - block * kStreamingRows);
    const int64_t position = length_ + t;
    const int64_t first = windowed ? std::max<int64_t>(0, position - s.window + 1) : 0;
    const int64_t count = position - first + 1;
    scores.resize(static_cast<size_t>(rows * count));
    const float* k = keys + g * per_head + first * hd;
    const float* v = values + g * per_head + first * hd;
    kernels.rows_dot(q + (t * s.heads + head) * hd, hd, rows, k, scores.data(), count, hd, 0, count);
    for (int64_t i = 0; i < rows; ++i) {
      float* row = scores.data() + i * count;
      float max = -INFINITY;
      for (int64_t j = 0; j < count; ++j) max = std::max(max, row[j]);
      float sum = 0.0f;
      for (int64_t j = 0; j < count; ++j) {
        row[j] = std::exp(row[j] - max);
        sum += row[j];
      }
      for (int64_t j = 0; j < count; ++j) row[j] /= sum;
    }
    kernels.rows_axpy(scores.data(), count, rows, v, out + (t * s.heads + head) * hd, hd, 0, count);
  });
}

void Decoder::rms_norm(const float* x, int64_t rows, const std::vector<float>& weight, float* y) const {
  const auto width = static_cast<int64_t>(weight.size());
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = x + i * width;
    float squares = 0.0f;
    for (int64_t j = 0; j < width; ++j) squares += row[j] * row[j];
    const float inverse = 1.0f / std::sqrt(squares / static_cast<float>(width) + shape_.eps);
    for (int64_t j = 0; j < width; ++j) y[i * width + j] = row[j] * inverse * weight[static_cast<size_t>(j)];
  }
}

}  // namespace finetune
