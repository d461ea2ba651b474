// Access to the C++ ledger behind a Python thrifty.Ledger, for other bindings (replay).
#ifndef THRIFTY_BINDINGS_LEDGER_H_
#define THRIFTY_BINDINGS_LEDGER_H_

#include <pybind11/pybind11.h>

#include <string_view>

#include "thrifty/cost/ledger.h"

namespace thrifty::bindings {

// The ledger inside `obj` (a thrifty.Ledger / _core._Ledger; not owned: keep `obj` alive while
// using it). Raises TypeError naming `arg` when `obj` is anything else.
cost::Ledger* LedgerFromPy(const pybind11::handle& obj, std::string_view arg);

}  // namespace thrifty::bindings

#endif  // THRIFTY_BINDINGS_LEDGER_H_
