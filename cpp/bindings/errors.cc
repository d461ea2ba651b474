// The exception hierarchy. Each class also inherits the built-in a Python caller would catch:
//
//   Error(Exception)                       any thrifty failure
//   InvalidArgumentError(Error, ValueError)
//   NotFoundError(Error, KeyError)         str() is the message, not its repr
//   AlreadyExistsError(Error, ValueError)
//   FailedPreconditionError(Error, RuntimeError)
//   OutOfRangeError(Error, IndexError)
//   ResourceExhaustedError(Error, RuntimeError)
//   AgentLimitError(Error)                 an agent run's limit refused a call (.kind, .reason,
//     StepLimitExceeded                    .counters, .stopped); kinds steps / tool_calls,
//     BudgetExceededError                  cost / input_tokens / output_tokens,
//     LoopDetectedError                    loop,
//     DeadlineExceededError(.., TimeoutError)  deadline (also any other deadline)
//   UnavailableError(Error, ConnectionError)
//   PermissionDeniedError(Error, PermissionError)
//   UnimplementedError(Error, NotImplementedError)
//   DataLossError(Error, OSError)          a corrupt or truncated file (snapshots)
//   InternalError(Error, RuntimeError)     also Unknown, Aborted, Cancelled
#include "errors.h"

#include <string>

#include "absl/strings/cord.h"
#include "thrifty/agent/agent_run.h"
#include "thrifty/base/strings.h"
#include "thrifty/cost/ledger.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

struct ErrorClasses {
  PyObject* error = nullptr;
  PyObject* invalid_argument = nullptr;
  PyObject* not_found = nullptr;
  PyObject* already_exists = nullptr;
  PyObject* failed_precondition = nullptr;
  PyObject* out_of_range = nullptr;
  PyObject* resource_exhausted = nullptr;
  PyObject* agent_limit = nullptr;
  PyObject* step_limit = nullptr;
  PyObject* budget_exceeded = nullptr;
  PyObject* loop_detected = nullptr;
  PyObject* deadline_exceeded = nullptr;
  PyObject* unavailable = nullptr;
  PyObject* permission_denied = nullptr;
  PyObject* unimplemented = nullptr;
  PyObject* data_loss = nullptr;
  PyObject* internal = nullptr;
};

// Owned for the life of the process: exception classes outlive any module teardown order.
ErrorClasses& Classes() {
  static ErrorClasses classes;
  return classes;
}

PyObject* MakeClass(py::module_& m, const char* name, std::initializer_list<PyObject*> bases,
                    const char* doc, bool plain_str = false) {
  py::tuple base_tuple(bases.size());
  size_t i = 0;
  for (PyObject* base : bases) base_tuple[i++] = py::reinterpret_borrow<py::object>(base);
  py::dict namespace_dict;
  namespace_dict["__doc__"] = doc;
  namespace_dict["__module__"] = "thrifty";
  if (plain_str) {
    // KeyError.__str__ shows repr(message); a NotFoundError should read like the others.
    namespace_dict["__str__"] = py::module_::import("builtins").attr("Exception").attr("__str__");
  }
  const std::string qualified = std::string("thrifty.") + name;
  PyObject* cls = PyErr_NewException(qualified.c_str(), base_tuple.ptr(), namespace_dict.ptr());
  if (cls == nullptr) throw py::error_already_set();
  m.attr(name) = py::handle(cls);
  return cls;
}

}  // namespace

void RegisterErrors(py::module_& m) {
  ErrorClasses& c = Classes();
  c.error = MakeClass(m, "Error", {PyExc_Exception}, "Base class of every thrifty error.");
  c.invalid_argument = MakeClass(m, "InvalidArgumentError", {c.error, PyExc_ValueError},
                                 "An argument, file or field was malformed or out of range.");
  c.not_found = MakeClass(m, "NotFoundError", {c.error, PyExc_KeyError},
                          "A model, key or entry does not exist.", /*plain_str=*/true);
  c.already_exists = MakeClass(m, "AlreadyExistsError", {c.error, PyExc_ValueError},
                               "An entry with that name already exists.");
  c.failed_precondition =
      MakeClass(m, "FailedPreconditionError", {c.error, PyExc_RuntimeError},
                "The system is not in a state for this call (e.g. an optional extra is absent).");
  c.out_of_range = MakeClass(m, "OutOfRangeError", {c.error, PyExc_IndexError},
                             "A position or count is outside the valid range.");
  c.resource_exhausted = MakeClass(m, "ResourceExhaustedError", {c.error, PyExc_RuntimeError},
                                   "A limit or quota was reached.");
  c.agent_limit = MakeClass(m, "AgentLimitError", {c.error},
                            "An agent run's limit refused a call before it was sent.");
  c.step_limit = MakeClass(m, "StepLimitExceeded", {c.agent_limit},
                           "The run reached max_steps or max_tool_calls.");
  c.budget_exceeded =
      MakeClass(m, "BudgetExceededError", {c.agent_limit},
                "The call could break max_cost_usd, a token limit or a hard Ledger budget.");
  c.loop_detected = MakeClass(m, "LoopDetectedError", {c.agent_limit},
                              "The agent repeats itself; .stopped tells whether the run ended.");
  c.deadline_exceeded = MakeClass(m, "DeadlineExceededError", {c.agent_limit, PyExc_TimeoutError},
                                  "A deadline or time limit passed.");
  c.unavailable = MakeClass(m, "UnavailableError", {c.error, PyExc_ConnectionError},
                            "A backing service (e.g. Redis) could not be reached.");
  c.permission_denied = MakeClass(m, "PermissionDeniedError", {c.error, PyExc_PermissionError},
                                  "The caller may not do this.");
  c.unimplemented = MakeClass(m, "UnimplementedError", {c.error, PyExc_NotImplementedError},
                              "This operation is not supported.");
  c.data_loss = MakeClass(m, "DataLossError", {c.error, PyExc_OSError},
                          "A file is corrupt or truncated (e.g. a cache snapshot).");
  c.internal = MakeClass(m, "InternalError", {c.error, PyExc_RuntimeError},
                         "An internal invariant broke; please report it.");
}

PyObject* ExceptionClassFor(const absl::Status& status) {
  const ErrorClasses& c = Classes();
  if (auto kind = status.GetPayload(ToAbsl(agent::kLimitPayloadUrl))) {
    const std::string k(*kind);
    if (k == "steps" || k == "tool_calls") return c.step_limit;
    if (k == "cost" || k == "input_tokens" || k == "output_tokens") return c.budget_exceeded;
    if (k == "loop") return c.loop_detected;
    if (k == "deadline") return c.deadline_exceeded;
  }
  if (status.GetPayload(ToAbsl(cost::kBudgetPayloadUrl))) return c.budget_exceeded;
  PyObject* cls = c.internal;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      cls = c.invalid_argument;
      break;
    case absl::StatusCode::kNotFound:
      cls = c.not_found;
      break;
    case absl::StatusCode::kAlreadyExists:
      cls = c.already_exists;
      break;
    case absl::StatusCode::kFailedPrecondition:
      cls = c.failed_precondition;
      break;
    case absl::StatusCode::kOutOfRange:
      cls = c.out_of_range;
      break;
    case absl::StatusCode::kResourceExhausted:
      cls = c.resource_exhausted;
      break;
    case absl::StatusCode::kDeadlineExceeded:
      cls = c.deadline_exceeded;
      break;
    case absl::StatusCode::kUnavailable:
      cls = c.unavailable;
      break;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      cls = c.permission_denied;
      break;
    case absl::StatusCode::kUnimplemented:
      cls = c.unimplemented;
      break;
    case absl::StatusCode::kDataLoss:
      cls = c.data_loss;
      break;
    default:
      break;
  }
  return cls;
}

void ThrowStatus(const absl::Status& status) {
  const std::string message(status.message());
  PyErr_SetString(ExceptionClassFor(status), message.c_str());
  throw py::error_already_set();
}

}  // namespace thrifty::bindings
