// Shared by the bindings that accept a usage report (catalog.cost, later the ledger).
#ifndef THRIFTY_BINDINGS_COST_H_
#define THRIFTY_BINDINGS_COST_H_

#include <pybind11/pybind11.h>

#include <string_view>

#include "thrifty/cost/usage.h"

namespace thrifty::bindings {

// A thrifty.Usage as is; anything else (dict, SDK usage or response object) is parsed with
// the parser for `provider` (empty: detected from the field names).
cost::Usage UsageFromPy(pybind11::handle usage, std::string_view provider);

}  // namespace thrifty::bindings

#endif  // THRIFTY_BINDINGS_COST_H_
