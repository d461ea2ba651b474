// Bindings for thrifty::cost: Usage, its provider parsers, and Catalog.cost.
#include "cost.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "errors.h"
#include "json_convert.h"
#include "register.h"
#include "thrifty/catalog/catalog.h"
#include "thrifty/cost/pricing.h"

namespace py = pybind11;

namespace thrifty::bindings {

using cost::Usage;

cost::Usage UsageFromPy(py::handle usage, std::string_view provider) {
  if (py::isinstance<Usage>(usage)) return usage.cast<Usage>();
  const nlohmann::json report = ToJson(usage, "usage");
  return ValueOrThrow(cost::UsageFromProvider(provider, report));
}

namespace {

py::dict UsageToDict(const Usage& u) {
  py::dict d;
  d["input_tokens"] = u.input_tokens;
  d["cached_input_tokens"] = u.cached_input_tokens;
  d["cache_write_5m_tokens"] = u.cache_write_5m_tokens;
  d["cache_write_1h_tokens"] = u.cache_write_1h_tokens;
  d["output_tokens"] = u.output_tokens;
  d["reasoning_tokens"] = u.reasoning_tokens;
  return d;
}

template <typename Parser>
auto BindParser(Parser parser, const char* what) {
  return [parser, what](py::handle report) { return ValueOrThrow(parser(ToJson(report, what))); };
}

const catalog::ModelSpec& SpecOf(const catalog::Catalog& c, py::handle model) {
  if (py::isinstance<catalog::ModelSpec>(model)) return model.cast<const catalog::ModelSpec&>();
  if (!py::isinstance<py::str>(model)) {
    throw py::type_error("model must be a model name (str) or a ModelSpec, got " +
                         std::string(py::str(py::type::of(model).attr("__name__"))));
  }
  return *ValueOrThrow(c.Get(model.cast<std::string>()));
}

}  // namespace

void RegisterCost(py::module_& m) {
  py::class_<Usage>(m, "Usage",
                    "One call's token counts, normalized across providers. Buckets are disjoint:\n"
                    "input_tokens are the uncached prompt tokens; output_tokens include\n"
                    "reasoning_tokens. Immutable value type.")
      .def(py::init([](int64_t input_tokens, int64_t cached_input_tokens,
                       int64_t cache_write_5m_tokens, int64_t cache_write_1h_tokens,
                       int64_t output_tokens, int64_t reasoning_tokens) {
             Usage u{input_tokens,          cached_input_tokens, cache_write_5m_tokens,
                     cache_write_1h_tokens, output_tokens,       reasoning_tokens};
             ThrowIfError(cost::ValidateUsage(u));
             return u;
           }),
           py::arg("input_tokens") = 0, py::arg("cached_input_tokens") = 0,
           py::arg("cache_write_5m_tokens") = 0, py::arg("cache_write_1h_tokens") = 0,
           py::arg("output_tokens") = 0, py::arg("reasoning_tokens") = 0)
      .def_readonly("input_tokens", &Usage::input_tokens)
      .def_readonly("cached_input_tokens", &Usage::cached_input_tokens)
      .def_readonly("cache_write_5m_tokens", &Usage::cache_write_5m_tokens)
      .def_readonly("cache_write_1h_tokens", &Usage::cache_write_1h_tokens)
      .def_readonly("output_tokens", &Usage::output_tokens)
      .def_readonly("reasoning_tokens", &Usage::reasoning_tokens)
      .def_property_readonly("prompt_tokens", &Usage::prompt_tokens,
                             "Every prompt token, cached or not.")
      .def_property_readonly("total_tokens", &Usage::total_tokens)
      .def_static("from_openai", BindParser(cost::UsageFromOpenAI, "openai usage"),
                  py::arg("usage"),
                  "From a Chat Completions or Responses usage (object or dict), or a whole "
                  "response.")
      .def_static("from_anthropic", BindParser(cost::UsageFromAnthropic, "anthropic usage"),
                  py::arg("usage"))
      .def_static("from_gemini", BindParser(cost::UsageFromGemini, "gemini usage"),
                  py::arg("usage"))
      .def_static("from_deepseek", BindParser(cost::UsageFromDeepSeek, "deepseek usage"),
                  py::arg("usage"))
      .def_static(
          "from_provider",
          [](std::string_view provider, py::handle usage) { return UsageFromPy(usage, provider); },
          py::arg("provider"), py::arg("usage"),
          "Parses with the provider's parser; provider='' detects the shape.")
      .def("to_dict", &UsageToDict)
      .def("__add__", [](const Usage& a, const Usage& b) { return a + b; })
      .def("__eq__", [](const Usage& a, const Usage& b) { return a == b; })
      .def("__repr__",
           [](const Usage& u) {
             return "Usage(input_tokens=" + std::to_string(u.input_tokens) +
                    ", cached_input_tokens=" + std::to_string(u.cached_input_tokens) +
                    ", cache_write_5m_tokens=" + std::to_string(u.cache_write_5m_tokens) +
                    ", cache_write_1h_tokens=" + std::to_string(u.cache_write_1h_tokens) +
                    ", output_tokens=" + std::to_string(u.output_tokens) +
                    ", reasoning_tokens=" + std::to_string(u.reasoning_tokens) + ")";
           })
      .def(py::pickle([](const Usage& u) { return UsageToDict(u); },
                      [](const py::dict& d) {
                        return Usage{d["input_tokens"].cast<int64_t>(),
                                     d["cached_input_tokens"].cast<int64_t>(),
                                     d["cache_write_5m_tokens"].cast<int64_t>(),
                                     d["cache_write_1h_tokens"].cast<int64_t>(),
                                     d["output_tokens"].cast<int64_t>(),
                                     d["reasoning_tokens"].cast<int64_t>()};
                      }));

  // Catalog pricing lives here so the catalog binding does not depend on the cost area.
  auto catalog_class = py::type::of<catalog::Catalog>();
  catalog_class.attr("cost") = py::cpp_function(
      [](const catalog::Catalog& c, py::handle model, py::handle usage) {
        const catalog::ModelSpec& spec = SpecOf(c, model);
        return cost::CostUsd(spec, UsageFromPy(usage, spec.provider));
      },
      py::name("cost"), py::is_method(catalog_class), py::arg("model"), py::arg("usage"),
      "USD for `usage` on `model` at its published prices. usage: a Usage, or the provider's "
      "own usage object or dict (parsed with the model's provider).");
  catalog_class.attr("cost_breakdown") = py::cpp_function(
      [](const catalog::Catalog& c, py::handle model, py::handle usage) {
        const catalog::ModelSpec& spec = SpecOf(c, model);
        const Usage u = UsageFromPy(usage, spec.provider);
        const cost::CostBreakdown b = cost::PriceUsage(spec, u);
        py::dict d;
        d["input_usd"] = b.input_usd;
        d["cached_input_usd"] = b.cached_input_usd;
        d["cache_write_usd"] = b.cache_write_usd;
        d["output_usd"] = b.output_usd;
        d["total_usd"] = b.total_usd();
        d["uncached_usd"] = cost::UncachedCostUsd(spec, u);
        return d;
      },
      py::name("cost_breakdown"), py::is_method(catalog_class), py::arg("model"), py::arg("usage"),
      "Cost by bucket (input, cached input, cache writes, output), the total, and what the "
      "same usage would cost with no prompt cache (uncached_usd).");
}

}  // namespace thrifty::bindings
