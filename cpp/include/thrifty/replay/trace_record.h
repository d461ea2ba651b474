// TraceRecord: one logged LLM call of a replay trace (docs/trace_format.md), parsed and checked.
//
// A trace is JSONL, one call a line:
//   {"id", "ts" (seconds), "namespace", "tags": {..}, "request": {OpenAI chat or Anthropic
//    messages shape, with "model"}, "response": {"text", "tool_calls", "usage", "provider",
//    "model"}, "labels": {model: {"quality", "output_tokens", "cost_usd"}}}
// Required: ts and request (an object with a string "model" and a "messages" array). Everything
// else is optional. The Python reader (thrifty/trace.py) applies the same rules.
//
// Thread-safety: a plain value type (thread-compatible); ParseTraceRecord is a pure function.
#ifndef THRIFTY_REPLAY_TRACE_RECORD_H_
#define THRIFTY_REPLAY_TRACE_RECORD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "thrifty/cost/usage.h"

namespace thrifty::replay {

// What a labeller measured for one model on this request (counterfactual routing).
struct ModelLabel {
  std::optional<double> quality;  // in [0, 1]
  std::optional<int64_t> output_tokens;
  std::optional<double> cost_usd;  // what the call cost (or would have cost) on this model
};

struct TraceRecord {
  std::string id;
  double ts = 0.0;
  std::string ns;
  std::string model;     // request.model: the model that was called
  std::string provider;  // response.provider, or "anthropic"/"openai" from the request's shape
  nlohmann::json request;
  std::optional<cost::Usage> usage;  // response.usage as the provider reported it, normalized
  std::string category;              // tags.category when it is a string
  std::string intent;                // tags.intent when it is a string (see docs)
  std::vector<std::pair<std::string, std::string>> tags;  // the string-valued tags, in order
  std::vector<std::pair<std::string, ModelLabel>> labels;

  const ModelLabel* Label(std::string_view model) const;
};

// Parses one trace line. `where` prefixes error messages (usually "file:line"); errors are
// InvalidArgument and name the field and what is accepted.
absl::StatusOr<TraceRecord> ParseTraceRecord(std::string_view line, std::string_view where);

// The text of the request's final user message (string content, or its text blocks joined by
// newlines); empty when the last message is not from the user (tool results, assistant prefill).
std::string FinalUserText(const nlohmann::json& request);

}  // namespace thrifty::replay

#endif  // THRIFTY_REPLAY_TRACE_RECORD_H_
