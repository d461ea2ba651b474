#include "thrifty/catalog/provider_rules.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"

namespace thrifty::catalog {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 13> kFields = {
    "mode",          "aliases",         "min_tokens",
    "block_tokens",  "max_breakpoints", "lookback_blocks",
    "ttls",          "read_multiplier", "cache_key_field",
    "cache_key_rpm", "usage_fields",    "source",
    "read_on"};

absl::Status Bad(std::string_view provider, std::string_view field, std::string_view what,
                 const json& got) {
  return absl::InvalidArgumentError(
      StrCat("providers.", provider, ".", field, ": expected ", what, ", got ", got.dump()));
}

absl::StatusOr<int64_t> Int(std::string_view provider, std::string_view field, const json& v,
                            int64_t min) {
  if (!v.is_number_integer() || v.get<int64_t>() < min) {
    return Bad(provider, field, StrCat("an integer >= ", min), v);
  }
  return v.get<int64_t>();
}

absl::StatusOr<double> Num(std::string_view provider, std::string_view field, const json& v) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) {
    return Bad(provider, field, "a number >= 0", v);
  }
  return v.get<double>();
}

absl::StatusOr<std::string> Str(std::string_view provider, std::string_view field, const json& v) {
  if (!v.is_string()) return Bad(provider, field, "a string", v);
  return v.get<std::string>();
}

}  // namespace

std::string_view CacheModeName(CacheMode mode) {
  switch (mode) {
    case CacheMode::kNone:
      return "none";
    case CacheMode::kExplicit:
      return "explicit";
    case CacheMode::kAutomatic:
      return "automatic";
    case CacheMode::kImplicit:
      return "implicit";
  }
  return "none";
}

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Iterative wildcard match with backtracking to the last '*'.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() &&
        (pattern[p] == '?' || absl::ascii_tolower(pattern[p]) == absl::ascii_tolower(text[t]))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

int64_t ProviderCacheRules::MinTokensFor(std::string_view model) const {
  for (const auto& rule : min_tokens) {
    for (const auto& glob : rule.models) {
      if (GlobMatch(glob, model)) return rule.tokens;
    }
  }
  return 0;
}

const CacheTtl* ProviderCacheRules::FindTtl(std::string_view name) const {
  if (ttls.empty()) return nullptr;
  if (name.empty()) return &ttls.front();
  for (const auto& ttl : ttls) {
    if (ttl.name == name) return &ttl;
  }
  return nullptr;
}

int64_t ProviderCacheRules::CachedFromMatched(std::string_view model, int64_t matched) const {
  if (!caches() || matched <= 0) return 0;
  const int64_t minimum = MinTokensFor(model);
  if (matched < minimum) return 0;
  const int64_t step = std::max<int64_t>(1, block_tokens);
  return minimum + (matched - minimum) / step * step;
}

absl::Status ValidateProviderCacheRules(const ProviderCacheRules& r) {
  auto err = [&](std::string_view field, std::string_view what) {
    return absl::InvalidArgumentError(StrCat("providers.", r.provider, ".", field, ": ", what));
  };
  if (r.provider.empty()) return absl::InvalidArgumentError("provider rules need a provider name");
  if (!r.caches()) return absl::OkStatus();
  if (r.min_tokens.empty()) {
    return err("min_tokens", "a caching provider needs at least one {models, tokens} entry");
  }
  for (size_t i = 0; i < r.min_tokens.size(); ++i) {
    if (r.min_tokens[i].models.empty()) {
      return err(StrCat("min_tokens[", i, "].models"), "must list at least one model glob");
    }
    if (r.min_tokens[i].tokens < 0) {
      return err(StrCat("min_tokens[", i, "].tokens"), "must be >= 0");
    }
  }
  if (r.block_tokens < 1) return err("block_tokens", "must be >= 1");
  if (r.ttls.empty()) return err("ttls", "a caching provider needs at least one TTL");
  for (size_t i = 0; i < r.ttls.size(); ++i) {
    if (r.ttls[i].name.empty() || r.ttls[i].seconds <= 0) {
      return err(StrCat("ttls[", i, "]"), "needs a name and seconds > 0");
    }
  }
  if (r.mode == CacheMode::kExplicit) {
    if (r.max_breakpoints < 1) return err("max_breakpoints", "explicit mode needs >= 1");
    if (r.lookback_blocks < 1) return err("lookback_blocks", "explicit mode needs >= 1");
  }
  return absl::OkStatus();
}

absl::StatusOr<ProviderCacheRules> ProviderCacheRulesFromJson(std::string_view provider,
                                                              const json& e) {
  ProviderCacheRules r;
  r.provider = AsciiLower(provider);
  if (!e.is_object()) return Bad(provider, "", "a mapping of cache rules", e);
  for (const auto& [key, value] : e.items()) {
    if (std::find(kFields.begin(), kFields.end(), key) == kFields.end()) {
      std::vector<std::string> accepted(kFields.begin(), kFields.end());
      return absl::InvalidArgumentError(StrCat("providers.", provider, ": unknown field '", key,
                                               "'; accepted: ", absl::StrJoin(accepted, ", ")));
    }
  }
  const std::string mode = e.value("mode", std::string("none"));
  if (mode == "none") {
    r.mode = CacheMode::kNone;
  } else if (mode == "explicit") {
    r.mode = CacheMode::kExplicit;
  } else if (mode == "automatic") {
    r.mode = CacheMode::kAutomatic;
  } else if (mode == "implicit") {
    r.mode = CacheMode::kImplicit;
  } else {
    return Bad(provider, "mode", "one of none, explicit, automatic, implicit", e["mode"]);
  }
  if (e.contains("aliases")) {
    const json& a = e["aliases"];
    if (!a.is_array()) return Bad(provider, "aliases", "a list of provider names", a);
    for (const auto& name : a) {
      THRIFTY_ASSIGN_OR_RETURN(std::string s, Str(provider, "aliases", name));
      r.aliases.push_back(AsciiLower(s));
    }
  }
  if (e.contains("min_tokens")) {
    const json& list = e["min_tokens"];
    if (!list.is_array()) return Bad(provider, "min_tokens", "a list of {models, tokens}", list);
    for (size_t i = 0; i < list.size(); ++i) {
      const json& item = list[i];
      const std::string field = StrCat("min_tokens[", i, "]");
      if (!item.is_object() || !item.contains("models") || !item.contains("tokens")) {
        return Bad(provider, field, "{models: [glob, ...], tokens: n}", item);
      }
      MinTokensRule rule;
      const json& models = item["models"];
      if (!models.is_array()) return Bad(provider, field + ".models", "a list of globs", models);
      for (const auto& glob : models) {
        THRIFTY_ASSIGN_OR_RETURN(std::string s, Str(provider, field + ".models", glob));
        rule.models.push_back(std::move(s));
      }
      THRIFTY_ASSIGN_OR_RETURN(rule.tokens, Int(provider, field + ".tokens", item["tokens"], 0));
      r.min_tokens.push_back(std::move(rule));
    }
  }
  if (e.contains("block_tokens")) {
    THRIFTY_ASSIGN_OR_RETURN(r.block_tokens, Int(provider, "block_tokens", e["block_tokens"], 1));
  }
  if (e.contains("max_breakpoints")) {
    THRIFTY_ASSIGN_OR_RETURN(int64_t v, Int(provider, "max_breakpoints", e["max_breakpoints"], 0));
    r.max_breakpoints = static_cast<int>(v);
  }
  if (e.contains("lookback_blocks")) {
    THRIFTY_ASSIGN_OR_RETURN(int64_t v, Int(provider, "lookback_blocks", e["lookback_blocks"], 0));
    r.lookback_blocks = static_cast<int>(v);
  }
  if (e.contains("ttls")) {
    const json& list = e["ttls"];
    if (!list.is_array()) return Bad(provider, "ttls", "a list of {name, seconds}", list);
    for (size_t i = 0; i < list.size(); ++i) {
      const json& item = list[i];
      const std::string field = StrCat("ttls[", i, "]");
      if (!item.is_object() || !item.contains("name") || !item.contains("seconds")) {
        return Bad(provider, field, "{name, seconds, write_multiplier}", item);
      }
      CacheTtl ttl;
      THRIFTY_ASSIGN_OR_RETURN(ttl.name, Str(provider, field + ".name", item["name"]));
      THRIFTY_ASSIGN_OR_RETURN(ttl.seconds, Int(provider, field + ".seconds", item["seconds"], 1));
      if (item.contains("write_multiplier")) {
        THRIFTY_ASSIGN_OR_RETURN(ttl.write_multiplier, Num(provider, field + ".write_multiplier",
                                                           item["write_multiplier"]));
      }
      r.ttls.push_back(std::move(ttl));
    }
  }
  if (e.contains("read_multiplier")) {
    THRIFTY_ASSIGN_OR_RETURN(r.read_multiplier,
                             Num(provider, "read_multiplier", e["read_multiplier"]));
  }
  if (e.contains("cache_key_field")) {
    THRIFTY_ASSIGN_OR_RETURN(r.cache_key_field,
                             Str(provider, "cache_key_field", e["cache_key_field"]));
  }
  if (e.contains("cache_key_rpm")) {
    THRIFTY_ASSIGN_OR_RETURN(r.cache_key_rpm,
                             Int(provider, "cache_key_rpm", e["cache_key_rpm"], 0));
  }
  if (e.contains("usage_fields")) {
    const json& u = e["usage_fields"];
    if (!u.is_object()) return Bad(provider, "usage_fields", "a mapping of name to field", u);
    for (const auto& [key, value] : u.items()) {
      THRIFTY_ASSIGN_OR_RETURN(r.usage_fields[key], Str(provider, "usage_fields." + key, value));
    }
  }
  if (e.contains("source")) {
    THRIFTY_ASSIGN_OR_RETURN(r.source, Str(provider, "source", e["source"]));
  }
  if (e.contains("read_on")) {
    THRIFTY_ASSIGN_OR_RETURN(r.read_on, Str(provider, "read_on", e["read_on"]));
  }
  THRIFTY_RETURN_IF_ERROR(ValidateProviderCacheRules(r));
  return r;
}

}  // namespace thrifty::catalog
