// Status propagation helpers used across the core.
//
// Abseil's public release (20220623, the Debian version) does not ship RETURN_IF_ERROR /
// ASSIGN_OR_RETURN, so the core keeps its own two macros here.
#ifndef THRIFTY_BASE_STATUS_MACROS_H_
#define THRIFTY_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define THRIFTY_STATUS_CONCAT_INNER_(a, b) a##b
#define THRIFTY_STATUS_CONCAT_(a, b) THRIFTY_STATUS_CONCAT_INNER_(a, b)

// Returns the status of `expr` from the enclosing function when it is not OK.
#define THRIFTY_RETURN_IF_ERROR(expr)        \
  do {                                       \
    ::absl::Status thrifty_status_ = (expr); \
    if (!thrifty_status_.ok()) {             \
      return thrifty_status_;                \
    }                                        \
  } while (false)

// `lhs = value of rexpr`, or returns its status from the enclosing function.
#define THRIFTY_ASSIGN_OR_RETURN(lhs, rexpr) \
  THRIFTY_ASSIGN_OR_RETURN_IMPL_(THRIFTY_STATUS_CONCAT_(thrifty_statusor_, __LINE__), lhs, rexpr)

#define THRIFTY_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) {                                      \
    return std::move(statusor).status();                     \
  }                                                          \
  lhs = *std::move(statusor)

#endif  // THRIFTY_BASE_STATUS_MACROS_H_
