// Bindings for thrifty::prompt: PromptBuilder (prompt assembly) and PrefixTracker.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cost.h"
#include "errors.h"
#include "json_convert.h"
#include "register.h"
#include "thrifty/catalog/catalog.h"
#include "thrifty/prompt/clock.h"
#include "thrifty/prompt/prefix_tracker.h"
#include "thrifty/prompt/prompt_builder.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

using prompt::CachePrediction;
using prompt::LintWarning;
using prompt::Observation;
using prompt::Plan;
using prompt::PlannedBreakpoint;
using prompt::PrefixTracker;
using prompt::PromptBuilder;

// A Python callable as the tracker's clock; takes the GIL to call it.
class PyClock : public prompt::Clock {
 public:
  explicit PyClock(py::function fn) : fn_(std::move(fn)) {}
  ~PyClock() override {
    py::gil_scoped_acquire gil;
    fn_ = py::function();
  }
  double Now() const override {
    py::gil_scoped_acquire gil;
    return fn_().cast<double>();
  }

 private:
  py::function fn_;
};

nlohmann::json RequestJson(py::handle request) {
  if (!py::isinstance<py::dict>(request)) {
    throw py::type_error(
        "request must be a dict of SDK kwargs (OpenAI chat / responses or Anthropic messages), "
        "got " +
        std::string(py::str(py::type::of(request).attr("__name__"))));
  }
  return ToJson(request, "request");
}

prompt::PlanOptions Options(const std::string& ttl, double request_interval_s,
                            double expected_reuse, std::optional<bool> followup,
                            std::optional<int> max_breakpoints, bool move_volatile,
                            int cache_key_shards, double expected_rpm, const std::string& session,
                            int64_t max_tokens) {
  prompt::PlanOptions o;
  o.ttl = ttl;
  o.request_interval_s = request_interval_s;
  o.expected_reuse = expected_reuse;
  o.followup = followup.has_value() ? (*followup ? 1 : 0) : -1;
  o.max_breakpoints = max_breakpoints.value_or(-1);
  o.move_volatile = move_volatile;
  o.cache_key_shards = cache_key_shards;
  o.expected_rpm = expected_rpm;
  o.session = session;
  o.max_tokens = max_tokens;
  return o;
}

std::optional<prompt::Api> ApiArg(const std::optional<std::string>& api) {
  if (!api.has_value()) return std::nullopt;
  return ValueOrThrow(prompt::ParseApi(*api));
}

std::string PredictionRepr(const CachePrediction& p) {
  return "CachePrediction(cached_tokens=" + std::to_string(p.cached_tokens) +
         ", prompt_tokens=" + std::to_string(p.prompt_tokens) + ", reason='" + p.reason +
         "', detail='" + p.detail + "')";
}

}  // namespace

void RegisterPrompt(py::module_& m) {
  py::class_<LintWarning>(m, "LintWarning",
                          "A value that changes between calls inside a static prompt segment.")
      .def_readonly("segment", &LintWarning::segment)
      .def_readonly("kind", &LintWarning::kind)
      .def_readonly("text", &LintWarning::text)
      .def_readonly("moved", &LintWarning::moved)
      .def_readonly("message", &LintWarning::message)
      .def("__str__", [](const LintWarning& w) { return w.message; })
      .def("__repr__", [](const LintWarning& w) {
        return "LintWarning(segment='" + w.segment + "', kind='" + w.kind + "', text='" + w.text +
               "')";
      });

  py::class_<PlannedBreakpoint>(m, "Breakpoint", "A cache_control marker the plan placed.")
      .def_readonly("label", &PlannedBreakpoint::label)
      .def_readonly("block", &PlannedBreakpoint::block)
      .def_readonly("tokens", &PlannedBreakpoint::tokens)
      .def_readonly("ttl", &PlannedBreakpoint::ttl)
      .def_readonly("why", &PlannedBreakpoint::why)
      .def("__repr__", [](const PlannedBreakpoint& b) {
        return "Breakpoint(label='" + b.label + "', tokens=" + std::to_string(b.tokens) +
               ", ttl='" + b.ttl + "', why='" + b.why + "')";
      });

  py::class_<Plan>(m, "Plan",
                   "A built prompt: .request (SDK kwargs for .api), .breakpoints, token counts,\n"
                   ".warnings (lint) and .cache_key. Immutable.")
      .def_property_readonly(
          "request", [](const Plan& p) { return FromJson(p.request); },
          "The SDK kwargs (a new dict on every access).")
      .def_property_readonly("api",
                             [](const Plan& p) { return std::string(prompt::ApiName(p.api)); })
      .def_readonly("breakpoints", &Plan::breakpoints)
      .def_readonly("prompt_tokens", &Plan::prompt_tokens)
      .def_readonly("static_tokens", &Plan::static_tokens)
      .def_readonly("cacheable_tokens", &Plan::cacheable_tokens)
      .def_readonly("warnings", &Plan::warnings)
      .def_property_readonly("cache_key",
                             [](const Plan& p) -> py::object {
                               return p.cache_key.empty() ? py::none() : py::cast(p.cache_key);
                             })
      .def("__repr__", [](const Plan& p) {
        return "Plan(api='" + std::string(prompt::ApiName(p.api)) +
               "', prompt_tokens=" + std::to_string(p.prompt_tokens) +
               ", cacheable_tokens=" + std::to_string(p.cacheable_tokens) +
               ", breakpoints=" + std::to_string(p.breakpoints.size()) +
               ", warnings=" + std::to_string(p.warnings.size()) + ")";
      });

  py::class_<PromptBuilder>(m, "_PromptBuilder")
      .def(py::init([](std::shared_ptr<const catalog::Catalog> catalog, const std::string& provider,
                       const std::string& model, const std::string& ttl, double request_interval_s,
                       double expected_reuse, std::optional<bool> followup,
                       std::optional<int> max_breakpoints, bool move_volatile, int cache_key_shards,
                       double expected_rpm, const std::string& session, int64_t max_tokens) {
             return ValueOrThrow(PromptBuilder::Create(
                 std::move(catalog), provider, model,
                 Options(ttl, request_interval_s, expected_reuse, followup, max_breakpoints,
                         move_volatile, cache_key_shards, expected_rpm, session, max_tokens)));
           }),
           py::arg("catalog"), py::arg("provider"), py::arg("model"), py::kw_only(),
           py::arg("ttl") = "auto", py::arg("request_interval_s") = 30.0,
           py::arg("expected_reuse") = 10.0, py::arg("followup") = py::none(),
           py::arg("max_breakpoints") = py::none(), py::arg("move_volatile") = false,
           py::arg("cache_key_shards") = 1, py::arg("expected_rpm") = 0.0, py::arg("session") = "",
           py::arg("max_tokens") = 1024)
      .def_static(
          "from_request",
          [](std::shared_ptr<const catalog::Catalog> catalog, const std::string& provider,
             const std::string& model, py::handle request, const std::string& ttl,
             double request_interval_s, double expected_reuse, std::optional<bool> followup,
             std::optional<int> max_breakpoints, bool move_volatile, int cache_key_shards,
             double expected_rpm, const std::string& session, int64_t max_tokens) {
            const nlohmann::json json = RequestJson(request);
            return ValueOrThrow(PromptBuilder::FromRequest(
                std::move(catalog), provider, model, json,
                Options(ttl, request_interval_s, expected_reuse, followup, max_breakpoints,
                        move_volatile, cache_key_shards, expected_rpm, session, max_tokens)));
          },
          py::arg("catalog"), py::arg("provider"), py::arg("model"), py::arg("request"),
          py::kw_only(), py::arg("ttl") = "auto", py::arg("request_interval_s") = 30.0,
          py::arg("expected_reuse") = 10.0, py::arg("followup") = py::none(),
          py::arg("max_breakpoints") = py::none(), py::arg("move_volatile") = false,
          py::arg("cache_key_shards") = 1, py::arg("expected_rpm") = 0.0, py::arg("session") = "",
          py::arg("max_tokens") = 1024)
      .def("add_tools", [](PromptBuilder& b,
                           py::handle tools) { ThrowIfError(b.AddTools(ToJson(tools, "tools"))); })
      .def("add_system",
           [](PromptBuilder& b, std::string text) { ThrowIfError(b.AddSystem(std::move(text))); })
      .def("add_documents",
           [](PromptBuilder& b, const std::vector<std::string>& docs) {
             ThrowIfError(b.AddDocuments(docs));
           })
      .def("add_history",
           [](PromptBuilder& b, py::handle messages) {
             ThrowIfError(b.AddHistory(ToJson(messages, "history")));
           })
      .def("add_user", [](PromptBuilder& b,
                          py::handle content) { ThrowIfError(b.AddUser(ToJson(content, "user"))); })
      .def(
          "build",
          [](const PromptBuilder& b, std::optional<std::string> api) {
            const std::optional<prompt::Api> parsed = ApiArg(api);
            absl::StatusOr<Plan> plan;
            {
              py::gil_scoped_release release;
              plan = b.Build(parsed);
            }
            return ValueOrThrow(std::move(plan));
          },
          py::arg("api") = py::none());

  py::class_<CachePrediction>(m, "CachePrediction",
                              "What the prefix tracker expects the provider to serve from cache.")
      .def_readonly("provider", &CachePrediction::provider)
      .def_readonly("model", &CachePrediction::model)
      .def_readonly("prompt_tokens", &CachePrediction::prompt_tokens)
      .def_readonly("cached_tokens", &CachePrediction::cached_tokens)
      .def_readonly("matched_tokens", &CachePrediction::matched_tokens)
      .def_readonly("write_5m_tokens", &CachePrediction::write_5m_tokens)
      .def_readonly("write_1h_tokens", &CachePrediction::write_1h_tokens)
      .def_readonly("reason", &CachePrediction::reason)
      .def_readonly("segment", &CachePrediction::segment)
      .def_readonly("detail", &CachePrediction::detail)
      .def_property_readonly("usage", &CachePrediction::usage,
                             "The predicted prompt usage (output 0), for Catalog.cost.")
      .def("__repr__", &PredictionRepr);

  py::class_<Observation>(m, "CacheObservation",
                          "A prediction next to the cached tokens the provider reported.")
      .def_readonly("predicted", &Observation::predicted)
      .def_readonly("reported_cached_tokens", &Observation::reported_cached_tokens)
      .def_property_readonly("error_tokens", &Observation::error_tokens)
      .def("__repr__", [](const Observation& o) {
        return "CacheObservation(predicted=" + std::to_string(o.predicted.cached_tokens) +
               ", reported=" + std::to_string(o.reported_cached_tokens) + ", reason='" +
               o.predicted.reason + "')";
      });

  py::class_<PrefixTracker, request::CachedTokensPredictor, std::shared_ptr<PrefixTracker>>(
      m, "_PrefixTracker")
      .def(py::init([](std::shared_ptr<const catalog::Catalog> catalog, size_t max_entries,
                       std::optional<py::function> clock) {
             prompt::PrefixTrackerOptions options;
             options.max_entries = max_entries;
             std::shared_ptr<const prompt::Clock> c;
             if (clock.has_value()) c = std::make_shared<PyClock>(*clock);
             return std::make_shared<PrefixTracker>(std::move(catalog), std::move(c), options);
           }),
           py::arg("catalog"), py::kw_only(), py::arg("max_entries") = size_t{1} << 20,
           py::arg("clock") = py::none())
      .def(
          "predict",
          [](const PrefixTracker& t, std::optional<std::string> provider, const std::string& model,
             py::handle request, std::optional<double> now) {
            const nlohmann::json json = RequestJson(request);
            absl::StatusOr<CachePrediction> p;
            {
              py::gil_scoped_release release;
              p = t.Predict(provider.value_or(""), model, json, now);
            }
            return ValueOrThrow(std::move(p));
          },
          py::arg("provider"), py::arg("model"), py::arg("request"), py::arg("now") = py::none())
      .def(
          "observe",
          [](PrefixTracker& t, std::optional<std::string> provider, const std::string& model,
             py::handle request, py::handle usage, std::optional<double> now) {
            const nlohmann::json json = RequestJson(request);
            std::string parser = provider.value_or("");
            if (parser.empty()) {
              if (const catalog::ModelSpec* spec = t.catalog().Find(model)) parser = spec->provider;
            }
            const cost::Usage reported =
                usage.is_none() ? cost::Usage{} : UsageFromPy(usage, parser);
            absl::StatusOr<Observation> o;
            {
              py::gil_scoped_release release;
              o = t.Observe(provider.value_or(""), model, json, reported, now);
            }
            return ValueOrThrow(std::move(o));
          },
          py::arg("provider"), py::arg("model"), py::arg("request"), py::arg("usage") = py::none(),
          py::arg("now") = py::none())
      .def("stats",
           [](const PrefixTracker& t) {
             const prompt::TrackerStats s = t.stats();
             py::dict d;
             d["observations"] = s.observations;
             d["predicted_cached_tokens"] = s.predicted_cached_tokens;
             d["reported_cached_tokens"] = s.reported_cached_tokens;
             d["abs_error_tokens"] = s.abs_error_tokens;
             d["exact"] = s.exact;
             d["over"] = s.over;
             d["under"] = s.under;
             d["entries"] = s.entries;
             d["evictions"] = s.evictions;
             return d;
           })
      .def("clear", &PrefixTracker::Clear)
      .def("__len__", &PrefixTracker::size);
}

}  // namespace thrifty::bindings
