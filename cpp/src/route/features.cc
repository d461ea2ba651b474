#include "thrifty/route/features.h"

#include <algorithm>
#include <span>
#include <string>

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

size_t CountSignals(std::string_view text, std::span<const std::string_view> signals) {
  size_t count = 0;
  for (std::string_view s : signals) {
    if (text.find(s) != std::string_view::npos) ++count;
  }
  return count;
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
  const size_t count = CountSignals(Lowered(system_text), kCodeSignals);
  memo.emplace(key, count);
  return count;
}

Category Classify(std::string_view user_text, std::string_view system_text, int64_t input_tokens,
                  const FeatureOptions& options) {
  if (input_tokens >= options.long_context_tokens) return Category::kLongContext;
  const std::string user = Lowered(user_text);
  const size_t code = CountSignals(user, kCodeSignals) + SystemCodeSignals(system_text) / 2 +
                      std::min<size_t>(CodeLines(user), 2);
  if (user.find("```") != std::string::npos || code >= 2) return Category::kCode;
  const size_t math = CountSignals(user, kMathSignals) + (HasArithmetic(user) ? 1 : 0);
  if (CountSignals(user, kLatexSignals) > 0 || math >= 2) return Category::kMath;
  if (CountSignals(user, kExtractionSignals) > 0) return Category::kExtraction;
  if (CountSignals(user, kReasoningSignals) > 0) return Category::kReasoning;
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
