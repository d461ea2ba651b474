#include "thrifty/agent/loop_detector.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "nlohmann/json.hpp"
#include "thrifty/base/strings.h"
#include "thrifty/request/canonical_json.h"
#include "xxhash.h"

namespace thrifty::agent {
namespace {

uint64_t Hash2(std::string_view a, std::string_view b) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  const uint64_t length = a.size();
  XXH3_64bits_update(&state, &length, sizeof(length));
  XXH3_64bits_update(&state, a.data(), a.size());
  XXH3_64bits_update(&state, b.data(), b.size());
  return XXH3_64bits_digest(&state);
}

int CountIn(const std::deque<uint64_t>& items, uint64_t value) {
  return static_cast<int>(std::count(items.begin(), items.end(), value));
}

// Length of the A-B-A-B... run ending at the back, counted in full A-B cycles.
int OscillationCycles(const std::deque<uint64_t>& calls) {
  const size_t n = calls.size();
  if (n < 2 || calls[n - 1] == calls[n - 2]) return 0;
  size_t length = 2;
  while (length < n && calls[n - 1 - length] == calls[n - 1 - length + 2]) ++length;
  return static_cast<int>(length / 2);
}

LoopVerdict Escalate(int count, int warn, int refuse, int stop, const std::string& what) {
  if (count >= stop) return {LoopAction::kStop, StrCat(what, " ", count, " times: stopping")};
  if (count >= refuse) return {LoopAction::kRefuse, StrCat(what, " ", count, " times: refused")};
  if (count >= warn) return {LoopAction::kWarn, StrCat(what, " ", count, " times")};
  return {};
}

}  // namespace

absl::Status ValidateLoopPolicy(const LoopPolicy& p) {
  if (p.window < 2) {
    return absl::InvalidArgumentError(StrCat("LoopPolicy.window must be >= 2, got ", p.window));
  }
  auto ordered = [](std::string_view name, std::initializer_list<int> levels) -> absl::Status {
    int previous = 0;
    for (int level : levels) {
      if (level < 2 || level < previous) {
        return absl::InvalidArgumentError(
            StrCat("LoopPolicy.", name,
                   " levels must be >= 2 and non-decreasing (warn <= refuse <= stop)"));
      }
      previous = level;
    }
    return absl::OkStatus();
  };
  for (const absl::Status& s :
       {ordered("repeat_*", {p.repeat_warn, p.repeat_refuse, p.repeat_stop}),
        ordered("error_*", {p.error_warn, p.error_stop}),
        ordered("oscillation_*", {p.oscillation_refuse, p.oscillation_stop})}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

uint64_t LoopDetector::CallSignature(std::string_view tool, std::string_view arguments) {
  // Canonical JSON when the arguments parse, so key order and 1 vs 1.0 do not hide a repeat.
  const nlohmann::json parsed =
      nlohmann::json::parse(arguments, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_discarded()) {
    if (auto canonical = request::CanonicalJson(parsed); canonical.ok()) {
      return Hash2(tool, *canonical);
    }
  }
  return Hash2(tool, arguments);
}

std::string LoopDetector::NormalizeError(std::string_view message) {
  std::string out;
  out.reserve(std::min<size_t>(message.size(), 512));
  bool in_space = false;
  bool in_number = false;
  for (char c : message.substr(0, 512)) {
    const auto u = static_cast<unsigned char>(c);
    if (absl::ascii_isspace(u)) {
      in_space = !out.empty();
      in_number = false;
      continue;
    }
    if (in_space) out.push_back(' ');
    in_space = false;
    if (absl::ascii_isdigit(u)) {  // numbers, ids and durations vary between repeats
      if (!in_number) out.push_back('#');
      in_number = true;
      continue;
    }
    in_number = in_number && (c == '.' || absl::ascii_isxdigit(u));
    if (in_number) continue;
    out.push_back(absl::ascii_tolower(u));
  }
  return out;
}

LoopVerdict LoopDetector::OnToolCall(std::string_view tool, std::string_view arguments) {
  if (!policy_.enabled) return {};
  calls_.push_back(CallSignature(tool, arguments));
  while (static_cast<int>(calls_.size()) > policy_.window) calls_.pop_front();
  const LoopVerdict repeat =
      Escalate(CountIn(calls_, calls_.back()), policy_.repeat_warn, policy_.repeat_refuse,
               policy_.repeat_stop, StrCat("tool '", tool, "' called with the same arguments"));
  const int cycles = OscillationCycles(calls_);
  LoopVerdict oscillation;
  if (cycles >= policy_.oscillation_stop) {
    oscillation = {LoopAction::kStop, StrCat("tool calls oscillate between two calls for ", cycles,
                                             " cycles: stopping")};
  } else if (cycles >= policy_.oscillation_refuse) {
    oscillation = {LoopAction::kRefuse, StrCat("tool calls oscillate between two calls for ",
                                               cycles, " cycles: refused")};
  }
  return oscillation.action > repeat.action ? oscillation : repeat;
}

LoopVerdict LoopDetector::OnToolError(std::string_view tool, std::string_view message) {
  if (!policy_.enabled) return {};
  errors_.push_back(Hash2(tool, NormalizeError(message)));
  while (static_cast<int>(errors_.size()) > policy_.window) errors_.pop_front();
  const int count = CountIn(errors_, errors_.back());
  const std::string what = StrCat("tool '", tool, "' failed with the same error");
  if (count >= policy_.error_stop) {
    return {LoopAction::kStop, StrCat(what, " ", count, " times: stopping")};
  }
  if (count >= policy_.error_warn) return {LoopAction::kWarn, StrCat(what, " ", count, " times")};
  return {};
}

}  // namespace thrifty::agent
