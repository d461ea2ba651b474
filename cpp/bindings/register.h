// One Register function per area; module.cc only wires them together.
#ifndef THRIFTY_BINDINGS_REGISTER_H_
#define THRIFTY_BINDINGS_REGISTER_H_

#include <pybind11/pybind11.h>

namespace thrifty::bindings {

void RegisterCatalog(pybind11::module_& m);
void RegisterCost(pybind11::module_& m);
void RegisterRequest(pybind11::module_& m);
void RegisterEmbed(pybind11::module_& m);
void RegisterExactCache(pybind11::module_& m);
void RegisterSemanticCache(pybind11::module_& m);
void RegisterAgent(pybind11::module_& m);
void RegisterReplay(pybind11::module_& m);
void RegisterRoute(pybind11::module_& m);
void RegisterLedger(pybind11::module_& m);
void RegisterPrompt(pybind11::module_& m);

}  // namespace thrifty::bindings

#endif  // THRIFTY_BINDINGS_REGISTER_H_
