#include "thrifty/request/canonical_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "canonical_view.h"
#include "nlohmann/json.hpp"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"

namespace thrifty::request {

namespace {

// SWAR: true when any of the 8 bytes in `word` is a control character (< 0x20), '"' or '\\'.
// (Bit tricks from "Bit Twiddling Hacks": haszero(v) = (v - 0x01..) & ~v & 0x80..)
inline bool NeedsEscape8(uint64_t word) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  const uint64_t quote = word ^ (kOnes * '"');
  const uint64_t backslash = word ^ (kOnes * '\\');
  const uint64_t below_space = (word - kOnes * 0x20) & ~word;
  return (((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) | below_space) & kHighs;
}

inline bool NeedsEscape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

}  // namespace

void AppendJsonString(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run_start = 0;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    // Skip 8 clean bytes at a time; most prompt text needs no escaping at all.
    while (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, text.data() + i, sizeof(word));
      if (NeedsEscape8(word)) break;
      i += 8;
    }
    while (i < n && !NeedsEscape(static_cast<unsigned char>(text[i]))) {
      ++i;
      if ((i & 7) == 0 && i + 8 <= n) break;  // back to the 8-byte loop
    }
    if (i >= n) break;
    const auto c = static_cast<unsigned char>(text[i]);
    if (!NeedsEscape(c)) continue;
    out.append(text.data() + run_start, i - run_start);
    run_start = ++i;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default: {
        const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(escaped, sizeof(escaped));
      }
    }
  }
  out.append(text.data() + run_start, n - run_start);
  out.push_back('"');
}

bool AppendCanonicalNumber(double number, std::string& out) {
  if (!std::isfinite(number)) return false;
  char buffer[32];
  constexpr double kExactIntegerLimit = 9007199254740992.0;  // 2^53
  if (std::trunc(number) == number && std::fabs(number) < kExactIntegerLimit) {
    const auto as_integer = static_cast<int64_t>(number);  // -0.0 becomes 0
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), as_integer);
    out.append(buffer, end);
    return true;
  }
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), number);
  out.append(buffer, end);
  return true;
}

absl::Status AppendCanonicalJson(const nlohmann::json& value, std::string& out) {
  return internal::AppendCanonical<internal::NlohmannView>(&value, out);
}

absl::StatusOr<std::string> CanonicalJson(const nlohmann::json& value) {
  std::string out;
  THRIFTY_RETURN_IF_ERROR(AppendCanonicalJson(value, out));
  return out;
}

}  // namespace thrifty::request
