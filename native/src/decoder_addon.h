// The lean decoder's functions on the addon's exports (see decoder_addon.cc).
#pragma once

#include <node_api.h>

namespace finetune {

void register_decoder(napi_env env, napi_value exports);

}  // namespace finetune
