// FastJsonParse: a JSON parser that builds nlohmann::json values, for the replay's hot path.
//
// nlohmann's own parser reads one character at a time through an input adapter and appends
// strings byte by byte; on trace lines (a few KB, mostly long strings) this one is several
// times faster: it scans strings with memchr-like loops and appends runs. It builds exactly the
// values nlohmann::json::parse builds -- objects (the last of duplicate keys wins), arrays,
// strings (escapes and \u surrogate pairs decoded; control characters and invalid UTF-8
// rejected), non-negative integers as number_unsigned, negative ones as number_integer,
// integers beyond 64 bits and numbers with a fraction or exponent as number_float, true, false,
// null -- and rejects the same inputs; the tests check both on the same inputs. On any error it
// returns nullopt and the caller asks nlohmann for the message.
//
// Thread-safety: a pure function.
#ifndef THRIFTY_SRC_REPLAY_FAST_JSON_H_
#define THRIFTY_SRC_REPLAY_FAST_JSON_H_

#include <optional>
#include <string_view>

#include "nlohmann/json.hpp"

namespace thrifty::replay::internal {

std::optional<nlohmann::json> FastJsonParse(std::string_view text);

}  // namespace thrifty::replay::internal

#endif  // THRIFTY_SRC_REPLAY_FAST_JSON_H_
