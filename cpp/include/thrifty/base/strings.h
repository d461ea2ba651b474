// String helpers over Abseil that accept std::string_view.
//
// Debian's Abseil (20220623) is built with ABSL_OPTION_USE_STD_STRING_VIEW=0, so
// absl::string_view is its own type and absl::StrCat rejects std::string_view. The core's API
// uses std::string_view; these adapters convert at the call.
#ifndef THRIFTY_BASE_STRINGS_H_
#define THRIFTY_BASE_STRINGS_H_

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace thrifty {

inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view FromAbsl(absl::string_view s) { return {s.data(), s.size()}; }

template <typename T>
decltype(auto) AsAlphaNum(const T& value) {
  if constexpr (std::is_same_v<T, std::string_view>) {
    return ToAbsl(value);
  } else {
    return (value);
  }
}

template <typename... Args>
std::string StrCat(const Args&... args) {
  return absl::StrCat(AsAlphaNum(args)...);
}

template <typename... Args>
void StrAppend(std::string* out, const Args&... args) {
  absl::StrAppend(out, AsAlphaNum(args)...);
}

inline std::string AsciiLower(std::string_view s) { return absl::AsciiStrToLower(ToAbsl(s)); }

}  // namespace thrifty

#endif  // THRIFTY_BASE_STRINGS_H_
