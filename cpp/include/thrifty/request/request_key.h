// Request keys: a stable 128-bit identity for "the same question asked the same way".
//
// The key is XXH3-128 over a versioned header, the namespace, and the canonical request:
//   * canonical JSON (see canonical_json.h): sorted keys, normalized numbers;
//   * top-level fields that cannot change the answer are dropped (kIgnoredRequestFields:
//     transport, billing, tracing and prompt-cache routing hints);
//   * Anthropic `cache_control` markers on content blocks, system blocks and tools are
//     dropped, so adding breakpoints never changes a key;
//   * a content (or system) list holding exactly one plain text block is written as the bare
//     string, so {"content": "hi"} and {"content": [{"type": "text", "text": "hi"}]} agree.
// Everything else -- model, system, messages, tools, tool_choice, temperature, top_p, seed,
// response_format, max_tokens, n, stop, unknown fields -- is part of the key: an unknown field
// is assumed to change the answer, the safe direction for a cache.
//
// Thread-safety: pure functions.
#ifndef THRIFTY_REQUEST_REQUEST_KEY_H_
#define THRIFTY_REQUEST_REQUEST_KEY_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace thrifty::request {

inline constexpr std::array<std::string_view, 12> kIgnoredRequestFields = {
    "extra_headers",     "extra_query",  "metadata", "prompt_cache_key", "prompt_cache_retention",
    "safety_identifier", "service_tier", "store",    "stream",           "stream_options",
    "timeout",           "user"};

struct Key128 {
  uint64_t high = 0;
  uint64_t low = 0;

  // 32 lower-case hex digits, high word first.
  std::string ToHex() const;
  friend bool operator==(const Key128&, const Key128&) = default;
};

// For hash maps keyed by Key128 (the key is already a hash: fold its halves).
struct Key128Hash {
  size_t operator()(const Key128& key) const {
    return key.low ^ (key.high * 0x9E3779B97F4A7C15ULL);
  }
};

// The canonical text the key is computed over (without header and namespace). Errors:
// InvalidArgument when `request` is not an object or holds a non-finite number.
absl::StatusOr<std::string> CanonicalRequest(const nlohmann::json& request);

absl::StatusOr<Key128> RequestKey(const nlohmann::json& request, std::string_view ns);

// XXH3-128 of `bytes`; exposed so other areas key blobs the same way.
Key128 HashBytes(std::string_view bytes);

}  // namespace thrifty::request

#endif  // THRIFTY_REQUEST_REQUEST_KEY_H_
