#include <pybind11/pybind11.h>

#include "errors.h"
#include "register.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "thrifty's C++ core. Import `thrifty`, not this module.";
  m.attr("__version__") = THRIFTY_VERSION;
  thrifty::bindings::RegisterErrors(m);
  thrifty::bindings::RegisterCatalog(m);
  thrifty::bindings::RegisterCost(m);
  thrifty::bindings::RegisterRequest(m);
  thrifty::bindings::RegisterEmbed(m);
  thrifty::bindings::RegisterExactCache(m);
  thrifty::bindings::RegisterSemanticCache(m);
  thrifty::bindings::RegisterAgent(m);
  thrifty::bindings::RegisterReplay(m);
  thrifty::bindings::RegisterRoute(m);
  thrifty::bindings::RegisterLedger(m);
  thrifty::bindings::RegisterPrompt(m);
}
