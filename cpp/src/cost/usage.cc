#include "thrifty/cost/usage.h"

#include <cmath>
#include <initializer_list>
#include <string>

#include "absl/strings/ascii.h"
#include "nlohmann/json.hpp"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"

namespace thrifty::cost {
namespace {

using nlohmann::json;

// Looks up `path` (nested keys) in `obj`; absent or null anywhere along it means 0.
absl::StatusOr<int64_t> Count(const json& obj, std::string_view provider,
                              std::initializer_list<std::string_view> path) {
  const json* node = &obj;
  std::string where;
  for (std::string_view key : path) {
    StrAppend(&where, where.empty() ? "" : ".", key);
    if (!node->is_object()) return 0;
    auto it = node->find(key);
    if (it == node->end() || it->is_null()) return 0;
    node = &*it;
  }
  if (node->is_number_unsigned()) return static_cast<int64_t>(node->get<uint64_t>());
  if (node->is_number_integer() && node->get<int64_t>() >= 0) return node->get<int64_t>();
  if (node->is_number_float()) {
    const double value = node->get<double>();
    if (value >= 0 && std::floor(value) == value && value < 9e15) {
      return static_cast<int64_t>(value);
    }
  }
  return absl::InvalidArgumentError(StrCat(provider, " usage field '", where,
                                           "' must be a non-negative integer token count, got ",
                                           node->dump()));
}

// The usage object inside `report`: the report itself, or its usage/usageMetadata member.
absl::StatusOr<const json*> UsageObject(const json& report, std::string_view provider,
                                        std::initializer_list<std::string_view> wrappers) {
  if (!report.is_object()) {
    return absl::InvalidArgumentError(StrCat(provider, " usage must be an object, got ",
                                             report.type_name(), ": ",
                                             report.dump().substr(0, 80)));
  }
  for (std::string_view wrapper : wrappers) {
    if (auto it = report.find(wrapper); it != report.end() && it->is_object()) return &*it;
  }
  return &report;
}

absl::Status CheckSubset(std::string_view provider, std::string_view part, int64_t part_value,
                         std::string_view whole, int64_t whole_value) {
  if (part_value > whole_value) {
    return absl::InvalidArgumentError(StrCat(provider, " usage: ", part, " (", part_value,
                                             ") exceeds ", whole, " (", whole_value,
                                             ") which includes it"));
  }
  return absl::OkStatus();
}

bool HasAny(const json& obj, std::initializer_list<std::string_view> keys) {
  for (std::string_view key : keys) {
    if (obj.contains(key)) return true;
  }
  return false;
}

}  // namespace

Usage& Usage::operator+=(const Usage& other) {
  input_tokens += other.input_tokens;
  cached_input_tokens += other.cached_input_tokens;
  cache_write_5m_tokens += other.cache_write_5m_tokens;
  cache_write_1h_tokens += other.cache_write_1h_tokens;
  output_tokens += other.output_tokens;
  reasoning_tokens += other.reasoning_tokens;
  return *this;
}

absl::Status ValidateUsage(const Usage& usage) {
  const std::pair<std::string_view, int64_t> fields[] = {
      {"input_tokens", usage.input_tokens},
      {"cached_input_tokens", usage.cached_input_tokens},
      {"cache_write_5m_tokens", usage.cache_write_5m_tokens},
      {"cache_write_1h_tokens", usage.cache_write_1h_tokens},
      {"output_tokens", usage.output_tokens},
      {"reasoning_tokens", usage.reasoning_tokens}};
  for (const auto& [name, value] : fields) {
    if (value < 0) {
      return absl::InvalidArgumentError(StrCat("Usage.", name, " must be >= 0, got ", value));
    }
  }
  return CheckSubset("Usage", "reasoning_tokens", usage.reasoning_tokens, "output_tokens",
                     usage.output_tokens);
}

absl::StatusOr<Usage> UsageFromOpenAI(const json& report) {
  constexpr std::string_view kP = "OpenAI";
  THRIFTY_ASSIGN_OR_RETURN(const json* u, UsageObject(report, kP, {"usage"}));
  Usage usage;
  int64_t prompt = 0;
  int64_t cached = 0;
  int64_t output = 0;
  int64_t reasoning = 0;
  if (HasAny(*u, {"prompt_tokens", "completion_tokens"})) {  // Chat Completions
    THRIFTY_ASSIGN_OR_RETURN(prompt, Count(*u, kP, {"prompt_tokens"}));
    THRIFTY_ASSIGN_OR_RETURN(cached, Count(*u, kP, {"prompt_tokens_details", "cached_tokens"}));
    THRIFTY_ASSIGN_OR_RETURN(output, Count(*u, kP, {"completion_tokens"}));
    THRIFTY_ASSIGN_OR_RETURN(reasoning,
                             Count(*u, kP, {"completion_tokens_details", "reasoning_tokens"}));
    THRIFTY_RETURN_IF_ERROR(
        CheckSubset(kP, "prompt_tokens_details.cached_tokens", cached, "prompt_tokens", prompt));
  } else {  // Responses API
    THRIFTY_ASSIGN_OR_RETURN(prompt, Count(*u, kP, {"input_tokens"}));
    THRIFTY_ASSIGN_OR_RETURN(cached, Count(*u, kP, {"input_tokens_details", "cached_tokens"}));
    THRIFTY_ASSIGN_OR_RETURN(output, Count(*u, kP, {"output_tokens"}));
    THRIFTY_ASSIGN_OR_RETURN(reasoning,
                             Count(*u, kP, {"output_tokens_details", "reasoning_tokens"}));
    THRIFTY_RETURN_IF_ERROR(
        CheckSubset(kP, "input_tokens_details.cached_tokens", cached, "input_tokens", prompt));
  }
  usage.input_tokens = prompt - cached;
  usage.cached_input_tokens = cached;
  usage.output_tokens = output;
  usage.reasoning_tokens = std::min(reasoning, output);
  return usage;
}

absl::StatusOr<Usage> UsageFromAnthropic(const json& report) {
  constexpr std::string_view kP = "Anthropic";
  THRIFTY_ASSIGN_OR_RETURN(const json* u, UsageObject(report, kP, {"usage"}));
  Usage usage;
  THRIFTY_ASSIGN_OR_RETURN(usage.input_tokens, Count(*u, kP, {"input_tokens"}));
  THRIFTY_ASSIGN_OR_RETURN(usage.cached_input_tokens, Count(*u, kP, {"cache_read_input_tokens"}));
  THRIFTY_ASSIGN_OR_RETURN(usage.output_tokens, Count(*u, kP, {"output_tokens"}));
  THRIFTY_ASSIGN_OR_RETURN(const int64_t writes, Count(*u, kP, {"cache_creation_input_tokens"}));
  THRIFTY_ASSIGN_OR_RETURN(const int64_t w5m,
                           Count(*u, kP, {"cache_creation", "ephemeral_5m_input_tokens"}));
  THRIFTY_ASSIGN_OR_RETURN(const int64_t w1h,
                           Count(*u, kP, {"cache_creation", "ephemeral_1h_input_tokens"}));
  if (w5m + w1h > 0) {
    // The split is authoritative; cache_creation_input_tokens is its sum when both are sent.
    usage.cache_write_5m_tokens = w5m + std::max<int64_t>(0, writes - w5m - w1h);
    usage.cache_write_1h_tokens = w1h;
  } else {
    usage.cache_write_5m_tokens = writes;
  }
  return usage;
}

absl::StatusOr<Usage> UsageFromGemini(const json& report) {
  constexpr std::string_view kP = "Gemini";
  THRIFTY_ASSIGN_OR_RETURN(const json* u,
                           UsageObject(report, kP, {"usageMetadata", "usage_metadata"}));
  const bool snake = HasAny(*u, {"prompt_token_count", "candidates_token_count"});
  auto count = [&](std::string_view camel, std::string_view snake_name) {
    return Count(*u, kP, {snake ? snake_name : camel});
  };
  THRIFTY_ASSIGN_OR_RETURN(const int64_t prompt, count("promptTokenCount", "prompt_token_count"));
  THRIFTY_ASSIGN_OR_RETURN(const int64_t cached,
                           count("cachedContentTokenCount", "cached_content_token_count"));
  THRIFTY_ASSIGN_OR_RETURN(const int64_t tool_prompt,
                           count("toolUsePromptTokenCount", "tool_use_prompt_token_count"));
  THRIFTY_ASSIGN_OR_RETURN(const int64_t candidates,
                           count("candidatesTokenCount", "candidates_token_count"));
  THRIFTY_ASSIGN_OR_RETURN(const int64_t thoughts,
                           count("thoughtsTokenCount", "thoughts_token_count"));
  THRIFTY_RETURN_IF_ERROR(
      CheckSubset(kP, "cachedContentTokenCount", cached, "promptTokenCount", prompt));
  Usage usage;
  usage.input_tokens = prompt + tool_prompt - cached;
  usage.cached_input_tokens = cached;
  usage.output_tokens = candidates + thoughts;
  usage.reasoning_tokens = thoughts;
  return usage;
}

absl::StatusOr<Usage> UsageFromDeepSeek(const json& report) {
  constexpr std::string_view kP = "DeepSeek";
  THRIFTY_ASSIGN_OR_RETURN(const json* u, UsageObject(report, kP, {"usage"}));
  if (!HasAny(*u, {"prompt_cache_hit_tokens", "prompt_cache_miss_tokens"})) {
    return UsageFromOpenAI(*u);  // older DeepSeek reports, or an OpenAI-compatible proxy
  }
  Usage usage;
  THRIFTY_ASSIGN_OR_RETURN(const int64_t hit, Count(*u, kP, {"prompt_cache_hit_tokens"}));
  THRIFTY_ASSIGN_OR_RETURN(int64_t miss, Count(*u, kP, {"prompt_cache_miss_tokens"}));
  if (!u->contains("prompt_cache_miss_tokens")) {
    THRIFTY_ASSIGN_OR_RETURN(const int64_t prompt, Count(*u, kP, {"prompt_tokens"}));
    THRIFTY_RETURN_IF_ERROR(
        CheckSubset(kP, "prompt_cache_hit_tokens", hit, "prompt_tokens", prompt));
    miss = prompt - hit;
  }
  THRIFTY_ASSIGN_OR_RETURN(usage.output_tokens, Count(*u, kP, {"completion_tokens"}));
  THRIFTY_ASSIGN_OR_RETURN(const int64_t reasoning,
                           Count(*u, kP, {"completion_tokens_details", "reasoning_tokens"}));
  usage.input_tokens = miss;
  usage.cached_input_tokens = hit;
  usage.reasoning_tokens = std::min(reasoning, usage.output_tokens);
  return usage;
}

absl::StatusOr<Usage> UsageFromProvider(std::string_view provider, const json& report) {
  const std::string p = AsciiLower(provider);
  if (p == "anthropic" || p == "bedrock") return UsageFromAnthropic(report);
  if (p == "google" || p == "gemini" || p == "vertex" || p == "vertex_ai") {
    return UsageFromGemini(report);
  }
  if (p == "deepseek") return UsageFromDeepSeek(report);
  if (p.empty()) {
    const json* u = &report;
    if (report.is_object()) {
      for (std::string_view w : {"usage", "usageMetadata", "usage_metadata"}) {
        if (auto it = report.find(w); it != report.end() && it->is_object()) u = &*it;
      }
    }
    if (u->is_object()) {
      if (HasAny(*u, {"promptTokenCount", "prompt_token_count", "candidatesTokenCount"})) {
        return UsageFromGemini(*u);
      }
      if (HasAny(*u, {"prompt_cache_hit_tokens", "prompt_cache_miss_tokens"})) {
        return UsageFromDeepSeek(*u);
      }
      if (HasAny(*u,
                 {"cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation"})) {
        return UsageFromAnthropic(*u);
      }
    }
    return UsageFromOpenAI(*u);
  }
  return UsageFromOpenAI(report);  // the OpenAI-compatible majority
}

}  // namespace thrifty::cost
