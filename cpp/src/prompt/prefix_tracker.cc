#include "thrifty/prompt/prefix_tracker.h"

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"
#include "thrifty/prompt/layout.h"
#include "xxhash.h"

namespace thrifty::prompt {

using catalog::CacheMode;
using nlohmann::json;

struct PrefixTracker::Resolved {
  const catalog::ProviderCacheRules* rules = nullptr;
  const catalog::ModelSpec* model = nullptr;
  std::string provider;
  int64_t min_tokens = 0;
};

struct PrefixTracker::Prepared {
  Layout layout;
  uint64_t ns = 0;
};

cost::Usage CachePrediction::usage() const {
  cost::Usage u;
  u.cached_input_tokens = cached_tokens;
  u.cache_write_5m_tokens = write_5m_tokens;
  u.cache_write_1h_tokens = write_1h_tokens;
  u.input_tokens =
      std::max<int64_t>(0, prompt_tokens - cached_tokens - write_5m_tokens - write_1h_tokens);
  return u;
}

PrefixTracker::PrefixTracker(std::shared_ptr<const catalog::Catalog> catalog,
                             std::shared_ptr<const Clock> clock, PrefixTrackerOptions options)
    : catalog_(std::move(catalog)),
      clock_(clock ? std::move(clock) : std::make_shared<SystemClock>()),
      options_(options) {
  options_.max_entries = std::max<size_t>(options_.max_entries, 64);
}

absl::StatusOr<PrefixTracker::Resolved> PrefixTracker::Resolve(std::string_view provider,
                                                               std::string_view model) const {
  Resolved r;
  THRIFTY_ASSIGN_OR_RETURN(r.model, catalog_->Get(model));
  r.provider = AsciiLower(provider.empty() ? std::string_view(r.model->provider) : provider);
  THRIFTY_ASSIGN_OR_RETURN(r.rules, catalog_->GetProviderRules(r.provider));
  r.min_tokens = r.rules->MinTokensFor(r.model->name);
  return r;
}

absl::StatusOr<PrefixTracker::Prepared> PrefixTracker::Prepare(const Resolved& r,
                                                               const json& request) const {
  Prepared p;
  std::string key;
  if (request.is_object() && !r.rules->cache_key_field.empty()) {
    if (auto it = request.find(r.rules->cache_key_field); it != request.end() && it->is_string()) {
      key = it->get<std::string>();
    }
  }
  const std::string ns_text = StrCat(r.rules->provider, "\x1f", r.model->name, "\x1f", key);
  p.ns = XXH3_64bits(ns_text.data(), ns_text.size());
  THRIFTY_ASSIGN_OR_RETURN(p.layout,
                           LayoutRequest(request, request::FamilyForModel(r.model->name), p.ns));
  return p;
}

namespace {

int TtlSeconds(const catalog::ProviderCacheRules& rules, std::string_view name) {
  const catalog::CacheTtl* ttl = rules.FindTtl(name);
  if (ttl == nullptr) ttl = rules.FindTtl("");
  return ttl == nullptr ? 0 : static_cast<int>(ttl->seconds);
}

bool IsLongTtl(const catalog::ProviderCacheRules& rules, std::string_view name) {
  return TtlSeconds(rules, name) > TtlSeconds(rules, "");
}

}  // namespace

CachePrediction PrefixTracker::PredictLocked(const Resolved& r, const Prepared& p, double now,
                                             int* read_block) const {
  CachePrediction out;
  out.provider = r.rules->provider;
  out.model = r.model->name;
  const Layout& layout = p.layout;
  out.prompt_tokens = layout.total_tokens;
  *read_block = -1;
  if (!r.rules->caches()) {
    out.reason = "no_caching";
    out.detail = StrCat(out.provider, " has no prompt-cache discount in this catalog");
    return out;
  }
  const bool seen_namespace = namespaces_.contains(p.ns);
  auto find = [&](uint64_t hash) -> const Entry* {
    auto it = entries_.find(hash);
    return it == entries_.end() ? nullptr : &it->second;
  };

  if (r.rules->mode != CacheMode::kExplicit) {
    // Longest alive prefix, chunk by chunk.
    size_t i = 0;
    bool lapsed = false;
    for (; i < layout.chunks.size(); ++i) {
      const Entry* e = find(layout.chunks[i].chain);
      if (e == nullptr) break;
      if (e->expires < now) {
        lapsed = true;
        break;
      }
      out.matched_tokens = layout.chunks[i].end_tokens;
    }
    out.cached_tokens =
        std::min(layout.total_tokens, r.rules->CachedFromMatched(out.model, out.matched_tokens));
    if (i < layout.chunks.size()) out.segment = layout.blocks[layout.chunks[i].block].label;
    if (out.cached_tokens > 0) {
      out.reason = "hit";
      out.detail = StrCat(out.cached_tokens, " of ", layout.total_tokens, " tokens warm");
      if (!out.segment.empty()) StrAppend(&out.detail, "; the warm prefix ends in ", out.segment);
    } else if (lapsed) {
      out.reason = "ttl_lapsed";
      out.detail = StrCat("the prefix was sent before but its cache expired (TTL ",
                          TtlSeconds(*r.rules, layout.retention), " s)");
    } else if (out.matched_tokens > 0) {
      out.reason = "under_minimum";
      out.detail = StrCat("the warm prefix is ", out.matched_tokens, " tokens; ", out.model,
                          " caches from ", r.min_tokens);
    } else if (!seen_namespace) {
      out.reason = "cold";
      out.detail = StrCat("nothing sent yet to ", out.provider, "/", out.model,
                          layout.cache_key.empty() ? "" : " with this prompt_cache_key");
    } else {
      out.reason = "prefix_changed";
      out.detail =
          StrCat("the prefix changed at ", out.segment.empty() ? "the start" : out.segment);
    }
    return out;
  }

  // Explicit breakpoints.
  std::vector<size_t> bps;
  for (size_t i = 0; i < layout.blocks.size(); ++i) {
    if (layout.blocks[i].breakpoint) bps.push_back(i);
  }
  if (bps.empty()) {
    out.reason = "no_breakpoint";
    out.detail = StrCat(out.provider,
                        " caches only up to a cache_control breakpoint and the request has none");
    return out;
  }
  const int lookback = std::max(1, r.rules->lookback_blocks);
  bool lapsed = false;
  bool beyond = false;
  for (size_t bp : bps) {
    const size_t lo = bp + 1 >= static_cast<size_t>(lookback) ? bp + 1 - lookback : 0;
    bool found = false;
    for (size_t j = bp + 1; j-- > lo;) {
      const Entry* e = find(layout.blocks[j].chain);
      if (e == nullptr || !e->written) continue;
      if (e->expires < now) {
        lapsed = true;
        continue;
      }
      if (layout.blocks[j].end_tokens > out.matched_tokens) {
        out.matched_tokens = layout.blocks[j].end_tokens;
        *read_block = static_cast<int>(j);
      }
      found = true;
      break;
    }
    if (!found) {
      for (size_t j = lo; j-- > 0;) {
        const Entry* e = find(layout.blocks[j].chain);
        if (e != nullptr && e->written && e->expires >= now) {
          beyond = true;
          break;
        }
      }
    }
  }
  out.cached_tokens =
      std::min(layout.total_tokens, r.rules->CachedFromMatched(out.model, out.matched_tokens));
  // Writes: each breakpoint at or above the minimum writes what lies between the previous
  // cached position and itself, at its own TTL.
  int64_t covered = out.cached_tokens;
  bool any_eligible = false;
  for (size_t bp : bps) {
    const LayoutBlock& b = layout.blocks[bp];
    if (b.end_tokens < r.min_tokens) continue;
    any_eligible = true;
    if (b.end_tokens <= covered) continue;
    (IsLongTtl(*r.rules, b.ttl) ? out.write_1h_tokens : out.write_5m_tokens) +=
        b.end_tokens - covered;
    covered = b.end_tokens;
  }
  // Where the known prefix ends: the first block never seen in this namespace.
  for (size_t i = 0; i < layout.blocks.size(); ++i) {
    if (find(layout.blocks[i].chain) == nullptr) {
      out.segment = layout.blocks[i].label;
      break;
    }
  }
  if (out.cached_tokens > 0) {
    out.reason = "hit";
    out.detail = StrCat(out.cached_tokens, " of ", layout.total_tokens,
                        " tokens read from the cache at breakpoint block ", *read_block);
  } else if (!any_eligible) {
    out.reason = "under_minimum";
    out.detail =
        StrCat("every breakpoint is under ", out.model, "'s minimum of ", r.min_tokens, " tokens");
  } else if (!seen_namespace) {
    out.reason = "cold";
    out.detail = StrCat("nothing sent yet to ", out.provider, "/", out.model);
  } else if (lapsed) {
    out.reason = "ttl_lapsed";
    out.detail = "an earlier cache write at these breakpoints has expired";
  } else if (beyond) {
    out.reason = "beyond_lookback";
    out.detail = StrCat("the last cache write is more than ", lookback,
                        " blocks before every breakpoint; add a breakpoint nearer to it");
  } else {
    out.reason = "prefix_changed";
    out.detail = StrCat("the prefix changed at ",
                        out.segment.empty() ? "a breakpoint position" : out.segment);
  }
  return out;
}

absl::StatusOr<CachePrediction> PrefixTracker::Predict(std::string_view provider,
                                                       std::string_view model, const json& request,
                                                       std::optional<double> now) const {
  THRIFTY_ASSIGN_OR_RETURN(Resolved r, Resolve(provider, model));
  THRIFTY_ASSIGN_OR_RETURN(Prepared p, Prepare(r, request));
  const double t = now.value_or(clock_->Now());
  int read_block = -1;
  ReaderMutexLock lock(&mu_);
  return PredictLocked(r, p, t, &read_block);
}

int64_t PrefixTracker::PredictCachedTokens(const catalog::ModelSpec& model,
                                           const json& request) const {
  const catalog::ProviderCacheRules* rules = catalog_->FindProviderRules(model.provider);
  if (rules == nullptr) return 0;
  Resolved r;
  r.model = &model;
  r.rules = rules;
  r.provider = rules->provider;
  r.min_tokens = rules->MinTokensFor(model.name);
  absl::StatusOr<Prepared> p = Prepare(r, request);
  if (!p.ok()) return 0;
  const double t = clock_->Now();
  int read_block = -1;
  ReaderMutexLock lock(&mu_);
  return PredictLocked(r, *p, t, &read_block).cached_tokens;
}

absl::StatusOr<Observation> PrefixTracker::Observe(std::string_view provider,
                                                   std::string_view model, const json& request,
                                                   const cost::Usage& reported,
                                                   std::optional<double> now) {
  THRIFTY_ASSIGN_OR_RETURN(Resolved r, Resolve(provider, model));
  THRIFTY_ASSIGN_OR_RETURN(Prepared p, Prepare(r, request));
  const double t = now.value_or(clock_->Now());
  const Layout& layout = p.layout;
  Observation obs;
  obs.reported_cached_tokens = reported.cached_input_tokens;
  MutexLock lock(&mu_);
  int read_block = -1;
  obs.predicted = PredictLocked(r, p, t, &read_block);
  // Reconcile.
  const int64_t err = obs.error_tokens();
  stats_.observations += 1;
  stats_.predicted_cached_tokens += obs.predicted.cached_tokens;
  stats_.reported_cached_tokens += obs.reported_cached_tokens;
  stats_.abs_error_tokens += std::llabs(err);
  if (std::llabs(err) <= std::max<int64_t>(1, r.rules->block_tokens)) {
    stats_.exact += 1;
  } else if (err > 0) {
    stats_.over += 1;
  } else {
    stats_.under += 1;
  }
  namespaces_[p.ns] = t;
  if (!r.rules->caches()) return obs;
  if (r.rules->mode != CacheMode::kExplicit) {
    const int ttl = TtlSeconds(*r.rules, layout.retention);
    for (const LayoutChunk& c : layout.chunks) {
      Entry& e = entries_[c.chain];
      e.written = true;
      e.tokens = c.end_tokens;
      e.ttl_seconds = std::max(e.ttl_seconds, ttl);
      e.expires = std::max(e.expires, t + ttl);
    }
  } else {
    for (const LayoutBlock& b : layout.blocks) {
      Entry& e = entries_[b.chain];  // seen (for explanations), not readable by itself
      e.tokens = b.end_tokens;
    }
    if (read_block >= 0) {  // a read refreshes the TTL of what it read
      Entry& e = entries_[layout.blocks[read_block].chain];
      e.expires = std::max(e.expires, t + e.ttl_seconds);
    }
    for (const LayoutBlock& b : layout.blocks) {
      if (!b.breakpoint || b.end_tokens < r.min_tokens) continue;
      const int ttl = TtlSeconds(*r.rules, b.ttl);
      Entry& e = entries_[b.chain];
      e.written = true;
      e.ttl_seconds = std::max(e.ttl_seconds, ttl);
      e.expires = std::max(e.expires, t + ttl);
    }
  }
  if (entries_.size() > options_.max_entries) EvictLocked(t);
  return obs;
}

void PrefixTracker::EvictLocked(double now) {
  const size_t before = entries_.size();
  const size_t target = options_.max_entries / 4 * 3;
  absl::erase_if(entries_, [&](const auto& kv) { return kv.second.expires < now; });
  if (entries_.size() > target) {
    std::vector<double> expiries;
    expiries.reserve(entries_.size());
    for (const auto& [hash, e] : entries_) expiries.push_back(e.expires);
    const size_t drop = entries_.size() - target;
    std::nth_element(expiries.begin(), expiries.begin() + (drop - 1), expiries.end());
    const double cutoff = expiries[drop - 1];
    absl::erase_if(entries_, [&](const auto& kv) { return kv.second.expires <= cutoff; });
  }
  stats_.evictions += static_cast<int64_t>(before - entries_.size());
}

TrackerStats PrefixTracker::stats() const {
  ReaderMutexLock lock(&mu_);
  TrackerStats s = stats_;
  s.entries = entries_.size();
  return s;
}

size_t PrefixTracker::size() const {
  ReaderMutexLock lock(&mu_);
  return entries_.size();
}

void PrefixTracker::Clear() {
  MutexLock lock(&mu_);
  entries_.clear();
  namespaces_.clear();
  stats_ = TrackerStats{};
}

}  // namespace thrifty::prompt
