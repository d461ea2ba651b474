// PrefixCacheSim: how many prompt tokens a provider would serve from its prompt (prefix) cache,
// simulated on the replay clock.
//
// A prompt is split into segments: the static head (tools + system prompt) and then each
// message. Segment i's key chains the keys of segments 0..i (so it names the whole prefix) and
// carries the prefix's cumulative token count. After a call on model M at time t, every prefix
// of at least `min_cacheable_tokens` is warm on M until t + ttl (a hit refreshes it, as
// providers do). A later call on M is served the longest warm prefix, rounded down to
// `block_tokens`. This models OpenAI's automatic caching (1024-token minimum, 128-token steps)
// and Anthropic's with breakpoints after the static head and at the end of the conversation,
// which is what thrifty's prompt assembly places. Matching is at message boundaries, so a
// prefix that diverges inside a message counts only up to the previous message.
//
// Memory: one entry per (model, warm prefix); expired entries are purged every
// `purge_every` observations, so it stays proportional to the traffic of one TTL window.
//
// Thread-safety: thread-compatible (the replay calls it from its simulation thread only).
#ifndef THRIFTY_REPLAY_PREFIX_CACHE_SIM_H_
#define THRIFTY_REPLAY_PREFIX_CACHE_SIM_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace thrifty::replay {

// One prefix of a prompt: its chained key and the prompt tokens up to its end.
struct PrefixPoint {
  uint64_t key = 0;
  int64_t tokens = 0;
};

struct PrefixCacheRules {
  int64_t min_cacheable_tokens = 1024;
  int64_t block_tokens = 128;
  double ttl_seconds = 300.0;  // OpenAI: 5-10 min idle (up to 1 h); Anthropic default 5 min
  int64_t purge_every = 65536;
};

class PrefixCacheSim {
 public:
  explicit PrefixCacheSim(PrefixCacheRules rules = {}) : rules_(rules) {}

  // Tokens served from cache if `prefixes` (shortest first) were sent to model `model_id` now.
  int64_t CachedTokens(uint32_t model_id, std::span<const PrefixPoint> prefixes, double now) const;
  // Records that the prompt was sent to `model_id` at `now`.
  void Observe(uint32_t model_id, std::span<const PrefixPoint> prefixes, double now);

  // The longest prefix that is long enough to be cached at all (0 if none).
  int64_t CacheableTokens(std::span<const PrefixPoint> prefixes) const;

  size_t size() const { return warm_.size(); }
  const PrefixCacheRules& rules() const { return rules_; }

 private:
  static uint64_t Slot(uint32_t model_id, uint64_t key) {
    return key ^ (static_cast<uint64_t>(model_id + 1) * 0x9E3779B97F4A7C15ULL);
  }

  PrefixCacheRules rules_;
  absl::flat_hash_map<uint64_t, double> warm_;  // slot -> expiry (seconds)
  int64_t observations_ = 0;
};

}  // namespace thrifty::replay

#endif  // THRIFTY_REPLAY_PREFIX_CACHE_SIM_H_
