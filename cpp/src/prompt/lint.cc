// Lint for values that change between calls inside static prompt segments.
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "thrifty/base/strings.h"
#include "thrifty/prompt/prompt_builder.h"

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

}  // namespace

std::vector<LintWarning> LintText(std::string_view segment, std::string_view text) {
  std::vector<LintWarning> out;
  std::vector<std::pair<size_t, size_t>> taken;  // spans already reported (a date inside a
                                                 // datetime is one finding, not two)
  for (const Pattern& p : Patterns()) {
    for (std::cregex_iterator it(text.data(), text.data() + text.size(), p.re), end; it != end;
         ++it) {
      const size_t begin = static_cast<size_t>(it->position(0));
      const size_t stop = begin + static_cast<size_t>(it->length(0));
      bool overlaps = false;
      for (const auto& [a, b] : taken) overlaps |= begin < b && a < stop;
      if (overlaps) continue;
      taken.emplace_back(begin, stop);
      LintWarning w;
      w.segment = std::string(segment);
      w.kind = p.kind;
      w.text = it->str(0);
      w.message = StrCat(segment, " holds a ", w.kind, " '", w.text,
                         "' that changes between calls, so the prompt cache misses from there "
                         "on; move it after the static part (move_volatile=True does)");
      out.push_back(std::move(w));
    }
  }
  return out;
}

}  // namespace thrifty::prompt
