#include "thrifty/route/features.h"

#include <algorithm>
#include <array>
#include <bit>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "thrifty/base/strings.h"
#include "thrifty/request/token_estimate.h"
#include "xxhash.h"

namespace thrifty::route {
namespace {

using nlohmann::json;

// Classification looks at most this many characters (head and tail) of a message.
constexpr size_t kClassifyChars = 16384;

// Keyword sets; docs/router.md repeats them. Lower-case, matched as substrings.
constexpr std::string_view kCodeSignals[] = {
    "def ",    "#include",   "function(",  "function ",     "=>",        "class ",    "import ",
    "return ", "select ",    " from ",     "public static", "console.",  "printf",    "std::",
    "python",  "javascript", "typescript", "java ",         "c++",       "rust",      "golang",
    "sql",     "regex",      "compile",    "stack trace",   "traceback", "exception", "bug",
    "code",    "script",     "api ",       "json.",         "npm ",      "pip ",      "git "};
constexpr std::string_view kMathSignals[] = {
    "solve",       "equation", "integral",  "derivative", "probability", "calculate",  "compute",
    "how many",    "how much", "sum of",    "product of", "percent",     "fraction",   "sqrt",
    "square root", "prime",    "divisible", "theorem",    "matrix",      "polynomial", "x =",
    "remainder",   "average",  "ratio",     "geometry",   "triangle",    "math"};
constexpr std::string_view kLatexSignals[] = {"\\frac", "\\int", "\\sum", "\\sqrt",
                                              "$$",     "\\(",   "\\["};
constexpr std::string_view kExtractionSignals[] = {
    "extract", "summarize", "summarise",   "summary",    "json",
    "fields",  "classify",  "list all",    "categorize", "from the following",
    "parse",   "tag the",   "named entit", "sentiment",  "key points",
    "tl;dr",   "fill in",   "table"};
constexpr std::string_view kReasoningSignals[] = {"why",
                                                  "explain",
                                                  "step by step",
                                                  "prove",
                                                  "which of the following",
                                                  "reason",
                                                  "logic",
                                                  "infer",
                                                  "deduce",
                                                  "conclude",
                                                  "implies",
                                                  "analy",
                                                  "compare",
                                                  "what would happen",
                                                  "most likely",
                                                  "best explains",
                                                  "true or false",
                                                  "a)",
                                                  "(a)",
                                                  "answer:"};

enum SignalSet { kCodeSet, kMathSet, kLatexSet, kExtractionSet, kReasoningSet, kSignalSets };

// How many distinct signals of each keyword set occur in a text, found in one pass: signals are
// indexed by their first two bytes (each has at least two), so most positions cost one bit test
// (a search per signal read the text a hundred times).
class SignalMatcher {
 public:
  SignalMatcher() {
    Add(kCodeSet, kCodeSignals);
    Add(kMathSet, kMathSignals);
    Add(kLatexSet, kLatexSignals);
    Add(kExtractionSet, kExtractionSignals);
    Add(kReasoningSet, kReasoningSignals);
  }

  std::array<size_t, kSignalSets> Count(std::string_view text) const {
    std::array<uint64_t, kSignalSets> found{};
    for (size_t i = 0; i + 1 < text.size(); ++i) {
      const uint16_t pair = Pair(text[i], text[i + 1]);
      if (((present_[pair >> 6] >> (pair & 63)) & 1) == 0) continue;
      for (const Entry& e : by_pair_.at(pair)) {
        if ((found[e.set] >> e.index) & 1) continue;
        if (text.compare(i, e.signal.size(), e.signal) == 0) found[e.set] |= uint64_t{1} << e.index;
      }
    }
    std::array<size_t, kSignalSets> counts{};
    for (size_t set = 0; set < kSignalSets; ++set) counts[set] = std::popcount(found[set]);
    return counts;
  }

 private:
  struct Entry {
    std::string_view signal;
    int set;
    int index;
  };
  static uint16_t Pair(char a, char b) {
    return static_cast<uint16_t>((static_cast<unsigned char>(a) << 8) |
                                 static_cast<unsigned char>(b));
  }
  void Add(SignalSet set, std::span<const std::string_view> signals) {
    for (size_t i = 0; i < signals.size(); ++i) {
      const uint16_t pair = Pair(signals[i][0], signals[i][1]);
      present_[pair >> 6] |= uint64_t{1} << (pair & 63);
      by_pair_[pair].push_back({signals[i], set, static_cast<int>(i)});
    }
  }
  std::array<uint64_t, 1024> present_{};  // one bit per two-byte prefix
  absl::flat_hash_map<uint16_t, std::vector<Entry>> by_pair_;
};

std::array<size_t, kSignalSets> CountSignals(std::string_view text) {
  static const SignalMatcher* const kMatcher = new SignalMatcher();
  return kMatcher->Count(text);
}

// Arithmetic such as "12 * 7" or "3+4": a digit, optional spaces, an operator, a digit.
bool HasArithmetic(std::string_view text) {
  for (size_t i = 0; i + 2 < text.size(); ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) continue;
    size_t j = i + 1;
    while (j < text.size() && text[j] == ' ') ++j;
    if (j >= text.size() || std::string_view("+-*/^=").find(text[j]) == std::string_view::npos) {
      continue;
    }
    ++j;
    while (j < text.size() && text[j] == ' ') ++j;
    if (j < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[j]))) return true;
  }
  return false;
}

// Lines ending in ';' or '{': statements and blocks.
size_t CodeLines(std::string_view text) {
  size_t count = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    size_t last = end;
    while (last > pos && (text[last - 1] == ' ' || text[last - 1] == '\r')) --last;
    if (last > pos && (text[last - 1] == ';' || text[last - 1] == '{')) ++count;
    pos = end + 1;
  }
  return count;
}

std::string Lowered(std::string_view text) {
  std::string out;
  if (text.size() <= kClassifyChars) {
    out.assign(text);
  } else {
    out.assign(text.substr(0, kClassifyChars / 2));
    out += '\n';
    out.append(text.substr(text.size() - kClassifyChars / 2));
  }
  absl::AsciiStrToLower(&out);
  return out;
}

// The text of a message's content: a string, or the "text" of its text parts.
void AppendContentText(const json& content, std::string& out) {
  if (content.is_string()) {
    out += content.get_ref<const std::string&>();
    return;
  }
  if (!content.is_array()) return;
  for (const json& part : content) {
    if (part.is_string()) {
      out += part.get_ref<const std::string&>();
    } else if (part.is_object()) {
      auto text = part.find("text");
      if (text != part.end() && text->is_string()) {
        if (!out.empty()) out += '\n';
        out += text->get_ref<const std::string&>();
      }
    }
  }
}

// Cuts `text` to its head and tail (FeatureOptions), on UTF-8 boundaries.
std::string HeadTail(std::string_view text, size_t head, size_t tail) {
  if ((head == 0 && tail == 0) || text.size() <= head + tail) return std::string(text);
  auto boundary = [&](size_t pos) {
    while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
    return pos;
  };
  const size_t head_end = boundary(head);
  const size_t tail_begin = boundary(text.size() - tail);
  std::string out(text.substr(0, head_end));
  if (head_end > 0 && tail_begin < text.size()) out += "\n";
  out.append(text.substr(tail_begin));
  return out;
}

}  // namespace

std::string_view CategoryName(Category category) {
  switch (category) {
    case Category::kChat:
      return "chat";
    case Category::kCode:
      return "code";
    case Category::kMath:
      return "math";
    case Category::kReasoning:
      return "reasoning";
    case Category::kExtraction:
      return "extraction";
    case Category::kLongContext:
      return "long_context";
  }
  return "chat";
}

absl::StatusOr<Category> ParseCategory(std::string_view name) {
  for (Category c : kAllCategories) {
    if (CategoryName(c) == name) return c;
  }
  return absl::InvalidArgumentError(
      ToAbsl(StrCat("unknown request category '", name,
                    "'; accepted: chat, code, math, reasoning, extraction, long_context")));
}

// The system prompt's code signals, remembered per thread by the prompt's hash: the same system
// prompt comes with call after call, and scanning it is most of Classify's work.
size_t SystemCodeSignals(std::string_view system_text) {
  if (system_text.empty()) return 0;
  thread_local absl::flat_hash_map<uint64_t, size_t> memo;
  const uint64_t key = XXH3_64bits(system_text.data(), system_text.size());
  if (auto it = memo.find(key); it != memo.end()) return it->second;
  if (memo.size() >= 4096) memo.clear();
  const size_t count = CountSignals(Lowered(system_text))[kCodeSet];
  memo.emplace(key, count);
  return count;
}

Category Classify(std::string_view user_text, std::string_view system_text, int64_t input_tokens,
                  const FeatureOptions& options) {
  if (input_tokens >= options.long_context_tokens) return Category::kLongContext;
  const std::string user = Lowered(user_text);
  const std::array<size_t, kSignalSets> signals = CountSignals(user);
  const size_t code =
      signals[kCodeSet] + SystemCodeSignals(system_text) / 2 + std::min<size_t>(CodeLines(user), 2);
  if (user.find("```") != std::string::npos || code >= 2) return Category::kCode;
  const size_t math = signals[kMathSet] + (HasArithmetic(user) ? 1 : 0);
  if (signals[kLatexSet] > 0 || math >= 2) return Category::kMath;
  if (signals[kExtractionSet] > 0) return Category::kExtraction;
  if (signals[kReasoningSet] > 0) return Category::kReasoning;
  return Category::kChat;
}

absl::StatusOr<RequestFeatures> ExtractFeatures(const json& input, const FeatureOptions& options) {
  RequestFeatures features;
  if (input.is_string()) {
    features.prompt_request_ = json::object();
    features.prompt_request_["messages"] =
        json::array({json{{"role", "user"}, {"content", input}}});
  } else if (input.is_object()) {
    features.input_ = &input;
  } else {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("a router input must be a prompt (str) or a request object (OpenAI chat or "
                      "Anthropic messages), got ",
                      input.type_name())));
  }
  const json& request = features.request();
  absl::StatusOr<request::RequestTokenFeatures> tokens =
      request::ExtractRequestTokenFeatures(request);
  if (!tokens.ok()) return tokens.status();
  features.token_features = *tokens;
  features.input_tokens =
      request::RequestTokens(features.token_features, request::TokenizerFamily::kO200k);

  std::string user;
  std::string system;
  if (auto it = request.find("system"); it != request.end()) AppendContentText(*it, system);
  if (auto it = request.find("input"); it != request.end() && it->is_string()) {
    user = it->get_ref<const std::string&>();
  }
  for (const char* list : {"messages", "input"}) {
    auto it = request.find(list);
    if (it == request.end() || !it->is_array()) continue;
    for (const json& message : *it) {
      if (!message.is_object()) continue;
      auto role = message.find("role");
      auto content = message.find("content");
      if (role == message.end() || !role->is_string() || content == message.end()) continue;
      const std::string& r = role->get_ref<const std::string&>();
      if (r == "user") {
        user.clear();
        AppendContentText(*content, user);
      } else if (r == "system" || r == "developer") {
        AppendContentText(*content, system);
      }
    }
  }
  features.category = Classify(user, system, features.input_tokens, options);
  features.embed_text = HeadTail(user, options.embed_head_chars, options.embed_tail_chars);
  return features;
}

}  // namespace thrifty::route
