// The weight store's functions on the addon's exports (see weights_addon.cc).
#pragma once

#include <node_api.h>

namespace finetune {

void register_weights(napi_env env, napi_value exports);

}  // namespace finetune
