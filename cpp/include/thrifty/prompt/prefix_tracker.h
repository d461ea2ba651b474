// PrefixTracker: remembers the prompts sent to each provider and predicts how many input
// tokens of the next request the provider will serve from its prompt cache.
//
// Every observed request is laid out (layout.h) with its chained chunk hashes seeded by the
// cache namespace (provider, catalog model name, prompt_cache_key). What is recorded follows
// the provider's rules from the catalog:
//   * automatic / implicit caching (OpenAI, Gemini, DeepSeek): every chunk end of the prompt
//     is written, alive for the request's retention TTL; a new request's cached tokens are the
//     longest alive prefix, cut to the provider's minimum and block granularity (OpenAI: 1024,
//     then 128-token steps);
//   * explicit caching (Anthropic): only breakpoint positions (cache_control) of prompts at or
//     above the model's minimum are written, with the breakpoint's TTL; a breakpoint of a new
//     request reads the latest earlier write found within `lookback_blocks` blocks before it,
//     and a read refreshes the write's TTL. Tokens between the read and each breakpoint are
//     predicted as cache writes, at that breakpoint's TTL.
// A miss is explained: nothing sent yet for the namespace ("cold"), the prefix changed at a
// named block ("prefix_changed"), the warm prefix expired ("ttl_lapsed"), the prefix is under
// the model's minimum ("under_minimum"), no breakpoint ("no_breakpoint"), the last write is
// beyond the lookback window ("beyond_lookback"), or the provider does not cache.
//
// Memory is bounded: at most `max_entries` hashes (one per chunk for automatic providers, one
// per block plus one per breakpoint for explicit ones; ~48 bytes each). Past the bound, expired
// entries go first, then the soonest to expire, down to 3/4 of the bound.
//
// Thread-safety: thread-safe. Predict takes a shared lock; Observe an exclusive one. Layout and
// hashing run outside the lock.
#ifndef THRIFTY_PROMPT_PREFIX_TRACKER_H_
#define THRIFTY_PROMPT_PREFIX_TRACKER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "thrifty/base/mutex.h"
#include "thrifty/catalog/catalog.h"
#include "thrifty/cost/usage.h"
#include "thrifty/prompt/clock.h"
#include "thrifty/request/cached_tokens.h"

namespace thrifty::prompt {

struct CachePrediction {
  std::string provider;
  std::string model;
  int64_t prompt_tokens = 0;    // the tracker's estimate of the whole prompt
  int64_t cached_tokens = 0;    // served from the cache, after the provider's rules
  int64_t matched_tokens = 0;   // the warm prefix before minimum and granularity
  int64_t write_5m_tokens = 0;  // predicted cache writes at the default (short) TTL
  int64_t write_1h_tokens = 0;  // predicted cache writes at a longer TTL
  std::string reason;   // hit, cold, prefix_changed, ttl_lapsed, under_minimum, no_breakpoint,
                        // beyond_lookback, no_caching
  std::string segment;  // the block where the warm prefix ends, if it ends early
  std::string detail;   // one sentence for people

  // The predicted usage of the prompt (output 0), to price with cost::PriceUsage.
  cost::Usage usage() const;
};

struct Observation {
  CachePrediction predicted;
  int64_t reported_cached_tokens = 0;
  int64_t error_tokens() const { return predicted.cached_tokens - reported_cached_tokens; }
};

struct TrackerStats {
  int64_t observations = 0;
  int64_t predicted_cached_tokens = 0;
  int64_t reported_cached_tokens = 0;
  int64_t abs_error_tokens = 0;
  int64_t exact = 0;  // |error| <= one granularity step of the provider
  int64_t over = 0;   // predicted more than reported
  int64_t under = 0;  // predicted less than reported
  size_t entries = 0;
  int64_t evictions = 0;
};

struct PrefixTrackerOptions {
  size_t max_entries = size_t{1} << 20;
};

class PrefixTracker : public request::CachedTokensPredictor {
 public:
  // `clock` defaults to SystemClock.
  explicit PrefixTracker(std::shared_ptr<const catalog::Catalog> catalog,
                         std::shared_ptr<const Clock> clock = nullptr,
                         PrefixTrackerOptions options = {});

  // `provider` empty = the model's provider. Errors: NotFound for an unknown model or a
  // provider without rules; InvalidArgument for a malformed request.
  absl::StatusOr<CachePrediction> Predict(std::string_view provider, std::string_view model,
                                          const nlohmann::json& request,
                                          std::optional<double> now = std::nullopt) const;

  // Records `request` as sent at `now` and reconciles the prediction made just before with
  // the provider's `reported` usage.
  absl::StatusOr<Observation> Observe(std::string_view provider, std::string_view model,
                                      const nlohmann::json& request, const cost::Usage& reported,
                                      std::optional<double> now = std::nullopt);

  // request::CachedTokensPredictor: Predict(model.provider, model.name, request).cached_tokens,
  // or 0 on any error.
  int64_t PredictCachedTokens(const catalog::ModelSpec& model,
                              const nlohmann::json& request) const override;

  TrackerStats stats() const;
  size_t size() const;
  void Clear();
  const catalog::Catalog& catalog() const { return *catalog_; }

 private:
  struct Entry {
    double expires = 0;
    int64_t tokens = 0;
    int ttl_seconds = 0;
    bool written = false;  // readable by a later request (else only seen, for explanations)
  };
  struct Resolved;
  struct Prepared;

  absl::StatusOr<Resolved> Resolve(std::string_view provider, std::string_view model) const;
  absl::StatusOr<Prepared> Prepare(const Resolved& resolved, const nlohmann::json& request) const;
  CachePrediction PredictLocked(const Resolved& resolved, const Prepared& prepared, double now,
                                int* read_block) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void EvictLocked(double now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::shared_ptr<const catalog::Catalog> catalog_;
  std::shared_ptr<const Clock> clock_;
  PrefixTrackerOptions options_;

  mutable Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, double> namespaces_ ABSL_GUARDED_BY(mu_);  // -> last observed
  TrackerStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace thrifty::prompt

#endif  // THRIFTY_PROMPT_PREFIX_TRACKER_H_
