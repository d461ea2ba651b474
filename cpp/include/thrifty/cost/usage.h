// Usage: one call's token counts in one normalized form, whatever the provider reported.
//
// Buckets are disjoint, so a cost is a plain dot product with the prices:
//   input_tokens           uncached prompt tokens billed at the input price
//   cached_input_tokens    prompt tokens served from the provider's prompt cache
//   cache_write_5m_tokens  prompt tokens written to a 5-minute cache (Anthropic)
//   cache_write_1h_tokens  prompt tokens written to a 1-hour cache (Anthropic)
//   output_tokens          all billed output tokens, reasoning tokens included
//   reasoning_tokens       the part of output_tokens spent on hidden reasoning (informational)
//
// Thread-safety: a plain value type (thread-compatible).
#ifndef THRIFTY_COST_USAGE_H_
#define THRIFTY_COST_USAGE_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace thrifty::cost {

struct Usage {
  int64_t input_tokens = 0;
  int64_t cached_input_tokens = 0;
  int64_t cache_write_5m_tokens = 0;
  int64_t cache_write_1h_tokens = 0;
  int64_t output_tokens = 0;
  int64_t reasoning_tokens = 0;

  // Every prompt token, cached or not: what the provider counted as the prompt.
  int64_t prompt_tokens() const {
    return input_tokens + cached_input_tokens + cache_write_5m_tokens + cache_write_1h_tokens;
  }
  int64_t total_tokens() const { return prompt_tokens() + output_tokens; }

  Usage& operator+=(const Usage& other);
  friend Usage operator+(Usage a, const Usage& b) { return a += b; }
  friend bool operator==(const Usage&, const Usage&) = default;
};

// Non-negative counts and reasoning_tokens <= output_tokens; errors name the field.
absl::Status ValidateUsage(const Usage& usage);

// Parsers for each provider's usage report. Each accepts the usage object itself or a whole
// response that holds it ("usage" / "usageMetadata" / "usage_metadata"); absent or null
// counters are 0. Errors are InvalidArgument naming the field and what it holds.
//
// OpenAI Chat Completions: prompt_tokens (cached included), prompt_tokens_details.cached_tokens,
//   completion_tokens (reasoning included), completion_tokens_details.reasoning_tokens.
// OpenAI Responses: input_tokens, input_tokens_details.cached_tokens, output_tokens,
//   output_tokens_details.reasoning_tokens.
absl::StatusOr<Usage> UsageFromOpenAI(const nlohmann::json& report);
// Anthropic Messages: input_tokens (uncached only), cache_read_input_tokens,
//   cache_creation_input_tokens, cache_creation.ephemeral_{5m,1h}_input_tokens, output_tokens.
//   Cache writes without the 5m/1h split count as 5-minute writes (the API default).
absl::StatusOr<Usage> UsageFromAnthropic(const nlohmann::json& report);
// Gemini (REST camelCase or google-genai snake_case): promptTokenCount (cached included),
//   cachedContentTokenCount, toolUsePromptTokenCount, candidatesTokenCount,
//   thoughtsTokenCount (billed as output, not included in candidatesTokenCount).
absl::StatusOr<Usage> UsageFromGemini(const nlohmann::json& report);
// DeepSeek: prompt_cache_hit_tokens, prompt_cache_miss_tokens (or prompt_tokens),
//   completion_tokens, completion_tokens_details.reasoning_tokens.
absl::StatusOr<Usage> UsageFromDeepSeek(const nlohmann::json& report);
// Picks the parser by provider name: openai, azure, mistral, together, groq, fireworks,
// openrouter, xai -> OpenAI shape; anthropic, bedrock -> Anthropic; google, gemini, vertex ->
// Gemini; deepseek -> DeepSeek. An empty provider detects the shape from the field names.
absl::StatusOr<Usage> UsageFromProvider(std::string_view provider, const nlohmann::json& report);

}  // namespace thrifty::cost

#endif  // THRIFTY_COST_USAGE_H_
