// Lint for values that change between calls inside static prompt segments.
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "thrifty/base/mutex.h"
#include "thrifty/base/strings.h"
#include "thrifty/prompt/prompt_builder.h"
#include "xxhash.h"

namespace thrifty::prompt {
namespace {

struct Pattern {
  const char* kind;
  std::regex re;
};

const std::vector<Pattern>& Patterns() {
  static const auto* patterns = new std::vector<Pattern>{
      {"uuid", std::regex(R"(\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-)"
                          R"([0-9a-fA-F]{12}\b)")},
      {"date", std::regex(R"(\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
                          R"((?:Z|[+-]\d{2}:?\d{2})?)?)")},
      {"date", std::regex(R"(\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? )"
                          R"(\d{1,2}(?:st|nd|rd|th)?,? \d{4}\b)")},
      {"date", std::regex(R"(\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*)"
                          R"(\.? \d{4}\b)")},
      {"date", std::regex(R"(\b\d{1,2}/\d{1,2}/\d{2,4}\b)")},
      {"time", std::regex(R"(\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp][Mm])?\b)")},
      {"timestamp", std::regex(R"(\b1[5-9]\d{8}(?:\d{3}|\.\d+)?\b)")},
      {"random_id",
       std::regex(R"(\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{16,}\b)")},
      {"random_id", std::regex(R"(\b[a-z]{2,8}_(?=[A-Za-z0-9]*[0-9])[A-Za-z0-9]{16,}\b)")},
  };
  return *patterns;
}

bool MixesDigitsAndLetters(std::string_view s) {
  bool digit = false, letter = false;
  for (char c : s) {
    digit |= c >= '0' && c <= '9';
    letter |= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  }
  return digit && letter;
}

}  // namespace

std::vector<LintWarning> LintText(std::string_view segment, std::string_view text) {
  // Static segments are the same text on every call, and std::regex is slow on text full of
  // digits: findings are memoized by (segment, text) hash in a small process-wide table.
  static Mutex mu;
  static auto* memo ABSL_GUARDED_BY(mu) =
      new absl::flat_hash_map<uint64_t, std::vector<LintWarning>>();
  const uint64_t key =
      XXH3_64bits_withSeed(text.data(), text.size(), XXH3_64bits(segment.data(), segment.size()));
  {
    ReaderMutexLock lock(&mu);
    if (auto it = memo->find(key); it != memo->end()) return it->second;
  }
  std::vector<LintWarning> out = LintTextUncached(segment, text);
  MutexLock lock(&mu);
  if (memo->size() >= 1024) memo->clear();
  memo->emplace(key, out);
  return out;
}

std::vector<LintWarning> LintTextUncached(std::string_view segment, std::string_view text) {
  std::vector<LintWarning> out;
  // Every pattern needs a digit, so only lines holding one are searched (std::regex is slow;
  // prompts are mostly prose).
  size_t line_start = 0;
  while (line_start < text.size()) {
    size_t line_end = text.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = text.size();
    const std::string_view line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    if (line.find_first_of("0123456789") == std::string_view::npos) continue;
    std::vector<std::pair<size_t, size_t>> taken;  // a date inside a datetime is one finding
    for (const Pattern& p : Patterns()) {
      for (std::cregex_iterator it(line.data(), line.data() + line.size(), p.re), end; it != end;
           ++it) {
        const size_t begin = static_cast<size_t>(it->position(0));
        const size_t stop = begin + static_cast<size_t>(it->length(0));
        bool overlaps = false;
        for (const auto& [a, b] : taken) overlaps |= begin < b && a < stop;
        if (overlaps) continue;
        const std::string match = it->str(0);
        if (std::string_view(p.kind) == "random_id" && !MixesDigitsAndLetters(match)) continue;
        taken.emplace_back(begin, stop);
        LintWarning w;
        w.segment = std::string(segment);
        w.kind = p.kind;
        w.text = match;
        w.message = StrCat(segment, " holds a ", w.kind, " '", w.text,
                           "' that changes between calls, so the prompt cache misses from "
                           "there on; move it after the static part (move_volatile=True does)");
        out.push_back(std::move(w));
      }
    }
  }
  return out;
}

}  // namespace thrifty::prompt
