// The canonical-form writers of canonical_json.h and request_key.h as templates over a "view"
// of a parsed JSON value, so one set of rules serves both nlohmann::json (the public API) and
// simdjson's DOM (the replay's hot path, which never builds an nlohmann value).
//
// A view is a struct of static functions over a cheap handle `Ref`:
//   JsonKind Kind(Ref);  bool Bool(Ref);  int64_t Int(Ref);  uint64_t Uint(Ref);
//   double Double(Ref);  std::string_view String(Ref);  size_t Size(Ref) (arrays);
//   bool Find(Ref object, std::string_view key, Ref* out);
//   absl::Status ForEachElement(Ref array, F f)           f(Ref) -> absl::Status
//   absl::Status ForEachMemberSorted(Ref object, F f)     f(std::string_view key, Ref) -> Status,
//       in bytewise key order; a view whose objects can hold a key twice returns
//       kDuplicateKeyMessage as an InvalidArgument error (nlohmann keeps the last one; the
//       caller decides).
//   const char* TypeName(Ref).
// The rules themselves are documented in canonical_json.h and request_key.h.
//
// Thread-safety: pure functions.
#ifndef THRIFTY_SRC_REQUEST_CANONICAL_VIEW_H_
#define THRIFTY_SRC_REQUEST_CANONICAL_VIEW_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"
#include "thrifty/request/canonical_json.h"
#include "thrifty/request/request_key.h"

namespace thrifty::request::internal {

enum class JsonKind { kNull, kBool, kInt, kUint, kDouble, kString, kArray, kObject, kOther };

inline constexpr std::string_view kDuplicateKeyMessage = "an object holds the same key twice";

inline bool IsDuplicateKeyError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument &&
         FromAbsl(status.message()).find(kDuplicateKeyMessage) != std::string_view::npos;
}

struct NlohmannView {
  using Ref = const nlohmann::json*;
  static JsonKind Kind(Ref v) {
    using Type = nlohmann::json::value_t;
    switch (v->type()) {
      case Type::null:
        return JsonKind::kNull;
      case Type::boolean:
        return JsonKind::kBool;
      case Type::number_integer:
        return JsonKind::kInt;
      case Type::number_unsigned:
        return JsonKind::kUint;
      case Type::number_float:
        return JsonKind::kDouble;
      case Type::string:
        return JsonKind::kString;
      case Type::array:
        return JsonKind::kArray;
      case Type::object:
        return JsonKind::kObject;
      default:
        return JsonKind::kOther;
    }
  }
  static bool Bool(Ref v) { return v->get<bool>(); }
  static int64_t Int(Ref v) { return v->get<int64_t>(); }
  static uint64_t Uint(Ref v) { return v->get<uint64_t>(); }
  static double Double(Ref v) { return v->get<double>(); }
  static std::string_view String(Ref v) { return v->get_ref<const std::string&>(); }
  static size_t Size(Ref v) { return v->size(); }
  static const char* TypeName(Ref v) { return v->type_name(); }
  static bool Find(Ref object, std::string_view key, Ref* out) {
    auto it = object->find(key);
    if (it == object->end()) return false;
    *out = &*it;
    return true;
  }
  template <typename F>
  static absl::Status ForEachElement(Ref array, F&& f) {
    for (const nlohmann::json& element : *array) THRIFTY_RETURN_IF_ERROR(f(&element));
    return absl::OkStatus();
  }
  // nlohmann::json objects are std::map<std::string, ...>: iteration is already sorted.
  template <typename F>
  static absl::Status ForEachMemberSorted(Ref object, F&& f) {
    for (const auto& [key, element] : object->items()) {
      THRIFTY_RETURN_IF_ERROR(f(std::string_view(key), &element));
    }
    return absl::OkStatus();
  }
};

// Canonical JSON of any value (canonical_json.h's rules).
template <typename V>
absl::Status AppendCanonical(typename V::Ref value, std::string& out) {
  switch (V::Kind(value)) {
    case JsonKind::kNull:
      out.append("null");
      return absl::OkStatus();
    case JsonKind::kBool:
      out.append(V::Bool(value) ? "true" : "false");
      return absl::OkStatus();
    case JsonKind::kInt:
      StrAppend(&out, V::Int(value));
      return absl::OkStatus();
    case JsonKind::kUint:
      StrAppend(&out, V::Uint(value));
      return absl::OkStatus();
    case JsonKind::kDouble:
      if (!AppendCanonicalNumber(V::Double(value), out)) {
        return absl::InvalidArgumentError(
            StrCat("JSON number must be finite, got ", V::Double(value)));
      }
      return absl::OkStatus();
    case JsonKind::kString:
      AppendJsonString(V::String(value), out);
      return absl::OkStatus();
    case JsonKind::kArray: {
      out.push_back('[');
      bool first = true;
      THRIFTY_RETURN_IF_ERROR(V::ForEachElement(value, [&](typename V::Ref element) {
        if (!first) out.push_back(',');
        first = false;
        return AppendCanonical<V>(element, out);
      }));
      out.push_back(']');
      return absl::OkStatus();
    }
    case JsonKind::kObject: {
      out.push_back('{');
      bool first = true;
      THRIFTY_RETURN_IF_ERROR(
          V::ForEachMemberSorted(value, [&](std::string_view key, typename V::Ref element) {
            if (!first) out.push_back(',');
            first = false;
            AppendJsonString(key, out);
            out.push_back(':');
            return AppendCanonical<V>(element, out);
          }));
      out.push_back('}');
      return absl::OkStatus();
    }
    case JsonKind::kOther:
      break;
  }
  return absl::InvalidArgumentError("binary or discarded JSON values have no canonical form");
}

// ---- request_key.h's rules ----

inline bool IsIgnoredTopLevel(std::string_view key) {
  for (std::string_view ignored : kIgnoredRequestFields) {
    if (key == ignored) return true;
  }
  return false;
}

// An object written with its `cache_control` member dropped (content blocks, tools).
template <typename V>
absl::Status AppendWithoutCacheControl(typename V::Ref object, std::string& out) {
  if (V::Kind(object) != JsonKind::kObject) return AppendCanonical<V>(object, out);
  out.push_back('{');
  bool first = true;
  THRIFTY_RETURN_IF_ERROR(
      V::ForEachMemberSorted(object, [&](std::string_view key, typename V::Ref element) {
        if (key == "cache_control") return absl::OkStatus();
        if (!first) out.push_back(',');
        first = false;
        AppendJsonString(key, out);
        out.push_back(':');
        return AppendCanonical<V>(element, out);
      }));
  out.push_back('}');
  return absl::OkStatus();
}

// The text of a block list that is exactly one plain text block.
template <typename V>
std::optional<std::string_view> SingleTextBlock(typename V::Ref blocks) {
  if (V::Kind(blocks) != JsonKind::kArray || V::Size(blocks) != 1) return std::nullopt;
  std::optional<typename V::Ref> block;
  (void)V::ForEachElement(blocks, [&](typename V::Ref element) {
    block = element;
    return absl::OkStatus();
  });
  if (!block || V::Kind(*block) != JsonKind::kObject) return std::nullopt;
  typename V::Ref type, text;
  if (!V::Find(*block, "type", &type) || V::Kind(type) != JsonKind::kString ||
      V::String(type) != "text" || !V::Find(*block, "text", &text) ||
      V::Kind(text) != JsonKind::kString) {
    return std::nullopt;
  }
  bool plain = true;
  (void)V::ForEachMemberSorted(*block, [&](std::string_view key, typename V::Ref) {
    if (key != "type" && key != "text" && key != "cache_control") plain = false;
    return absl::OkStatus();
  });
  if (!plain) return std::nullopt;
  return V::String(text);
}

// Message content or a system prompt: a string, or a list of blocks.
template <typename V>
absl::Status AppendContent(typename V::Ref content, std::string& out) {
  if (std::optional<std::string_view> text = SingleTextBlock<V>(content)) {
    AppendJsonString(*text, out);
    return absl::OkStatus();
  }
  if (V::Kind(content) != JsonKind::kArray) return AppendCanonical<V>(content, out);
  out.push_back('[');
  bool first = true;
  THRIFTY_RETURN_IF_ERROR(V::ForEachElement(content, [&](typename V::Ref block) {
    if (!first) out.push_back(',');
    first = false;
    return AppendWithoutCacheControl<V>(block, out);
  }));
  out.push_back(']');
  return absl::OkStatus();
}

// `blank_content`: write this message's content as "" (the replay's context key).
template <typename V>
absl::Status AppendMessage(typename V::Ref message, std::string& out, bool blank_content) {
  if (V::Kind(message) != JsonKind::kObject) return AppendCanonical<V>(message, out);
  out.push_back('{');
  bool first = true;
  THRIFTY_RETURN_IF_ERROR(
      V::ForEachMemberSorted(message, [&](std::string_view key, typename V::Ref element) {
        if (key == "cache_control") return absl::OkStatus();
        if (!first) out.push_back(',');
        first = false;
        AppendJsonString(key, out);
        out.push_back(':');
        if (key != "content") return AppendCanonical<V>(element, out);
        if (blank_content) {
          out.append("\"\"");
          return absl::OkStatus();
        }
        return AppendContent<V>(element, out);
      }));
  out.push_back('}');
  return absl::OkStatus();
}

// The canonical request. `blank_content_of` >= 0: that index of "messages" is written with its
// content as "" (the replay keys a request's context this way, so paraphrases share a scope).
template <typename V>
absl::Status AppendCanonicalRequest(typename V::Ref request, std::string& out,
                                    int64_t blank_content_of = -1) {
  if (V::Kind(request) != JsonKind::kObject) {
    return absl::InvalidArgumentError(
        StrCat("request must be a JSON object (an OpenAI chat or Anthropic messages request), got ",
               V::TypeName(request)));
  }
  out.push_back('{');
  bool first = true;
  THRIFTY_RETURN_IF_ERROR(V::ForEachMemberSorted(
      request, [&](std::string_view key, typename V::Ref element) -> absl::Status {
        if (IsIgnoredTopLevel(key)) return absl::OkStatus();
        if (!first) out.push_back(',');
        first = false;
        AppendJsonString(key, out);
        out.push_back(':');
        absl::Status status;
        const bool is_list = V::Kind(element) == JsonKind::kArray;
        if ((key == "messages" || key == "input") && is_list) {
          out.push_back('[');
          int64_t i = 0;
          status = V::ForEachElement(element, [&](typename V::Ref message) {
            if (i > 0) out.push_back(',');
            const bool blank = key == "messages" && i == blank_content_of;
            ++i;
            return AppendMessage<V>(message, out, blank);
          });
          out.push_back(']');
        } else if (key == "system") {
          status = AppendContent<V>(element, out);
        } else if (key == "tools" && is_list) {
          out.push_back('[');
          bool first_tool = true;
          status = V::ForEachElement(element, [&](typename V::Ref tool) {
            if (!first_tool) out.push_back(',');
            first_tool = false;
            return AppendWithoutCacheControl<V>(tool, out);
          });
          out.push_back(']');
        } else {
          status = AppendCanonical<V>(element, out);
        }
        if (!status.ok() && !IsDuplicateKeyError(status)) {
          return absl::InvalidArgumentError(
              StrCat("request field '", key, "': ", status.message()));
        }
        return status;
      }));
  out.push_back('}');
  return absl::OkStatus();
}

}  // namespace thrifty::request::internal

#endif  // THRIFTY_SRC_REQUEST_CANONICAL_VIEW_H_
