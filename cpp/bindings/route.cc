// Bindings for thrifty::route: Router, Decision and router calibration.
//
// thrifty.Router (python/thrifty/router.py) subclasses _core.Router to resolve defaults from
// the catalog's policy; everything else happens here. Arguments are converted with the GIL
// held, then the GIL is released for the C++ work (fit, route, predict, save, load).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "embed.h"
#include "errors.h"
#include "json_convert.h"
#include "register.h"
#include "thrifty/base/strings.h"
#include "thrifty/route/router.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

using route::Decision;
using route::Router;

std::string TypeName(py::handle h) { return py::str(py::type::of(h).attr("__name__")); }

nlohmann::json InputJson(py::handle input, const std::string& where) {
  if (!py::isinstance<py::str>(input) && !py::isinstance<py::dict>(input)) {
    throw py::type_error(where +
                         ": expected a prompt (str) or a request dict (OpenAI chat or Anthropic "
                         "messages), got " +
                         TypeName(input));
  }
  return ToJson(input, where);
}

std::optional<double> Number(py::handle value, const std::string& where, const char* what) {
  if (value.is_none()) return std::nullopt;
  if (py::isinstance<py::bool_>(value) ||
      !(py::isinstance<py::float_>(value) || py::isinstance<py::int_>(value) ||
        py::hasattr(value, "__float__"))) {
    throw py::type_error(where + ": " + what + " must be a number, got " + TypeName(value));
  }
  return value.cast<double>();
}

// One example: (input, {model: quality}) or (input, {model: quality}, {model: output_tokens});
// a label value may also be {"quality": q, "output_tokens": t} (the trace format's labels).
route::Example ExampleFromPy(py::handle item, size_t i) {
  const std::string at = "examples[" + std::to_string(i) + "]";
  if (!py::isinstance<py::tuple>(item) && !py::isinstance<py::list>(item)) {
    throw py::type_error(at +
                         ": expected a tuple (prompt_or_request, {model: quality}[, {model: "
                         "output_tokens}]), got " +
                         TypeName(item));
  }
  py::sequence seq = py::reinterpret_borrow<py::sequence>(item);
  if (seq.size() != 2 && seq.size() != 3) {
    throw py::value_error(at +
                          ": expected 2 or 3 items (prompt_or_request, {model: quality}[, "
                          "{model: output_tokens}]), got " +
                          std::to_string(seq.size()));
  }
  route::Example example;
  example.input = InputJson(seq[0], at + "[0]");
  std::map<std::string, route::Label> labels;
  auto label_for = [&](const std::string& model) -> route::Label& {
    route::Label& l = labels[model];
    l.model = model;
    return l;
  };
  for (size_t part = 1; part < seq.size(); ++part) {
    py::handle dict = seq[part];
    if (dict.is_none() && part == 2) continue;
    if (!py::isinstance<py::dict>(dict)) {
      throw py::type_error(at + "[" + std::to_string(part) + "]: expected a dict {model: " +
                           (part == 1 ? "quality" : "output_tokens") + "}, got " + TypeName(dict));
    }
    for (auto [key, value] : py::reinterpret_borrow<py::dict>(dict)) {
      if (!py::isinstance<py::str>(key)) {
        throw py::type_error(at + ": label keys must be model names (str), got " + TypeName(key));
      }
      const std::string model = key.cast<std::string>();
      const std::string where = at + "['" + model + "']";
      route::Label& label = label_for(model);
      if (part == 2) {
        label.output_tokens = Number(value, where, "output_tokens");
      } else if (py::isinstance<py::dict>(value)) {
        py::dict d = py::reinterpret_borrow<py::dict>(value);
        if (d.contains("quality")) label.quality = Number(d["quality"], where, "quality");
        if (d.contains("output_tokens")) {
          label.output_tokens = Number(d["output_tokens"], where, "output_tokens");
        }
      } else {
        label.quality = Number(value, where, "quality");
      }
    }
  }
  for (auto& [name, label] : labels) example.labels.push_back(std::move(label));
  return example;
}

std::optional<route::Threshold> ThresholdFromPy(std::optional<double> absolute,
                                                std::optional<double> relative) {
  if (absolute && relative) {
    ThrowStatus(absl::InvalidArgumentError(
        "give quality_threshold (absolute) or relative_threshold (share of the best model), "
        "not both"));
  }
  std::optional<route::Threshold> t;
  if (absolute) t = route::Threshold::Absolute(*absolute);
  if (relative) t = route::Threshold::Relative(*relative);
  if (t) {
    ThrowIfError(
        route::ValidateThreshold(*t, absolute ? "quality_threshold" : "relative_threshold"));
  }
  return t;
}

struct PyDecision {
  Decision d;
  std::vector<std::string> names;

  template <typename T>
  py::dict PerModel(const std::vector<T>& values) const {
    py::dict out;
    for (size_t j = 0; j < names.size(); ++j) out[py::str(names[j])] = values[j];
    return out;
  }
};

py::array_t<double> Matrix(size_t n, size_t m) {
  return py::array_t<double>({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(m)});
}

route::KnnOptions KnnFromPy(const py::dict& o) {
  route::KnnOptions k;
  if (o.contains("k")) k.k = o["k"].cast<size_t>();
  if (o.contains("power")) k.power = o["power"].cast<double>();
  if (o.contains("shrinkage")) k.shrinkage = o["shrinkage"].cast<double>();
  if (o.contains("max_examples")) k.max_examples = o["max_examples"].cast<size_t>();
  if (o.contains("exact_below")) k.exact_below = o["exact_below"].cast<size_t>();
  if (o.contains("hnsw_m")) k.hnsw_m = o["hnsw_m"].cast<int>();
  if (o.contains("ef_construction")) k.hnsw_ef_construction = o["ef_construction"].cast<int>();
  if (o.contains("ef_search")) k.hnsw_ef_search = o["ef_search"].cast<int>();
  return k;
}

route::LogisticOptions LogisticFromPy(const py::dict& o) {
  route::LogisticOptions l;
  if (o.contains("l2")) l.l2 = o["l2"].cast<double>();
  if (o.contains("max_iterations")) l.max_iterations = o["max_iterations"].cast<int>();
  if (o.contains("learning_rate")) l.learning_rate = o["learning_rate"].cast<double>();
  return l;
}

}  // namespace

void RegisterRoute(py::module_& m) {
  py::class_<PyDecision>(m, "Decision", "What Router.route chose and why. Immutable.")
      .def_property_readonly("model", [](const PyDecision& p) { return p.d.model; })
      .def_property_readonly(
          "predicted_quality",
          [](const PyDecision& p) { return p.PerModel(p.d.predicted_quality); },
          "{model: predicted quality in [0, 1]} for every catalog model.")
      .def_property_readonly(
          "expected_cost", [](const PyDecision& p) { return p.PerModel(p.d.expected_cost_usd); },
          "{model: expected cost in USD} for every catalog model.")
      .def_property_readonly(
          "output_tokens", [](const PyDecision& p) { return p.PerModel(p.d.output_tokens); },
          "{model: predicted output tokens}.")
      .def_property_readonly(
          "input_tokens", [](const PyDecision& p) { return p.PerModel(p.d.input_tokens); },
          "{model: estimated input tokens}.")
      .def_property_readonly(
          "cached_tokens", [](const PyDecision& p) { return p.PerModel(p.d.cached_tokens); },
          "{model: input tokens predicted to be served from the prompt cache}.")
      .def_property_readonly(
          "category",
          [](const PyDecision& p) { return std::string(route::CategoryName(p.d.category)); })
      .def_property_readonly(
          "threshold", [](const PyDecision& p) { return p.d.threshold; },
          "The absolute quality threshold applied (a relative one is resolved per request).")
      .def_property_readonly("met_threshold", [](const PyDecision& p) { return p.d.met_threshold; })
      .def_property_readonly("reason", [](const PyDecision& p) { return p.d.reason; })
      .def("__repr__", [](const PyDecision& p) {
        return "Decision(model=" + std::string(py::repr(py::str(p.d.model))) +
               ", reason=" + std::string(py::repr(py::str(p.d.reason))) + ")";
      });

  py::class_<Router, std::shared_ptr<Router>>(
      m, "Router",
      "Routes each request to the cheapest catalog model predicted to meet a quality threshold.\n"
      "Thread-safe: route/predict run in parallel; fit/feedback are serialized. Every call\n"
      "releases the GIL.")
      .def(py::init([](const catalog::Catalog& catalog, py::handle embedder,
                       const std::string& predictor, const py::dict& knn, const py::dict& logistic,
                       double threshold, bool relative, bool include_deprecated,
                       int64_t long_context_tokens, size_t embed_head_chars,
                       size_t embed_tail_chars) {
             route::RouterOptions options;
             options.threshold = relative ? route::Threshold::Relative(threshold)
                                          : route::Threshold::Absolute(threshold);
             options.include_deprecated = include_deprecated;
             options.features.long_context_tokens = long_context_tokens;
             options.features.embed_head_chars = embed_head_chars;
             options.features.embed_tail_chars = embed_tail_chars;
             std::shared_ptr<embed::Embedder> native = EmbedderFromPy(embedder);
             route::PredictorConfig config;
             config.kind = predictor;
             config.knn = KnnFromPy(knn);
             config.logistic = LogisticFromPy(logistic);
             if (catalog.size() == 0) {
               ThrowStatus(absl::InvalidArgumentError(
                   "Router: the catalog is empty; give at least one model "
                   "(thrifty.Catalog.default() or Catalog([ModelSpec(...), ...]))"));
             }
             std::unique_ptr<route::QualityPredictor> made =
                 ValueOrThrow(route::MakePredictor(config, catalog, native->dim()));
             return std::shared_ptr<Router>(
                 ValueOrThrow(Router::Create(catalog, native, std::move(made), options)));
           }),
           py::arg("catalog"), py::arg("embedder"), py::kw_only(), py::arg("predictor") = "knn",
           py::arg("knn") = py::dict(), py::arg("logistic") = py::dict(),
           py::arg("threshold") = 0.8, py::arg("relative") = false,
           py::arg("include_deprecated") = false, py::arg("long_context_tokens") = 8000,
           py::arg("embed_head_chars") = 256, py::arg("embed_tail_chars") = 1024)
      .def_property_readonly(
          "models",
          [](const Router& r) {
            std::vector<std::string> names;
            for (const auto& s : r.catalog().models()) names.push_back(s.name);
            return names;
          },
          "Catalog model names: the column order of predict().")
      .def_property_readonly("predictor", &Router::predictor_kind,
                             "The predictor's kind: 'prior', 'knn' or 'logistic'.")
      .def_property_readonly("examples", &Router::examples, "Labeled examples the predictor holds.")
      .def_property_readonly("include_deprecated",
                             [](const Router& r) { return r.options().include_deprecated; })
      .def_property_readonly("default_threshold",
                             [](const Router& r) {
                               return py::make_tuple(
                                   r.options().threshold.value,
                                   r.options().threshold.kind == route::Threshold::Kind::kRelative);
                             })
      .def("_set_tracker",
           [](Router& r, py::handle tracker) {
             if (tracker.is_none()) {
               r.SetCachedTokensPredictor(nullptr);
               return;
             }
             if (!py::isinstance<request::CachedTokensPredictor>(tracker)) {
               throw py::type_error(
                   "tracker must be a thrifty.CachedTokensPredictor (e.g. thrifty.PrefixTracker), "
                   "got " +
                   TypeName(tracker));
             }
             r.SetCachedTokensPredictor(
                 tracker.cast<std::shared_ptr<request::CachedTokensPredictor>>());
           })
      .def(
          "fit",
          [](Router& r, py::iterable examples) {
            std::vector<route::Example> parsed;
            size_t i = 0;
            for (py::handle item : examples) parsed.push_back(ExampleFromPy(item, i++));
            if (parsed.empty()) {
              ThrowStatus(absl::InvalidArgumentError(
                  "Router.fit: examples is empty; give (prompt_or_request, {model: quality}) "
                  "tuples"));
            }
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = r.Fit(parsed);
            }
            if (!status.ok()) ThrowEmbedStatus(status);
          },
          py::arg("examples"),
          "Replaces what the predictor learned with labeled examples: (prompt_or_request, "
          "{model: quality in [0, 1]}) or with a third item {model: output_tokens}.")
      .def(
          "feedback",
          [](Router& r, py::handle input, const std::string& model, std::optional<double> quality,
             std::optional<double> output_tokens) {
            if (!quality && !output_tokens) {
              ThrowStatus(absl::InvalidArgumentError(
                  "Router.feedback: give quality (in [0, 1]), output_tokens, or both"));
            }
            nlohmann::json json = InputJson(input, "prompt_or_request");
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = r.Feedback(json, model, quality, output_tokens);
            }
            if (!status.ok()) ThrowEmbedStatus(status);
          },
          py::arg("prompt_or_request"), py::arg("model"), py::arg("quality") = py::none(),
          py::arg("output_tokens") = py::none(), "Learns one observed outcome online.")
      .def(
          "route",
          [](const Router& r, py::handle input, std::optional<double> quality_threshold,
             std::optional<double> relative_threshold, py::object embedding) {
            const std::optional<route::Threshold> t =
                ThresholdFromPy(quality_threshold, relative_threshold);
            nlohmann::json json = InputJson(input, "prompt_or_request");
            absl::StatusOr<Decision> d;
            if (embedding.is_none()) {
              py::gil_scoped_release release;
              d = r.Route(json, t);
            } else {
              auto array =
                  py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(embedding);
              if (!array || array.ndim() != 1) {
                throw py::value_error("embedding must be a 1-d float32 array");
              }
              py::gil_scoped_release release;
              d = r.RouteEmbedded(json, std::span<const float>(array.data(), array.size()), t);
            }
            if (!d.ok()) ThrowEmbedStatus(d.status());
            return PyDecision{*std::move(d), [&] {
                                std::vector<std::string> names;
                                for (const auto& s : r.catalog().models()) names.push_back(s.name);
                                return names;
                              }()};
          },
          py::arg("prompt_or_request"), py::arg("quality_threshold") = py::none(), py::kw_only(),
          py::arg("relative_threshold") = py::none(), py::arg("embedding") = py::none(),
          "The cheapest model predicted to reach the threshold (absolute quality_threshold in "
          "[0, 1], or relative_threshold: a share of the best model's predicted quality).")
      .def(
          "predict",
          [](const Router& r, py::iterable inputs, bool with_cost) {
            std::vector<nlohmann::json> parsed;
            size_t i = 0;
            for (py::handle item : inputs) {
              parsed.push_back(InputJson(item, "prompts[" + std::to_string(i++) + "]"));
            }
            const size_t n = parsed.size();
            const size_t models = r.catalog().size();
            py::array_t<double> q = Matrix(n, models), t = Matrix(n, models);
            py::array_t<double> c = Matrix(with_cost ? n : 0, models);
            std::span<double> qs(q.mutable_data(), n * models), ts(t.mutable_data(), n * models);
            std::span<double> cs;
            if (with_cost) cs = std::span<double>(c.mutable_data(), n * models);
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = r.Predict(parsed, qs, ts, cs);
            }
            if (!status.ok()) ThrowEmbedStatus(status);
            if (with_cost) return py::tuple(py::make_tuple(q, t, c));
            return py::tuple(py::make_tuple(q, t));
          },
          py::arg("prompts"), py::kw_only(), py::arg("with_cost") = false,
          "(quality, output_tokens) as float64 arrays [n, len(models)]; with_cost=True adds the "
          "expected cost in USD.")
      .def(
          "save",
          [](const Router& r, const std::string& path) {
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = r.Save(path);
            }
            ThrowIfError(status);
          },
          py::arg("path"))
      .def_static(
          "_load",
          [](const std::string& path, const catalog::Catalog& catalog, py::handle embedder) {
            std::shared_ptr<embed::Embedder> native = EmbedderFromPy(embedder);
            absl::StatusOr<std::unique_ptr<Router>> r;
            {
              py::gil_scoped_release release;
              r = Router::Load(path, catalog, native);
            }
            return std::shared_ptr<Router>(ValueOrThrow(std::move(r)));
          },
          py::arg("path"), py::arg("catalog"), py::arg("embedder"));
}

}  // namespace thrifty::bindings
