// N-API surface of the lean decoder (decoder.h): decoderCreate / Adapter / Step / Free. A decoder reads weight
// stores made by weightsCreate: it holds references to their handles, so they are not collected while it lives,
// and checks before every step that none was freed. Every shape is checked here, before any native work.
#include "decoder_addon.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "decoder.h"
#include "napi_call.h"

namespace finetune {
namespace {

constexpr napi_type_tag kDecoderTag = {0x3c9e71d04b82a5f6ULL, 0x5d0a8e63c1f7b294ULL};

// The shape array's fields, in order.
enum ShapeField { kLayers, kHidden, kIntermediate, kHeads, kKvHeads, kHeadDim, kVocab, kCapacity, kWindow, kWindowFrom, kShapeFields };
// Vectors per layer: the two norms, the q and k head norms (null = none), then a bias per projection (null = none).
constexpr int64_t kLayerVectors = 4 + kProjections;

struct DecoderHandle {
  std::unique_ptr<Decoder> decoder;
  std::vector<Handle*> stores;  // every store the decoder reads, checked before each step
  std::vector<napi_ref> refs;   // keep the stores' handles alive while the decoder is
  int64_t kv_bytes = 0;
};

void release(napi_env env, DecoderHandle* handle) {
  for (napi_ref ref : handle->refs) napi_delete_reference(env, ref);
  handle->refs.clear();
  handle->stores.clear();
  if (handle->decoder) {
    int64_t ignored;
    napi_adjust_external_memory(env, -handle->kv_bytes, &ignored);
    handle->decoder.reset();
  }
}

void finalize(napi_env env, void* data, void*) {
  auto* handle = static_cast<DecoderHandle*>(data);
  release(env, handle);
  delete handle;
}

std::string projection_name(int64_t layer, int p) {
  static const char* const names[] = {"q", "k", "v", "o", "gate", "up", "down"};
  return "layer " + std::to_string(layer) + " " + names[p];
}

bool array_length(Call& call, napi_value value, const char* what, uint64_t expected) {
  bool is_array = false;
  uint32_t length = 0;
  if (napi_is_array(call.env(), value, &is_array) != napi_ok || !is_array) return call.type_error(std::string(what) + " must be an array");
  napi_get_array_length(call.env(), value, &length);
  if (length != expected) {
    return call.range_error(std::string(what) + " has " + std::to_string(length) + " entries, expected " + std::to_string(expected));
  }
  return true;
}

// A Float32Array of `size` floats copied out, or (allow_null) an empty vector for null.
bool vector_at(Call& call, napi_value array, uint32_t index, const std::string& what, uint64_t size, bool allow_null,
               std::vector<float>* out) {
  napi_value value;
  napi_get_element(call.env(), array, index, &value);
  napi_valuetype type;
  napi_typeof(call.env(), value, &type);
  if (type == napi_null && allow_null) return true;
  float* data = nullptr;
  uint64_t length = 0;
  if (!call.typed_value(value, what, napi_float32_array, allow_null ? "Float32Array or null" : "Float32Array", &data, &length)) return false;
  if (length != size) return call.range_error(what + " has " + std::to_string(length) + " floats, expected " + std::to_string(size));
  out->assign(data, data + length);
  return true;
}

// The store at array[index], which must be [rows, cols]; its handle is referenced by `owner`.
bool store_at(Call& call, napi_value array, uint32_t index, const std::string& what, int64_t rows, int64_t cols,
              DecoderHandle* owner, const WeightStore** out) {
  napi_value value;
  napi_get_element(call.env(), array, index, &value);
  Handle* handle = nullptr;
  if (!call.store_value(value, what, &handle, out)) return false;
  if ((*out)->rows != rows || (*out)->cols != cols) {
    return call.range_error(what + " is " + std::to_string((*out)->rows) + "×" + std::to_string((*out)->cols) + ", expected " +
                            std::to_string(rows) + "×" + std::to_string(cols));
  }
  napi_ref ref;
  napi_create_reference(call.env(), value, 1, &ref);
  owner->refs.push_back(ref);
  owner->stores.push_back(handle);
  return true;
}

bool decoder_arg(Call& call, size_t index, DecoderHandle** out) {
  bool tagged = false;
  napi_valuetype type;
  void* wrapped = nullptr;
  if (napi_typeof(call.env(), call.arg(index), &type) != napi_ok || type != napi_object ||
      napi_check_object_type_tag(call.env(), call.arg(index), &kDecoderTag, &tagged) != napi_ok || !tagged ||
      napi_unwrap(call.env(), call.arg(index), &wrapped) != napi_ok || wrapped == nullptr) {
    return call.type_error("decoder must be made by decoderCreate");
  }
  *out = static_cast<DecoderHandle*>(wrapped);
  if (!(*out)->decoder) return call.error("the decoder was freed (decoderFree) and cannot be used");
  return true;
}

bool read_shape(Call& call, DecoderShape* s) {
  int32_t* fields = nullptr;
  uint64_t count = 0;
  if (!call.typed(0, "shape", napi_int32_array, "Int32Array", &fields, &count)) return false;
  if (count != kShapeFields) return call.range_error("shape has " + std::to_string(count) + " entries, expected " + std::to_string(kShapeFields));
  for (int f = 0; f < kShapeFields; ++f) {
    const bool may_be_zero = f == kWindow || f == kWindowFrom;
    if (fields[f] < (may_be_zero ? 0 : 1)) return call.range_error("shape[" + std::to_string(f) + "] = " + std::to_string(fields[f]) + " is out of range");
  }
  s->layers = fields[kLayers];
  s->hidden = fields[kHidden];
  s->intermediate = fields[kIntermediate];
  s->heads = fields[kHeads];
  s->kv_heads = fields[kKvHeads];
  s->head_dim = fields[kHeadDim];
  s->vocab = fields[kVocab];
  s->capacity = fields[kCapacity];
  s->window = fields[kWindow];
  s->window_from = fields[kWindowFrom];
  if (s->heads % s->kv_heads != 0) return call.range_error("heads must be a multiple of kv heads");
  if (s->head_dim % 2 != 0) return call.range_error("head_dim must be even");
  return true;
}

// decoderCreate(shape: Int32Array, eps, invFreq: Float32Array, matrices: NativeWeights[], vectors: (Float32Array | null)[],
//               ropeLayers: Int32Array)
//   matrices: embed, head, then per layer q, k, v, o, gate, up, down ([out, in] each)
//   vectors: the final norm, then per layer the input norm, the post-attention norm, the q and k head norms and a
//            bias per projection
//   ropeLayers: per layer 1 (RoPE) or 0 (none)
napi_value Create(napi_env env, napi_callback_info info) {
  Call call(env, info, "decoderCreate", 6, "shape, eps, invFreq, matrices, vectors, ropeLayers");
  if (!call.ok()) return nullptr;
  DecoderShape s;
  if (!read_shape(call, &s)) return nullptr;
  double eps = 0;
  napi_valuetype type;
  if (napi_typeof(env, call.arg(1), &type) != napi_ok || type != napi_number) return call.type_error("eps must be a number"), nullptr;
  napi_get_value_double(env, call.arg(1), &eps);
  s.eps = static_cast<float>(eps);
  float* inv = nullptr;
  uint64_t inv_count = 0;
  if (!call.typed(2, "invFreq", napi_float32_array, "Float32Array", &inv, &inv_count)) return nullptr;
  if (inv_count != static_cast<uint64_t>(s.head_dim / 2)) return call.range_error("invFreq must hold head_dim / 2 floats"), nullptr;
  const uint64_t L = static_cast<uint64_t>(s.layers);
  int32_t* rope_flags = nullptr;
  uint64_t rope_count = 0;
  if (!call.typed(5, "ropeLayers", napi_int32_array, "Int32Array", &rope_flags, &rope_count)) return nullptr;
  if (rope_count != L) return call.range_error("ropeLayers has " + std::to_string(rope_count) + " entries, expected one per layer (" + std::to_string(L) + ")"), nullptr;
  if (!array_length(call, call.arg(3), "matrices", 2 + L * kProjections) ||
      !array_length(call, call.arg(4), "vectors", 1 + L * kLayerVectors)) {
    return nullptr;
  }

  auto owner = std::make_unique<DecoderHandle>();
  DecoderWeights w;
  bool ok = store_at(call, call.arg(3), 0, "embed", s.vocab, s.hidden, owner.get(), &w.embed) &&
            store_at(call, call.arg(3), 1, "head", s.vocab, s.hidden, owner.get(), &w.head) &&
            vector_at(call, call.arg(4), 0, "final norm", static_cast<uint64_t>(s.hidden), false, &w.final_norm);
  w.projections.resize(L * kProjections);
  w.biases.resize(L * kProjections);
  w.adapters.resize(L * kProjections);
  w.input_norms.resize(L);
  w.post_norms.resize(L);
  w.q_norms.resize(L);
  w.k_norms.resize(L);
  for (uint64_t l = 0; l < L; ++l) w.rope_layers.push_back(rope_flags[l] != 0 ? 1 : 0);
  for (int64_t l = 0; ok && l < s.layers; ++l) {
    const auto base = static_cast<uint32_t>(1 + l * kLayerVectors);
    ok = vector_at(call, call.arg(4), base, "layer " + std::to_string(l) + " input norm", s.hidden, false, &w.input_norms[l]) &&
         vector_at(call, call.arg(4), base + 1, "layer " + std::to_string(l) + " post-attention norm", s.hidden, false, &w.post_norms[l]) &&
         vector_at(call, call.arg(4), base + 2, "layer " + std::to_string(l) + " q norm", s.head_dim, true, &w.q_norms[l]) &&
         vector_at(call, call.arg(4), base + 3, "layer " + std::to_string(l) + " k norm", s.head_dim, true, &w.k_norms[l]);
    for (int p = 0; ok && p < kProjections; ++p) {
      const auto slot = static_cast<size_t>(l * kProjections + p);
      const auto projection = static_cast<Projection>(p);
      const std::string name = projection_name(l, p);
      ok = store_at(call, call.arg(3), static_cast<uint32_t>(2 + slot), name, projection_out(s, projection),
                    projection_in(s, projection), owner.get(), &w.projections[slot]) &&
           vector_at(call, call.arg(4), base + 4 + p, name + " bias", projection_out(s, projection), true, &w.biases[slot]);
    }
  }
  if (!ok) {
    release(env, owner.get());
    return nullptr;
  }
  std::vector<float> inv_freq(inv, inv + inv_count);
  call.guarded([&] { owner->decoder = std::make_unique<Decoder>(s, std::move(inv_freq), std::move(w)); });
  if (!owner->decoder) {
    release(env, owner.get());
    return nullptr;
  }
  owner->kv_bytes = 2 * 4 * s.layers * s.kv_heads * s.capacity * s.head_dim;
  napi_value object;
  napi_create_object(env, &object);
  DecoderHandle* handle = owner.release();
  if (napi_wrap(env, object, handle, finalize, nullptr, nullptr) != napi_ok) {
    release(env, handle);
    delete handle;
    return call.error("cannot attach the decoder to its handle"), nullptr;
  }
  napi_type_tag_object(env, object, &kDecoderTag);
  int64_t ignored;
  napi_adjust_external_memory(env, handle->kv_bytes, &ignored);
  return object;
}

// decoderAdapter(decoder, slot, a: Float32Array [in, rank], b: Float32Array [rank, out], rank, scale): a LoRA update
// on projection `slot` (layer · 7 + q, k, v, o, gate, up, down); rank 0 removes it.
napi_value Adapter(napi_env env, napi_callback_info info) {
  Call call(env, info, "decoderAdapter", 6, "decoder, slot, a, b, rank, scale");
  if (!call.ok()) return nullptr;
  DecoderHandle* handle = nullptr;
  uint64_t slot = 0, rank = 0;
  float* a = nullptr;
  float* b = nullptr;
  uint64_t a_count = 0, b_count = 0;
  if (!decoder_arg(call, 0, &handle) || !call.count(1, "slot", kMaxDim, &slot) ||
      !call.typed(2, "a", napi_float32_array, "Float32Array", &a, &a_count) ||
      !call.typed(3, "b", napi_float32_array, "Float32Array", &b, &b_count) || !call.count(4, "rank", kMaxDim, &rank)) {
    return nullptr;
  }
  double scale = 0;
  napi_valuetype type;
  if (napi_typeof(env, call.arg(5), &type) != napi_ok || type != napi_number) return call.type_error("scale must be a number"), nullptr;
  napi_get_value_double(env, call.arg(5), &scale);
  Decoder& decoder = *handle->decoder;
  const DecoderShape& s = decoder.shape();
  if (slot >= static_cast<uint64_t>(s.layers * kProjections)) return call.range_error("slot " + std::to_string(slot) + " is out of range"), nullptr;
  const auto projection = static_cast<Projection>(slot % kProjections);
  const auto in = static_cast<uint64_t>(projection_in(s, projection)), out = static_cast<uint64_t>(projection_out(s, projection));
  if (a_count != in * rank || b_count != rank * out) {
    return call.range_error("a has " + std::to_string(a_count) + " and b " + std::to_string(b_count) + " floats, expected " +
                            std::to_string(in * rank) + " and " + std::to_string(rank * out)), nullptr;
  }
  call.guarded([&] {
    LowRank& adapter = decoder.weights().adapters[slot];
    adapter.rank = static_cast<int64_t>(rank);
    adapter.scale = static_cast<float>(scale);
    adapter.a.assign(a, a + a_count);
    adapter.b.assign(b, b + b_count);
  });
  return nullptr;
}

// decoderStep(decoder, ids: Int32Array, logits: Float32Array [vocab]) → the cache's new length
napi_value Step(napi_env env, napi_callback_info info) {
  Call call(env, info, "decoderStep", 3, "decoder, ids, logits");
  if (!call.ok()) return nullptr;
  DecoderHandle* handle = nullptr;
  int32_t* ids = nullptr;
  float* logits = nullptr;
  uint64_t count = 0, logits_count = 0;
  if (!decoder_arg(call, 0, &handle) || !call.typed(1, "ids", napi_int32_array, "Int32Array", &ids, &count) ||
      !call.typed(2, "logits", napi_float32_array, "Float32Array", &logits, &logits_count)) {
    return nullptr;
  }
  Decoder& decoder = *handle->decoder;
  const DecoderShape& s = decoder.shape();
  for (Handle* store : handle->stores) {
    if (!store->store) return call.error("a weights store of this decoder was freed (weightsFree): the model was disposed"), nullptr;
  }
  if (count == 0) return call.range_error("ids is empty"), nullptr;
  if (logits_count != static_cast<uint64_t>(s.vocab)) {
    return call.range_error("logits has " + std::to_string(logits_count) + " floats, expected vocab = " + std::to_string(s.vocab)), nullptr;
  }
  for (uint64_t i = 0; i < count; ++i) {
    if (ids[i] < 0 || ids[i] >= s.vocab) {
      return call.range_error("ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) + " is outside [0, " + std::to_string(s.vocab) + ")"), nullptr;
    }
  }
  if (static_cast<uint64_t>(decoder.length()) + count > static_cast<uint64_t>(s.capacity)) {
    return call.range_error(std::to_string(decoder.length()) + " tokens in the cache plus " + std::to_string(count) +
                            " exceed its capacity of " + std::to_string(s.capacity)), nullptr;
  }
  call.guarded([&] { decoder.step(ids, static_cast<int64_t>(count), logits); });
  napi_value length;
  napi_create_int64(env, decoder.length(), &length);
  return length;
}

// decoderFree(decoder): frees the KV cache and lets go of the stores now (idempotent).
napi_value Free(napi_env env, napi_callback_info info) {
  Call call(env, info, "decoderFree", 1, "decoder");
  if (!call.ok()) return nullptr;
  bool tagged = false;
  void* wrapped = nullptr;
  napi_valuetype type;
  if (napi_typeof(env, call.arg(0), &type) != napi_ok || type != napi_object ||
      napi_check_object_type_tag(env, call.arg(0), &kDecoderTag, &tagged) != napi_ok || !tagged ||
      napi_unwrap(env, call.arg(0), &wrapped) != napi_ok || wrapped == nullptr) {
    return call.type_error("decoder must be made by decoderCreate"), nullptr;
  }
  release(env, static_cast<DecoderHandle*>(wrapped));
  return nullptr;
}

}  // namespace

void register_decoder(napi_env env, napi_value exports) {
  const napi_property_descriptor functions[] = {
      {"decoderCreate", nullptr, Create, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"decoderAdapter", nullptr, Adapter, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"decoderStep", nullptr, Step, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"decoderFree", nullptr, Free, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
}

}  // namespace finetune
