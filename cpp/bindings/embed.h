// Shared by the bindings that take an embedder (the semantic cache, the router).
// RegisterEmbed (embed.cc) is declared in register.h with the other areas.
#ifndef THRIFTY_BINDINGS_EMBED_H_
#define THRIFTY_BINDINGS_EMBED_H_

#include <pybind11/pybind11.h>

#include <memory>

#include "absl/status/status.h"
#include "thrifty/embed/embedder.h"

namespace thrifty::bindings {

// The C++ embedder behind a thrifty.Embedder (HashingEmbedder, StaticEmbedder, CallableEmbedder,
// or a Python subclass of one); TypeError naming the accepted types for anything else. The
// embedder may be called with the GIL released: a CallableEmbedder re-acquires it.
std::shared_ptr<embed::Embedder> EmbedderFromPy(pybind11::handle embedder);

// Raises the Python exception for a failed Embedder call (status must not be OK): when a Python
// callback (a CallableEmbedder's fn, a StaticEmbedder's tokenizer) raised on this thread and
// caused `status` (its message is, or contains, the one the callback's failure produced), the
// original exception is re-raised; otherwise as ThrowStatus. Call it with the GIL held.
[[noreturn]] void ThrowEmbedStatus(const absl::Status& status);

}  // namespace thrifty::bindings

#endif  // THRIFTY_BINDINGS_EMBED_H_
