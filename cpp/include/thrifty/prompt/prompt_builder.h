// PromptBuilder: assembles a chat request so that the provider's prompt cache hits.
//
// Segments, in the order the prompt is rendered whatever order they were added in:
//   tools, system, documents   static: identical bytes on every call
//   history                    grows by appending; earlier turns never change
//   user (+ moved volatile)    the new turn, last
// Build() serializes canonically (tools sorted by name, JSON keys sorted, tool-call arguments
// re-serialized as canonical JSON), so the static prefix is byte-identical across turns and
// processes whatever order the application passed things in. Then, from the provider's rules
// in the catalog:
//   * explicit caching (Anthropic): cache_control breakpoints, at most max_breakpoints, none
//     on a prefix under the model's minimum: one at the end of the static prefix (the longer
//     TTL when requests are further apart than the short TTL and the write pays for itself),
//     one on the last block when a follow-up call is expected (its next turn reads
//     everything), and anchors at fixed multiples of (lookback_blocks - 5) message blocks so a
//     write is always found within the lookback window. Every breakpoint is kept only if
//     expected_reads * tokens * (input - read price) exceeds its write premium. Positions
//     depend only on the prefix, so they are stable across turns.
//   * automatic caching with a cache key (OpenAI): prompt_cache_key = a hash of the model and
//     the static prefix, optionally sharded ("-k") so one key stays under cache_key_rpm.
// Lint: dates, times, Unix timestamps, UUIDs and random-looking ids in static segments warn
// (segment and text named); with move_volatile the lines holding them move to the tail.
//
// Thread-safety: thread-compatible (a builder is used by one thread; Build() is const).
#ifndef THRIFTY_PROMPT_PROMPT_BUILDER_H_
#define THRIFTY_PROMPT_PROMPT_BUILDER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "thrifty/catalog/catalog.h"

namespace thrifty::prompt {

enum class Api { kChatCompletions, kResponses, kMessages };
std::string_view ApiName(Api api);
// "chat.completions" | "chat" | "responses" | "messages".
absl::StatusOr<Api> ParseApi(std::string_view name);

struct PlanOptions {
  // TTL for the static prefix: "auto" (chosen from request_interval_s and prices) or a TTL
  // name of the provider ("5m", "1h").
  std::string ttl = "auto";
  // Expected seconds between requests that share the static prefix.
  double request_interval_s = 30;
  // Expected later requests that reuse the static prefix (for the write/read trade-off).
  double expected_reuse = 10;
  // Whether a follow-up call extends this conversation: -1 auto (history or tools present),
  // 0 no, 1 yes. Decides the breakpoint on the last block.
  int followup = -1;
  // -1 = the provider's limit; asking for more than the limit is an error.
  int max_breakpoints = -1;
  bool move_volatile = false;
  // prompt_cache_key sharding: shards = max(cache_key_shards, ceil(expected_rpm / rpm limit)).
  int cache_key_shards = 1;
  double expected_rpm = 0;
  std::string session;        // what picks the shard ("" = the first user turn)
  int64_t max_tokens = 1024;  // Anthropic requires max_tokens; used when the request has none
};

struct LintWarning {
  std::string segment;  // "system[0]", "documents[2]", "tools[search].description"
  std::string kind;     // date, time, timestamp, uuid, random_id
  std::string text;     // the offending text
  bool moved = false;   // moved to the tail (move_volatile)
  std::string message;
};

struct PlannedBreakpoint {
  std::string label;   // the block carrying cache_control
  int block = 0;       // its index in render order
  int64_t tokens = 0;  // prefix length up to and including it
  std::string ttl;
  std::string why;  // static_prefix, conversation_tail, anchor
};

struct Plan {
  Api api = Api::kChatCompletions;
  nlohmann::json request;  // kwargs for the SDK call of `api`
  std::vector<PlannedBreakpoint> breakpoints;
  int64_t prompt_tokens = 0;     // estimated
  int64_t static_tokens = 0;     // estimated tokens of tools + system + documents
  int64_t cacheable_tokens = 0;  // what a following request sharing the prefix could read
  std::vector<LintWarning> warnings;
  std::string cache_key;  // prompt_cache_key, if set
};

class PromptBuilder {
 public:
  // NotFound for an unknown provider or model; InvalidArgument when the model belongs to
  // another provider or max_breakpoints exceeds the provider's limit.
  static absl::StatusOr<PromptBuilder> Create(std::shared_ptr<const catalog::Catalog> catalog,
                                              std::string_view provider, std::string_view model,
                                              PlanOptions options = {});
  // The same conversation as `request` (OpenAI chat / responses or Anthropic messages
  // kwargs): leading system messages become the system segment, the last user message the
  // user turn, everything between the history; other fields are kept. Build() defaults to the
  // request's own API.
  static absl::StatusOr<PromptBuilder> FromRequest(std::shared_ptr<const catalog::Catalog> catalog,
                                                   std::string_view provider,
                                                   std::string_view model,
                                                   const nlohmann::json& request,
                                                   PlanOptions options = {});

  // Tool definitions in OpenAI chat, OpenAI responses or Anthropic form; schemas must be
  // JSON objects and names unique.
  absl::Status AddTools(const nlohmann::json& tools);
  absl::Status AddSystem(std::string text);
  absl::Status AddDocuments(const std::vector<std::string>& documents);
  // Messages in OpenAI chat or Anthropic form.
  absl::Status AddHistory(const nlohmann::json& messages);
  // A string or a list of content blocks. Nothing may be added after it.
  absl::Status AddUser(const nlohmann::json& content);

  // `api` empty = the request's own API (FromRequest) or the provider's usual one.
  absl::StatusOr<Plan> Build(std::optional<Api> api = std::nullopt) const;

  const PlanOptions& options() const { return options_; }
  PlanOptions& mutable_options() { return options_; }

  // Public for the implementation's helpers; not part of the API.
  struct Block {
    std::string type;  // text, tool_use, tool_result, raw
    std::string text;
    std::string id;        // tool_use id / tool_result tool_use_id
    std::string name;      // tool_use name
    nlohmann::json input;  // tool_use input (object) or tool_result content
    bool is_error = false;
    nlohmann::json raw;  // anything else, as given
  };
  struct Message {
    std::string role;  // user, assistant, system
    std::vector<Block> blocks;
  };
  struct Tool {
    std::string name;
    std::string description;
    nlohmann::json schema;  // object
    nlohmann::json extra;   // other fields (strict, ...), or a raw server tool
    bool raw = false;
  };

 private:
  PromptBuilder() = default;
  absl::Status CheckNotAfterUser(std::string_view what) const;

  std::shared_ptr<const catalog::Catalog> catalog_;
  const catalog::ProviderCacheRules* rules_ = nullptr;
  const catalog::ModelSpec* model_ = nullptr;
  PlanOptions options_;
  std::optional<Api> source_api_;
  nlohmann::json passthrough_ = nlohmann::json::object();

  std::vector<Tool> tools_;
  std::vector<std::string> system_;
  std::vector<std::string> documents_;
  std::vector<Message> history_;
  std::optional<Message> user_;
};

// Lint of one static text: every date, time, timestamp, UUID or random-looking id.
std::vector<LintWarning> LintText(std::string_view segment, std::string_view text);

}  // namespace thrifty::prompt

#endif  // THRIFTY_PROMPT_PROMPT_BUILDER_H_
