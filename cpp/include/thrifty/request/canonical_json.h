// Canonical JSON: one byte string per JSON value, so equal values hash equally.
//
// Rules: object keys sorted bytewise (UTF-8 code-unit order); no whitespace; strings escaped
// minimally (\" \\ and control characters; other UTF-8 bytes as is); integers in decimal;
// a float with an integral value below 2^53 written as an integer (1.0 -> 1, -0.0 -> 0);
// other floats in the shortest form that round-trips (std::to_chars). NaN and infinities are
// not JSON and are rejected.
//
// Thread-safety: pure functions.
#ifndef THRIFTY_REQUEST_CANONICAL_JSON_H_
#define THRIFTY_REQUEST_CANONICAL_JSON_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace thrifty::request {

// Appends the canonical form of `value` to `out`. On error `out` holds a partial value.
absl::Status AppendCanonicalJson(const nlohmann::json& value, std::string& out);

absl::StatusOr<std::string> CanonicalJson(const nlohmann::json& value);

// Appends `number` in canonical form (see above). Returns false for NaN or infinities.
bool AppendCanonicalNumber(double number, std::string& out);
// Appends `text` as a JSON string literal, quotes included.
void AppendJsonString(std::string_view text, std::string& out);

}  // namespace thrifty::request

#endif  // THRIFTY_REQUEST_CANONICAL_JSON_H_
