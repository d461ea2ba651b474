// Fast token estimates, for budgeting and routing before a request is sent.
//
// The estimator scans UTF-8 once, splitting text roughly as BPE pre-tokenizers do (letter runs
// with their leading space, digit groups, punctuation, whitespace, non-ASCII code points), and
// sums per-piece costs calibrated against real tokenizers (scripts/calibrate_token_estimate.py;
// error measured by benchmarks/bench_token_estimate.py). It never allocates.
//
// Families: kO200k (GPT-4o, 4.1, 5, o-series) and kCl100k (GPT-4, 3.5) are calibrated against
// the real vocabularies. Other vendors publish no offline tokenizer: kClaude, kGemini and
// kOther scale the o200k estimate by a documented factor and are NOT measured.
//
// Thread-safety: pure functions.
#ifndef THRIFTY_REQUEST_TOKEN_ESTIMATE_H_
#define THRIFTY_REQUEST_TOKEN_ESTIMATE_H_

#include <array>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace thrifty::request {

enum class TokenizerFamily { kO200k, kCl100k, kClaude, kGemini, kOther };

// The family a model name most likely uses ("gpt-4o-mini" -> kO200k, "claude-..." -> kClaude).
TokenizerFamily FamilyForModel(std::string_view model);
std::string_view FamilyName(TokenizerFamily family);

// Features the estimate is linear in; exposed for calibration.
inline constexpr size_t kTokenTableWords = 14;

struct TokenFeatures {
  std::array<double, kTokenTableWords + 1> word_counts{};  // letter runs by length (capped)
  double digit_groups = 0;                                 // runs of digits, in groups of 3
  double punct_runs = 0;                                   // runs of ASCII punctuation
  double punct_chars = 0;                                  // ASCII punctuation characters
  double newline_runs = 0;                                 // whitespace runs holding a newline
  double space_runs = 0;       // other whitespace runs not absorbed by the next word
  double cjk_chars = 0;        // Han, kana, Hangul code points
  double other_chars = 0;      // other non-ASCII code points
  double long_word_chars = 0;  // letters beyond the capped length (identifiers, base64)
};

TokenFeatures ExtractTokenFeatures(std::string_view text);

int64_t EstimateTextTokens(std::string_view text, TokenizerFamily family);

// Tokens a chat request will bill as its prompt: message contents, roles and names, per-message
// framing, tool definitions (canonical JSON) and images (a fixed 765 each: OpenAI high detail at
// 1024x1024). Accepts OpenAI chat and Anthropic messages shapes.
absl::StatusOr<int64_t> EstimateRequestTokens(const nlohmann::json& request,
                                              TokenizerFamily family);

// A request's estimate for every tokenizer family from one pass over it: the estimate is linear
// in the text features, so the features of all the request's texts are summed once and each
// family applies its own weights (RequestTokens). RequestTokens(ExtractRequestTokenFeatures(r),
// f) == EstimateRequestTokens(r, f).
struct RequestTokenFeatures {
  TokenFeatures text;  // summed over every text of the request
  double framing = 0;  // per-request, per-message, per-tool and per-image tokens
};
absl::StatusOr<RequestTokenFeatures> ExtractRequestTokenFeatures(const nlohmann::json& request);
int64_t RequestTokens(const RequestTokenFeatures& features, TokenizerFamily family);

}  // namespace thrifty::request

#endif  // THRIFTY_REQUEST_TOKEN_ESTIMATE_H_
