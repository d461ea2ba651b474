// Request features for routing: the text the embedder sees, the request category, and the
// input-token estimate, all from cheap features of one request (no model call).
//
// A router input is either a prompt (a JSON string) or an OpenAI-chat / Anthropic-messages
// request (a JSON object). A prompt is treated as a request with one user message.
//
// Category rules (first match wins; docs/router.md lists the keyword sets):
//   long_context  estimated input tokens (o200k) >= long_context_tokens (default 8000);
//   code          a code fence, or >= 2 code signals (keywords such as "def ", "#include",
//                 "function(", "SELECT ... FROM", lines ending in ';' or '{', "python",
//                 "javascript", "compile", "stack trace", ...);
//   math          LaTeX (\frac, $...$, \int), or >= 2 math signals ("solve", "equation",
//                 "integral", "probability", "calculate", arithmetic like "12 * 7", ...);
//   extraction    >= 1 extraction signal ("extract", "summarize", "json", "fields",
//                 "classify", "list all", "from the following text", ...);
//   reasoning     >= 1 reasoning signal ("why", "explain", "step by step", "prove",
//                 "which of the following", multiple-choice options "A)" .. "D)", ...);
//   chat          everything else.
// The signals are counted on the last user message (plus the system prompt for code);
// matching is ASCII-case-insensitive.
//
// Thread-safety: pure functions.
#ifndef THRIFTY_ROUTE_FEATURES_H_
#define THRIFTY_ROUTE_FEATURES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "thrifty/request/token_estimate.h"

namespace thrifty::route {

enum class Category : uint8_t { kChat, kCode, kMath, kReasoning, kExtraction, kLongContext };
inline constexpr size_t kNumCategories = 6;
inline constexpr std::array<Category, kNumCategories> kAllCategories = {
    Category::kChat,      Category::kCode,       Category::kMath,
    Category::kReasoning, Category::kExtraction, Category::kLongContext};

// "chat", "code", "math", "reasoning", "extraction", "long_context" (the policy's keys).
std::string_view CategoryName(Category category);
// The category named `name`, or InvalidArgument listing the accepted names.
absl::StatusOr<Category> ParseCategory(std::string_view name);

struct FeatureOptions {
  int64_t long_context_tokens = 8000;
  // The embedder sees the last user message, cut to its first `embed_head_chars` and last
  // `embed_tail_chars` characters when longer (few-shot prompts put the question last; long
  // pastes put the instruction first). 0 for both: the whole message.
  size_t embed_head_chars = 256;
  size_t embed_tail_chars = 1024;
};

struct RequestFeatures {
  // The input as a request object: the input itself when it is one (referenced, not copied:
  // the input must outlive these features), else the prompt as
  // {"messages":[{"role":"user","content":p}]}.
  const nlohmann::json& request() const { return input_ != nullptr ? *input_ : prompt_request_; }
  std::string embed_text;  // what the embedder sees (see FeatureOptions)
  Category category = Category::kChat;
  int64_t input_tokens = 0;                      // o200k estimate of the whole request
  request::RequestTokenFeatures token_features;  // for the other tokenizer families' estimates

 private:
  friend absl::StatusOr<RequestFeatures> ExtractFeatures(const nlohmann::json& input,
                                                         const FeatureOptions& options);
  const nlohmann::json* input_ = nullptr;
  nlohmann::json prompt_request_;
};

// Features of one router input; InvalidArgument when it is neither a string nor a request
// object, or the request is malformed (the message says which field).
absl::StatusOr<RequestFeatures> ExtractFeatures(const nlohmann::json& input,
                                                const FeatureOptions& options = {});

// The category of a request from its last user message, its system prompt and its size.
Category Classify(std::string_view user_text, std::string_view system_text, int64_t input_tokens,
                  const FeatureOptions& options = {});

}  // namespace thrifty::route

#endif  // THRIFTY_ROUTE_FEATURES_H_
