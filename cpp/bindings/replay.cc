// Bindings for thrifty::replay: the replay engine (thrifty.replay() in Python wraps it) and the
// trace-line parser used by tests.
#include "thrifty/replay/replay.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "embed.h"
#include "errors.h"
#include "json_convert.h"
#include "ledger.h"
#include "register.h"
#include "thrifty/base/strings.h"
#include "thrifty/replay/trace_record.h"
#include "thrifty/route/router.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

using replay::ReplayOptions;
using replay::RoutingMode;

RoutingMode ParseRouting(const std::string& mode) {
  if (mode == "keep") return RoutingMode::kKeep;
  if (mode == "labels") return RoutingMode::kLabels;
  if (mode == "priors") return RoutingMode::kPriors;
  if (mode == "router") return RoutingMode::kHook;
  ThrowStatus(absl::InvalidArgumentError(
      "replay: routing must be 'keep', 'labels', 'priors' or 'router', got '" + mode + "'"));
}

// A router written in Python: fn(request: dict, prompt_tokens: int) -> model name, or
// (model name, predicted quality or None). Called with the GIL re-acquired, so it is slow
// (a few microseconds per call); the C++ Router plugs in without it.
class PyRoutingHook final : public replay::RoutingHook {
 public:
  PyRoutingHook(py::object fn, std::string name) : fn_(std::move(fn)), name_(std::move(name)) {}
  ~PyRoutingHook() override {
    py::gil_scoped_acquire gil;
    fn_ = py::object();
  }

  std::string name() const override { return name_; }

  absl::StatusOr<replay::RouteChoice> Route(
      const replay::TraceRecord& record, int64_t prompt_tokens,
      const std::function<int64_t(const catalog::ModelSpec&)>& /*cached_tokens*/) override {
    py::gil_scoped_acquire gil;
    try {
      py::object out = fn_(FromJson(record.request), prompt_tokens);
      replay::RouteChoice choice;
      if (py::isinstance<py::str>(out)) {
        choice.model = out.cast<std::string>();
      } else {
        auto pair = out.cast<py::tuple>();
        if (pair.size() != 2) throw py::value_error("expected (model, quality)");
        choice.model = pair[0].cast<std::string>();
        if (!pair[1].is_none()) choice.predicted_quality = pair[1].cast<double>();
      }
      return choice;
    } catch (py::error_already_set& e) {
      if (!error_) error_ = std::make_unique<py::error_already_set>(e);
      return absl::AbortedError("replay: the router raised");
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(StrCat(
          "replay: router '", name_, "' must return a model name or (model, quality): ", e.what()));
    }
  }

  std::unique_ptr<py::error_already_set> error_;

 private:
  py::object fn_;
  std::string name_;
};

}  // namespace

void RegisterReplay(py::module_& m) {
  m.def(
      "_replay",
      [](const std::string& path, const catalog::Catalog& catalog, bool exact,
         std::optional<double> exact_ttl_seconds, std::optional<int64_t> exact_max_entries,
         bool semantic, double semantic_threshold, std::optional<double> semantic_ttl_seconds,
         std::optional<size_t> semantic_max_entries, std::vector<std::string> semantic_namespaces,
         py::object embedder, const std::string& routing, double quality_threshold,
         std::vector<std::string> candidate_models, py::object router, bool prefix_cache,
         double prefix_ttl_seconds, int64_t prefix_min_tokens, bool prefix_tracker, int threads,
         size_t batch_size, size_t max_batches_in_flight, std::optional<int64_t> limit,
         bool skip_invalid, size_t audit_sample_size, uint64_t seed, double bucket_seconds,
         py::object progress, int64_t progress_every, py::object ledger, bool semantic_lookahead) {
        ReplayOptions options;
        options.semantic_lookahead = semantic_lookahead;
        if (!ledger.is_none()) options.ledger = LedgerFromPy(ledger, "ledger");
        options.exact = exact;
        options.exact_ttl_seconds = exact_ttl_seconds;
        options.exact_max_entries = exact_max_entries;
        options.semantic = semantic;
        options.semantic_threshold = semantic_threshold;
        options.semantic_ttl_seconds = semantic_ttl_seconds;
        options.semantic_max_entries = semantic_max_entries;
        options.semantic_namespaces = std::move(semantic_namespaces);
        if (!embedder.is_none()) options.embedder = EmbedderFromPy(embedder);
        options.routing = ParseRouting(routing);
        options.quality_threshold = quality_threshold;
        options.candidate_models = std::move(candidate_models);
        std::unique_ptr<PyRoutingHook> hook;
        if (options.routing == RoutingMode::kHook) {
          if (router.is_none()) {
            ThrowStatus(absl::InvalidArgumentError("replay: routing='router' needs router="));
          }
        }
        // A thrifty.Router (or its _core.Router): batch predictions in C++, no GIL.
        py::object native = py::hasattr(router, "_core") ? router.attr("_core") : router;
        if (options.routing == RoutingMode::kHook && py::isinstance<route::Router>(native)) {
          options.routing = RoutingMode::kModel;
          options.model = replay::RouterQualityModel(native.cast<std::shared_ptr<route::Router>>());
        } else if (options.routing == RoutingMode::kHook) {
          std::string name = py::hasattr(router, "__name__")
                                 ? router.attr("__name__").cast<std::string>()
                                 : std::string(py::str(py::type::of(router).attr("__name__")));
          hook = std::make_unique<PyRoutingHook>(router, name);
          options.hook = hook.get();
        }
        options.prefix_cache = prefix_cache;
        options.prefix_rules.ttl_seconds = prefix_ttl_seconds;
        options.prefix_rules.min_cacheable_tokens = prefix_min_tokens;
        options.prefix_tracker = prefix_tracker;
        options.threads = threads;
        options.batch_size = batch_size;
        options.max_batches_in_flight = max_batches_in_flight;
        options.limit = limit;
        options.skip_invalid = skip_invalid;
        options.audit_sample_size = audit_sample_size;
        options.seed = seed;
        options.bucket_seconds = bucket_seconds;
        options.progress_every = progress_every;
        std::unique_ptr<py::error_already_set> progress_error;
        if (!progress.is_none()) {
          options.progress = [&progress, &progress_error](int64_t records, int64_t bytes,
                                                          int64_t total) {
            py::gil_scoped_acquire gil;
            try {
              py::object keep_going = progress(records, bytes, total);
              return keep_going.is_none() || keep_going.cast<bool>();
            } catch (py::error_already_set& e) {
              progress_error = std::make_unique<py::error_already_set>(e);
              return false;
            }
          };
        }
        absl::StatusOr<nlohmann::json> result;
        {
          py::gil_scoped_release release;
          result = replay::Replay(path, catalog, options);
        }
        if (progress_error) throw *progress_error;
        if (hook && hook->error_) throw *hook->error_;
        if (!result.ok()) ThrowEmbedStatus(result.status());
        return FromJson(*result);
      },
      py::arg("path"), py::arg("catalog"), py::kw_only(), py::arg("exact") = true,
      py::arg("exact_ttl_seconds") = py::none(), py::arg("exact_max_entries") = 1000000,
      py::arg("semantic") = true, py::arg("semantic_threshold") = 0.9,
      py::arg("semantic_ttl_seconds") = 86400.0, py::arg("semantic_max_entries") = 200000,
      py::arg("semantic_namespaces") = std::vector<std::string>{}, py::arg("embedder") = py::none(),
      py::arg("routing") = "labels", py::arg("quality_threshold") = 0.8,
      py::arg("candidate_models") = std::vector<std::string>{}, py::arg("router") = py::none(),
      py::arg("prefix_cache") = true, py::arg("prefix_ttl_seconds") = 300.0,
      py::arg("prefix_min_tokens") = 1024, py::arg("prefix_tracker") = false,
      py::arg("threads") = 0, py::arg("batch_size") = 512, py::arg("max_batches_in_flight") = 0,
      py::arg("limit") = py::none(), py::arg("skip_invalid") = false,
      py::arg("audit_sample_size") = 50, py::arg("seed") = 0, py::arg("bucket_seconds") = 3600.0,
      py::arg("progress") = py::none(), py::arg("progress_every") = 20000,
      py::arg("ledger") = py::none(), py::arg("semantic_lookahead") = true,
      "Replays a trace file; returns the report as a dict. Use thrifty.replay() instead.");

  m.def(
      "_parse_trace_line",
      [](const std::string& line, const std::string& where) {
        auto record = replay::ParseTraceRecord(line, where);
        if (!record.ok()) ThrowStatus(record.status());
        py::dict out;
        out["id"] = record->id;
        out["ts"] = record->ts;
        out["namespace"] = record->ns;
        out["model"] = record->model;
        out["provider"] = record->provider;
        out["query"] = replay::FinalUserText(record->request);
        out["has_usage"] = record->usage.has_value();
        out["labels"] = record->labels.size();
        return out;
      },
      py::arg("line"), py::arg("where") = "<line>",
      "Parses one trace line with the C++ rules (for tests and tools).");
}

}  // namespace thrifty::bindings
