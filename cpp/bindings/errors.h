// Maps absl::Status to the thrifty exception hierarchy (see errors.cc for the table).
#ifndef THRIFTY_BINDINGS_ERRORS_H_
#define THRIFTY_BINDINGS_ERRORS_H_

#include <pybind11/pybind11.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace thrifty::bindings {

void RegisterErrors(pybind11::module_& m);

// The exception class for `status` (borrowed reference).
PyObject* ExceptionClassFor(const absl::Status& status);

// Raises the Python exception for `status` (which must not be OK).
[[noreturn]] void ThrowStatus(const absl::Status& status);

inline void ThrowIfError(const absl::Status& status) {
  if (!status.ok()) ThrowStatus(status);
}

template <typename T>
T ValueOrThrow(absl::StatusOr<T> status_or) {
  if (!status_or.ok()) ThrowStatus(status_or.status());
  return *std::move(status_or);
}

}  // namespace thrifty::bindings

#endif  // THRIFTY_BINDINGS_ERRORS_H_
