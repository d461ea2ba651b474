// Helpers shared by the C++ tests.
#ifndef THRIFTY_TESTS_CPP_TEST_UTIL_H_
#define THRIFTY_TESTS_CPP_TEST_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace thrifty::testing {

// The status message as std::string (Debian's absl::string_view is not std::string_view, and
// gmock's string matchers want the latter).
inline std::string Msg(const absl::Status& status) { return std::string(status.message()); }
template <typename T>
std::string Msg(const absl::StatusOr<T>& status_or) {
  return Msg(status_or.status());
}

}  // namespace thrifty::testing

#endif  // THRIFTY_TESTS_CPP_TEST_UTIL_H_
