#include "thrifty/replay/prefix_cache_sim.h"

#include <algorithm>

namespace thrifty::replay {

int64_t PrefixCacheSim::CachedTokens(uint32_t model_id, std::span<const PrefixPoint> prefixes,
                                     double now) const {
  for (size_t i = prefixes.size(); i-- > 0;) {
    if (prefixes[i].tokens < rules_.min_cacheable_tokens) break;
    auto it = warm_.find(Slot(model_id, prefixes[i].key));
    if (it == warm_.end() || it->second <= now) continue;
    const int64_t block = std::max<int64_t>(1, rules_.block_tokens);
    return prefixes[i].tokens / block * block;
  }
  return 0;
}

int64_t PrefixCacheSim::CacheableTokens(std::span<const PrefixPoint> prefixes) const {
  if (prefixes.empty() || prefixes.back().tokens < rules_.min_cacheable_tokens) return 0;
  const int64_t block = std::max<int64_t>(1, rules_.block_tokens);
  return prefixes.back().tokens / block * block;
}

void PrefixCacheSim::Observe(uint32_t model_id, std::span<const PrefixPoint> prefixes, double now) {
  const double expiry = now + rules_.ttl_seconds;
  for (const PrefixPoint& p : prefixes) {
    if (p.tokens < rules_.min_cacheable_tokens) continue;
    double& slot = warm_[Slot(model_id, p.key)];
    slot = std::max(slot, expiry);
  }
  if (++observations_ % std::max<int64_t>(1, rules_.purge_every) == 0) {
    for (auto it = warm_.begin(); it != warm_.end();) {
      if (it->second <= now) {
        warm_.erase(it++);
      } else {
        ++it;
      }
    }
  }
}

}  // namespace thrifty::replay
