/**
 * WebGPU for tests: the adapter Dawn finds (on CI a software Vulkan driver, Mesa's lavapipe, which .ci/run installs),
 * or why there is none. Without one the tests skip with that reason, unless FINETUNE_REQUIRE_WEBGPU=1 (.ci/run sets
 * it when the driver installed), where they fail instead.
 */
import { probeWebGpu, type WebGpuAdapter } from "../../src/backend/webgpu.js";
import type { Need } from "./needs.js";

export async function webgpuNeed(env: NodeJS.ProcessEnv = process.env): Promise<{ need: Need; adapter: WebGpuAdapter | null }> {
  const { adapter, reason } = await probeWebGpu();
  return {
    adapter,
    need: {
      missing: adapter ? null : `no WebGPU adapter: ${reason}`,
      required: env.FINETUNE_REQUIRE_WEBGPU === "1",
      requiredBecause: "FINETUNE_REQUIRE_WEBGPU=1 says a Vulkan driver was installed (.ci/run installs Mesa's lavapipe), so WebGPU must find it",
    },
  };
}
