// Layout: a chat request flattened into the sequence a provider's prompt cache sees.
//
// The order is the providers' render order: tools, then system (Anthropic `system`, OpenAI
// Responses `instructions`), then messages (or Responses `input` items). Each tool, system
// block, message content block and tool call is one *block* -- the unit Anthropic's 20-block
// lookback counts. Each block's bytes (the text of a text block, canonical JSON of anything
// else, cache_control left out) are cut into *chunks* of at most kChunkBytes (before a space
// where one falls in the chunk's second half, so chunk estimates add up), and every chunk
// end carries a chained XXH3-64 hash of everything before it, seeded with the cache
// namespace. Two requests share a prefix up to a chunk iff the chunk hashes are equal.
//
// Token positions come from request::EstimateTextTokens on each chunk, plus kMessageFraming
// tokens at the start of each message, so they are prefix-stable: appending to a request
// never moves an earlier position.
//
// Thread-safety: pure functions.
#ifndef THRIFTY_PROMPT_LAYOUT_H_
#define THRIFTY_PROMPT_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "thrifty/request/token_estimate.h"

namespace thrifty::prompt {

inline constexpr size_t kChunkBytes = 256;
inline constexpr int64_t kMessageFraming = 4;

struct LayoutBlock {
  std::string label;    // where it is in the request: "tools[search]", "messages[3].content[0]"
  std::string segment;  // "tools", "system" or "messages"
  int message_index = -1;
  int64_t start_tokens = 0;
  int64_t end_tokens = 0;
  uint64_t chain = 0;       // chained hash of everything up to the end of this block
  bool breakpoint = false;  // carries cache_control (or the top-level automatic marker)
  std::string ttl;          // cache_control.ttl ("" = the provider default)
  size_t first_chunk = 0;
  size_t end_chunk = 0;  // one past the last
};

struct LayoutChunk {
  uint64_t chain = 0;
  int64_t end_tokens = 0;
  uint32_t block = 0;
};

struct Layout {
  std::vector<LayoutBlock> blocks;
  std::vector<LayoutChunk> chunks;
  int64_t total_tokens = 0;
  std::string cache_key;  // prompt_cache_key, if any
  std::string retention;  // prompt_cache_retention, if any

  int breakpoint_count() const;
};

// Accepts OpenAI Chat Completions, OpenAI Responses and Anthropic Messages requests.
// InvalidArgument when `request` is not an object or a field has the wrong type.
absl::StatusOr<Layout> LayoutRequest(const nlohmann::json& request, request::TokenizerFamily family,
                                     uint64_t seed);

}  // namespace thrifty::prompt

#endif  // THRIFTY_PROMPT_LAYOUT_H_
