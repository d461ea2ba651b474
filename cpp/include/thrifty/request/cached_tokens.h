// CachedTokensPredictor: the seam between prompt-cache tracking (area `prompt`) and anything
// that prices a request before it is sent (the router, replay).
//
// It lives in `request` because both `route` and `prompt` depend on `request`, and neither may
// depend on the other. The router calls it once per candidate model; the prefix tracker
// implements it.
//
// Thread-safety: implementations must be safe to call from several threads at once.
#ifndef THRIFTY_REQUEST_CACHED_TOKENS_H_
#define THRIFTY_REQUEST_CACHED_TOKENS_H_

#include <cstdint>

#include "nlohmann/json_fwd.hpp"
#include "thrifty/catalog/model_spec.h"

namespace thrifty::request {

class CachedTokensPredictor {
 public:
  virtual ~CachedTokensPredictor() = default;

  // How many input tokens of `request` (OpenAI chat or Anthropic messages shape) the provider
  // of `model` is expected to serve from its prompt cache if the request were sent now.
  // 0 when nothing is warm or the model's provider does not cache. Never more than the
  // request's input tokens. Must not throw; on any internal problem return 0.
  virtual int64_t PredictCachedTokens(const catalog::ModelSpec& model,
                                      const nlohmann::json& request) const = 0;
};

}  // namespace thrifty::request

#endif  // THRIFTY_REQUEST_CACHED_TOKENS_H_
