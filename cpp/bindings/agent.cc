// Bindings for thrifty::agent: LoopPolicy, AgentBudget (limits) and the core AgentRun.
// The context manager, warnings and usage parsing live in python/thrifty/agent.py.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/cord.h"
#include "errors.h"
#include "register.h"
#include "thrifty/agent/agent_run.h"
#include "thrifty/base/strings.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

using agent::AgentLimits;
using agent::AgentRun;
using agent::LoopPolicy;

py::dict CountersToDict(const agent::Counters& c) {
  py::dict d;
  d["steps"] = c.steps;
  d["tool_calls"] = c.tool_calls;
  d["input_tokens"] = c.input_tokens;
  d["output_tokens"] = c.output_tokens;
  d["cost_usd"] = c.cost_usd;
  d["reserved_input_tokens"] = c.reserved_input_tokens;
  d["reserved_output_tokens"] = c.reserved_output_tokens;
  d["reserved_cost_usd"] = c.reserved_cost_usd;
  d["open_reservations"] = c.open_reservations;
  d["tool_errors"] = c.tool_errors;
  d["loop_warnings"] = c.loop_warnings;
  d["elapsed_seconds"] = c.elapsed_seconds;
  d["stopped"] = c.stopped;
  d["stop_reason"] = c.stop_reason;
  return d;
}

// Raises the typed limit error with .kind, .reason, .counters and .stopped attached.
[[noreturn]] void ThrowAgentStatus(const absl::Status& status, const AgentRun& run) {
  PyObject* cls = ExceptionClassFor(status);
  const std::string message(status.message());
  py::object error = py::reinterpret_borrow<py::object>(cls)(message);
  auto kind = status.GetPayload(ToAbsl(agent::kLimitPayloadUrl));
  const agent::Counters counters = run.counters();
  error.attr("kind") = kind ? py::object(py::str(std::string(*kind))) : py::object(py::none());
  error.attr("reason") = message;
  error.attr("counters") = CountersToDict(counters);
  error.attr("stopped") = counters.stopped;
  PyErr_SetObject(cls, error.ptr());
  throw py::error_already_set();
}

template <typename T>
T AgentValueOrThrow(absl::StatusOr<T> value, const AgentRun& run) {
  if (!value.ok()) ThrowAgentStatus(value.status(), run);
  return *std::move(value);
}

}  // namespace

void RegisterAgent(py::module_& m) {
  py::class_<LoopPolicy>(m, "LoopPolicy",
                         "When repeated tool calls, repeated errors and A-B oscillation warn, "
                         "refuse the call, and stop the run. Counts within the last `window` "
                         "calls. Immutable.")
      .def(py::init([](bool enabled, int window, int repeat_warn, int repeat_refuse,
                       int repeat_stop, int error_warn, int error_stop, int oscillation_refuse,
                       int oscillation_stop) {
             LoopPolicy p{enabled,    window,     repeat_warn,        repeat_refuse,   repeat_stop,
                          error_warn, error_stop, oscillation_refuse, oscillation_stop};
             ThrowIfError(agent::ValidateLoopPolicy(p));
             return p;
           }),
           py::kw_only(), py::arg("enabled") = true, py::arg("window") = 20,
           py::arg("repeat_warn") = 3, py::arg("repeat_refuse") = 5, py::arg("repeat_stop") = 8,
           py::arg("error_warn") = 2, py::arg("error_stop") = 4, py::arg("oscillation_refuse") = 3,
           py::arg("oscillation_stop") = 5)
      .def_readonly("enabled", &LoopPolicy::enabled)
      .def_readonly("window", &LoopPolicy::window)
      .def_readonly("repeat_warn", &LoopPolicy::repeat_warn)
      .def_readonly("repeat_refuse", &LoopPolicy::repeat_refuse)
      .def_readonly("repeat_stop", &LoopPolicy::repeat_stop)
      .def_readonly("error_warn", &LoopPolicy::error_warn)
      .def_readonly("error_stop", &LoopPolicy::error_stop)
      .def_readonly("oscillation_refuse", &LoopPolicy::oscillation_refuse)
      .def_readonly("oscillation_stop", &LoopPolicy::oscillation_stop);

  py::class_<AgentLimits>(m, "AgentBudget",
                          "Limits for one agent run. None means unlimited. Immutable.")
      .def(py::init([](std::optional<int64_t> max_steps, std::optional<int64_t> max_tool_calls,
                       std::optional<int64_t> max_input_tokens,
                       std::optional<int64_t> max_output_tokens, std::optional<double> max_cost_usd,
                       std::optional<double> max_seconds, std::optional<LoopPolicy> loop,
                       const std::string& on_limit, double input_margin) {
             AgentLimits limits;
             limits.max_steps = max_steps;
             limits.max_tool_calls = max_tool_calls;
             limits.max_input_tokens = max_input_tokens;
             limits.max_output_tokens = max_output_tokens;
             limits.max_cost_usd = max_cost_usd;
             if (max_seconds) {
               if (!(*max_seconds > 0)) {
                 ThrowStatus(
                     absl::InvalidArgumentError("AgentBudget.max_seconds must be > 0 (or None)"));
               }
               limits.max_duration = absl::Seconds(*max_seconds);
             }
             if (loop) limits.loop = *loop;
             if (on_limit != "raise" && on_limit != "finalize") {
               ThrowStatus(absl::InvalidArgumentError(
                   "AgentBudget.on_limit must be 'raise' or 'finalize', got '" + on_limit + "'"));
             }
             limits.finalize_on_limit = on_limit == "finalize";
             limits.input_margin = input_margin;
             ThrowIfError(agent::ValidateLimits(limits));
             return limits;
           }),
           py::kw_only(), py::arg("max_steps") = py::none(), py::arg("max_tool_calls") = py::none(),
           py::arg("max_input_tokens") = py::none(), py::arg("max_output_tokens") = py::none(),
           py::arg("max_cost_usd") = py::none(), py::arg("max_seconds") = py::none(),
           py::arg("loop") = py::none(), py::arg("on_limit") = "raise",
           py::arg("input_margin") = 0.10)
      .def_readonly("max_steps", &AgentLimits::max_steps)
      .def_readonly("max_tool_calls", &AgentLimits::max_tool_calls)
      .def_readonly("max_input_tokens", &AgentLimits::max_input_tokens)
      .def_readonly("max_output_tokens", &AgentLimits::max_output_tokens)
      .def_readonly("max_cost_usd", &AgentLimits::max_cost_usd)
      .def_property_readonly("max_seconds",
                             [](const AgentLimits& l) -> std::optional<double> {
                               if (!l.max_duration) return std::nullopt;
                               return absl::ToDoubleSeconds(*l.max_duration);
                             })
      .def_readonly("loop", &AgentLimits::loop)
      .def_property_readonly(
          "on_limit",
          [](const AgentLimits& l) { return l.finalize_on_limit ? "finalize" : "raise"; })
      .def_readonly("input_margin", &AgentLimits::input_margin);

  py::class_<agent::Reservation>(m, "Reservation", "A call's reserved worst case.")
      .def_readonly("id", &agent::Reservation::id)
      .def_readonly("model", &agent::Reservation::model)
      .def_readonly("input_tokens", &agent::Reservation::input_tokens)
      .def_readonly("output_tokens", &agent::Reservation::output_tokens)
      .def_readonly("cost_usd", &agent::Reservation::cost_usd)
      .def_readonly("final", &agent::Reservation::final,
                    "Finalize mode: ask the model for a final answer without tools.")
      .def("__repr__", [](const agent::Reservation& r) {
        return "Reservation(id=" + std::to_string(r.id) + ", model='" + r.model +
               "', cost_usd=" + std::to_string(r.cost_usd) + (r.final ? ", final=True)" : ")");
      });

  py::class_<AgentRun, std::shared_ptr<AgentRun>>(
      m, "_AgentRun", "The C++ run behind thrifty.agent_run. Thread-safe.")
      .def(py::init([](const AgentLimits& limits,
                       std::optional<std::shared_ptr<catalog::Catalog>> catalog,
                       std::optional<std::shared_ptr<AgentRun>> parent) {
             return ValueOrThrow(AgentRun::Create(
                 limits,
                 catalog ? std::const_pointer_cast<const catalog::Catalog>(*catalog) : nullptr,
                 parent ? *parent : nullptr));
           }),
           py::arg("limits"), py::arg("catalog") = py::none(), py::arg("parent") = py::none())
      .def("before_call",
           [](AgentRun& run, const std::string& model, int64_t input_tokens,
              int64_t max_output_tokens) {
             absl::StatusOr<agent::Reservation> r;
             {
               py::gil_scoped_release release;
               r = run.BeforeCall(model, input_tokens, max_output_tokens);
             }
             return AgentValueOrThrow(std::move(r), run);
           })
      .def("after_call",
           [](AgentRun& run, uint64_t id, const cost::Usage& usage) {
             absl::StatusOr<double> cost;
             {
               py::gil_scoped_release release;
               cost = run.AfterCall(id, usage);
             }
             return AgentValueOrThrow(std::move(cost), run);
           })
      .def("cancel",
           [](AgentRun& run, uint64_t id) {
             absl::Status status;
             {
               py::gil_scoped_release release;
               status = run.Cancel(id);
             }
             if (!status.ok()) ThrowAgentStatus(status, run);
           })
      .def("oldest_reservation",
           [](const AgentRun& run, const std::string& model) {
             return AgentValueOrThrow(run.OldestReservation(model), run);
           })
      .def("tool_call",
           [](AgentRun& run, const std::string& tool, const std::string& arguments) {
             std::string warning;
             absl::Status status;
             {
               py::gil_scoped_release release;
               status = run.ToolCall(tool, arguments, &warning);
             }
             if (!status.ok()) ThrowAgentStatus(status, run);
             return warning;
           })
      .def("tool_error",
           [](AgentRun& run, const std::string& tool, const std::string& message) {
             std::string warning;
             absl::Status status;
             {
               py::gil_scoped_release release;
               status = run.ToolError(tool, message, &warning);
             }
             if (!status.ok()) ThrowAgentStatus(status, run);
             return warning;
           })
      .def("adjusted_threshold",
           [](const AgentRun& run, double base, double floor) {
             std::string reason;
             const double threshold = run.AdjustedThreshold(base, floor, &reason);
             return py::make_tuple(threshold, reason);
           })
      .def("remaining_fraction", &AgentRun::RemainingFraction)
      .def("counters", [](const AgentRun& run) { return CountersToDict(run.counters()); })
      .def("stop", [](AgentRun& run, const std::string& reason) { run.Stop(reason); })
      .def_property_readonly("limits", &AgentRun::limits);
}

}  // namespace thrifty::bindings
