// Conversion between Python objects and nlohmann::json, for calls that take requests,
// responses and usage reports. Runs with the GIL held.
#ifndef THRIFTY_BINDINGS_JSON_CONVERT_H_
#define THRIFTY_BINDINGS_JSON_CONVERT_H_

#include <pybind11/pybind11.h>

#include <string_view>

#include "nlohmann/json.hpp"

namespace thrifty::bindings {

// dict (str keys), list, tuple, str, int, float, bool and None convert directly; objects with
// model_dump() (pydantic, the OpenAI and Anthropic SDK types) or to_dict() are dumped first.
// Anything else raises TypeError naming where it was, e.g. "request['messages'][0]['content']:
// cannot convert bytes to JSON (accepted: ...)". `what` names the root in messages.
nlohmann::json ToJson(pybind11::handle object, std::string_view what);

pybind11::object FromJson(const nlohmann::json& value);

}  // namespace thrifty::bindings

#endif  // THRIFTY_BINDINGS_JSON_CONVERT_H_
