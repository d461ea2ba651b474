// simdjson's DOM as a view for the canonical writers (request/canonical_view.h), and the few
// conversions the replay needs around it.
//
// The replay parses every trace line with simdjson (validated UTF-8, strings unescaped into the
// parser's buffer, numbers as int64 / uint64 / double) and reads the fields it needs straight
// from that DOM; it builds an nlohmann::json value only where an API takes one (a request for
// the prefix tracker, a routing hook or a quality model; the usage object). Objects in simdjson's
// DOM keep duplicate keys; ForEachMemberSorted reports them (kDuplicateKeyMessage) so callers
// can fall back to nlohmann's "the last one wins".
//
// Thread-safety: pure functions; a dom::element is valid until its parser parses again.
#ifndef THRIFTY_SRC_REPLAY_SIMDJSON_VIEW_H_
#define THRIFTY_SRC_REPLAY_SIMDJSON_VIEW_H_

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include "../request/canonical_view.h"
#include "absl/container/inlined_vector.h"
#include "nlohmann/json.hpp"
#include "simdjson.h"

namespace thrifty::replay::internal {

using request::internal::JsonKind;

// An element's object or array, by value (the caller checked the type). Iterating
// `e.get_object().value_unsafe()` directly would bind the loop to a temporary that is gone
// before the loop starts.
inline simdjson::dom::object AsObject(simdjson::dom::element e) {
  return e.get_object().value_unsafe();
}
inline simdjson::dom::array AsArray(simdjson::dom::element e) {
  return e.get_array().value_unsafe();
}

struct SimdjsonView {
  using Ref = simdjson::dom::element;
  static JsonKind Kind(Ref v) {
    switch (v.type()) {
      case simdjson::dom::element_type::NULL_VALUE:
        return JsonKind::kNull;
      case simdjson::dom::element_type::BOOL:
        return JsonKind::kBool;
      case simdjson::dom::element_type::INT64:
        return JsonKind::kInt;
      case simdjson::dom::element_type::UINT64:
        return JsonKind::kUint;
      case simdjson::dom::element_type::DOUBLE:
        return JsonKind::kDouble;
      case simdjson::dom::element_type::STRING:
        return JsonKind::kString;
      case simdjson::dom::element_type::ARRAY:
        return JsonKind::kArray;
      case simdjson::dom::element_type::OBJECT:
        return JsonKind::kObject;
    }
    return JsonKind::kOther;
  }
  static bool Bool(Ref v) { return v.get_bool().value_unsafe(); }
  static int64_t Int(Ref v) { return v.get_int64().value_unsafe(); }
  static uint64_t Uint(Ref v) { return v.get_uint64().value_unsafe(); }
  // Any number (get_double converts integers).
  static double Double(Ref v) { return v.get_double().value_unsafe(); }
  static std::string_view String(Ref v) { return v.get_string().value_unsafe(); }
  static size_t Size(Ref v) { return v.get_array().value_unsafe().size(); }
  // nlohmann's names, so error messages read the same whichever parser produced the value.
  static const char* TypeName(Ref v) {
    switch (Kind(v)) {
      case JsonKind::kNull:
        return "null";
      case JsonKind::kBool:
        return "boolean";
      case JsonKind::kInt:
      case JsonKind::kUint:
      case JsonKind::kDouble:
        return "number";
      case JsonKind::kString:
        return "string";
      case JsonKind::kArray:
        return "array";
      case JsonKind::kObject:
        return "object";
      case JsonKind::kOther:
        break;
    }
    return "other";
  }
  // The last member named `key` (nlohmann's rule for duplicates).
  static bool Find(Ref object, std::string_view key, Ref* out) {
    bool found = false;
    for (simdjson::dom::key_value_pair field : AsObject(object)) {
      if (field.key == key) {
        *out = field.value;
        found = true;
      }
    }
    return found;
  }
  template <typename F>
  static absl::Status ForEachElement(Ref array, F&& f) {
    for (simdjson::dom::element element : AsArray(array)) {
      THRIFTY_RETURN_IF_ERROR(f(element));
    }
    return absl::OkStatus();
  }
  template <typename F>
  static absl::Status ForEachMemberSorted(Ref object, F&& f);
};

using Members = absl::InlinedVector<std::pair<std::string_view, simdjson::dom::element>, 8>;

// An object's members in key order, stable (of a key given twice, the later one comes last);
// returns true when some key is given twice.
inline bool SortMembers(simdjson::dom::element object, Members& members) {
  members.clear();
  for (simdjson::dom::key_value_pair field : AsObject(object)) {
    members.emplace_back(field.key, field.value);
  }
  // Insertion sort: objects in requests have a handful of keys, often already in order.
  for (size_t i = 1; i < members.size(); ++i) {
    for (size_t j = i; j > 0 && members[j].first < members[j - 1].first; --j) {
      std::swap(members[j], members[j - 1]);
    }
  }
  for (size_t i = 1; i < members.size(); ++i) {
    if (members[i].first == members[i - 1].first) return true;
  }
  return false;
}

template <typename F>
absl::Status SimdjsonView::ForEachMemberSorted(Ref object, F&& f) {
  Members members;
  if (SortMembers(object, members)) {
    return absl::InvalidArgumentError(ToAbsl(request::internal::kDuplicateKeyMessage));
  }
  for (const auto& [key, value] : members) THRIFTY_RETURN_IF_ERROR(f(key, value));
  return absl::OkStatus();
}

// The same value as an nlohmann::json (duplicate keys: the last one wins, as nlohmann parses).
nlohmann::json ToNlohmann(simdjson::dom::element value);

// The value as compact JSON text, cut to `max_chars` with "..." (for error messages).
std::string Brief(simdjson::dom::element value, size_t max_chars = 60);

}  // namespace thrifty::replay::internal

#endif  // THRIFTY_SRC_REPLAY_SIMDJSON_VIEW_H_
