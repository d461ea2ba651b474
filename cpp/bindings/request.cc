// Bindings for thrifty::request: request keys, canonical requests, token estimates.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "errors.h"
#include "json_convert.h"
#include "register.h"
#include "thrifty/request/cached_tokens.h"
#include "thrifty/request/request_key.h"
#include "thrifty/request/token_estimate.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

nlohmann::json RequestJson(py::handle request, const char* function) {
  if (!py::isinstance<py::dict>(request)) {
    throw py::type_error(std::string(function) +
                         ": request must be a dict (an OpenAI chat or Anthropic messages "
                         "request), got " +
                         std::string(py::str(py::type::of(request).attr("__name__"))));
  }
  return ToJson(request, "request");
}

std::string_view Utf8View(const py::str& text) {
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
  if (data == nullptr) throw py::error_already_set();
  return {data, static_cast<size_t>(size)};
}

}  // namespace

void RegisterRequest(py::module_& m) {
  // Base of everything that predicts prompt-cache hits (PrefixTracker); Router(tracker=...) takes
  // any subclass. Bound with a shared_ptr holder so owners can share one tracker.
  py::class_<request::CachedTokensPredictor, std::shared_ptr<request::CachedTokensPredictor>>(
      m, "CachedTokensPredictor",
      "Base class of prompt-cache predictors such as PrefixTracker; not constructible itself.")
      .def(
          "predict_cached_tokens",
          [](const request::CachedTokensPredictor& self, const catalog::ModelSpec& model,
             py::handle request) {
            const nlohmann::json json = ToJson(request, "request");
            py::gil_scoped_release release;
            return self.PredictCachedTokens(model, json);
          },
          py::arg("model"), py::arg("request"),
          "Input tokens of `request` the provider of `model` would serve from its prompt cache "
          "if it were sent now.");
  m.def(
      "request_key",
      [](py::handle request, std::string_view ns) {
        const nlohmann::json json = RequestJson(request, "request_key");
        absl::StatusOr<request::Key128> key;
        {
          py::gil_scoped_release release;
          key = request::RequestKey(json, ns);
        }
        return ValueOrThrow(std::move(key)).ToHex();
      },
      py::arg("request"), py::arg("namespace") = "",
      "32 hex digits: XXH3-128 of the canonical request and the namespace. Fields that do not "
      "change the answer (stream, user, metadata, timeouts, extra_headers, ...) and "
      "cache_control markers are left out.");
  m.def(
      "canonical_request",
      [](py::handle request) {
        return ValueOrThrow(request::CanonicalRequest(RequestJson(request, "canonical_request")));
      },
      py::arg("request"), "The canonical JSON text that request_key hashes.");
  m.def(
      "estimate_tokens",
      [](py::handle text_or_request, std::optional<std::string> model) {
        const request::TokenizerFamily family =
            model ? request::FamilyForModel(*model) : request::TokenizerFamily::kO200k;
        if (py::isinstance<py::str>(text_or_request)) {
          const py::str text = py::reinterpret_borrow<py::str>(text_or_request);
          const std::string_view view = Utf8View(text);
          py::gil_scoped_release release;
          return request::EstimateTextTokens(view, family);
        }
        if (!py::isinstance<py::dict>(text_or_request)) {
          throw py::type_error(
              "estimate_tokens: expected a str or a request dict, got " +
              std::string(py::str(py::type::of(text_or_request).attr("__name__"))));
        }
        const nlohmann::json json = ToJson(text_or_request, "request");
        absl::StatusOr<int64_t> tokens;
        {
          py::gil_scoped_release release;
          tokens = request::EstimateRequestTokens(json, family);
        }
        return ValueOrThrow(std::move(tokens));
      },
      py::arg("text_or_request"), py::arg("model") = py::none(),
      "A fast token estimate for a text or a chat request, for `model`'s tokenizer family "
      "(default: o200k, GPT-4o/4.1/5).");
  m.def(
      "tokenizer_family",
      [](std::string_view model) {
        return std::string(request::FamilyName(request::FamilyForModel(model)));
      },
      py::arg("model"), "The tokenizer family estimate_tokens uses for `model`.");
  m.def(
      "_token_features",
      [](const py::str& text) {
        const request::TokenFeatures f = request::ExtractTokenFeatures(Utf8View(text));
        std::vector<double> out(f.word_counts.begin(), f.word_counts.end());
        out.insert(out.end(), {f.digit_groups, f.punct_runs, f.punct_chars, f.newline_runs,
                               f.space_runs, f.cjk_chars, f.other_chars, f.long_word_chars});
        return out;
      },
      py::arg("text"), "Calibration only: the estimator's feature vector for `text`.");
}

}  // namespace thrifty::bindings
