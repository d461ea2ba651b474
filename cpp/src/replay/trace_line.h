// Reading trace lines without building a JSON DOM of nlohmann values: simdjson parses the line,
// the record's fields are read from its DOM, and the request stays a simdjson element for the
// canonical writers (request/canonical_view.h). ParseTraceRecord (trace_record.h) is this plus
// one conversion of the request to nlohmann::json.
//
// Thread-safety: a LineParser is used by one thread at a time (one per worker); the elements it
// returns are valid until it parses the next line.
#ifndef THRIFTY_SRC_REPLAY_TRACE_LINE_H_
#define THRIFTY_SRC_REPLAY_TRACE_LINE_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "simdjson.h"
#include "thrifty/replay/trace_record.h"

namespace thrifty::replay::internal {

struct LineParser {
  simdjson::dom::parser parser;
  std::string buffer;  // the line with simdjson's padding after it
};

// Parses and checks `line` (the rules of ParseTraceRecord) into `record`, leaving
// record.request null and pointing `request` at the request object in `parser`'s DOM.
absl::Status ParseTraceLine(LineParser& parser, std::string_view line, std::string_view where,
                            TraceRecord& record, simdjson::dom::element& request);

// As ParseTraceLine, after a round trip through nlohmann::json: objects that hold a key twice
// keep the last one (what the canonical writers need when SimdjsonView reports a duplicate).
absl::Status NormalizeTraceLine(LineParser& parser, std::string_view line, std::string_view where,
                                TraceRecord& record, simdjson::dom::element& request);

// FinalUserText (trace_record.h) of a request in simdjson's DOM.
std::string FinalUserText(simdjson::dom::element request);

}  // namespace thrifty::replay::internal

#endif  // THRIFTY_SRC_REPLAY_TRACE_LINE_H_
