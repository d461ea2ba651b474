// Bindings for thrifty::catalog: ModelSpec and Catalog.
#include "thrifty/catalog/catalog.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"
#include "json_convert.h"
#include "register.h"
#include "thrifty/catalog/provider_rules.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

using catalog::Catalog;
using catalog::ModelSpec;
using catalog::ProviderCacheRules;

template <typename T>
py::object OptionalToPy(const std::optional<T>& value) {
  return value ? py::cast(*value) : py::none();
}

py::dict SpecToDict(const ModelSpec& s) {
  py::dict d;
  d["name"] = s.name;
  d["provider"] = s.provider;
  d["input_per_mtok"] = s.input_per_mtok;
  d["output_per_mtok"] = s.output_per_mtok;
  d["cached_input_per_mtok"] = OptionalToPy(s.cached_input_per_mtok);
  d["cache_write_5m_per_mtok"] = OptionalToPy(s.cache_write_5m_per_mtok);
  d["cache_write_1h_per_mtok"] = OptionalToPy(s.cache_write_1h_per_mtok);
  d["context_window"] = OptionalToPy(s.context_window);
  d["max_output_tokens"] = OptionalToPy(s.max_output_tokens);
  d["quality"] = py::cast(s.quality);
  d["aliases"] = py::tuple(py::cast(s.aliases));
  d["deprecated"] = s.deprecated;
  d["source"] = s.source;
  return d;
}

py::dict RulesToDict(const ProviderCacheRules& r) {
  py::dict d;
  d["mode"] = std::string(catalog::CacheModeName(r.mode));
  d["aliases"] = py::cast(r.aliases);
  py::list mins;
  for (const auto& rule : r.min_tokens) {
    py::dict item;
    item["models"] = py::cast(rule.models);
    item["tokens"] = rule.tokens;
    mins.append(item);
  }
  d["min_tokens"] = mins;
  d["block_tokens"] = r.block_tokens;
  d["max_breakpoints"] = r.max_breakpoints;
  d["lookback_blocks"] = r.lookback_blocks;
  py::list ttls;
  for (const auto& t : r.ttls) {
    py::dict item;
    item["name"] = t.name;
    item["seconds"] = t.seconds;
    item["write_multiplier"] = t.write_multiplier;
    ttls.append(item);
  }
  d["ttls"] = ttls;
  d["read_multiplier"] = r.read_multiplier;
  d["cache_key_field"] = r.cache_key_field;
  d["cache_key_rpm"] = r.cache_key_rpm;
  d["usage_fields"] = py::cast(r.usage_fields);
  d["source"] = r.source;
  d["read_on"] = r.read_on;
  return d;
}

}  // namespace

void RegisterCatalog(py::module_& m) {
  py::class_<ProviderCacheRules>(
      m, "ProviderCacheRules",
      "One provider's prompt-cache rules (a policy file's providers.<name> entry):\n"
      "mode, minimum cacheable tokens per model family, breakpoints, lookback, TTLs,\n"
      "multipliers, cache key, usage field names and where they were read. Immutable.")
      .def_static(
          "from_dict",
          [](std::string_view provider, py::handle entry) {
            return ValueOrThrow(
                catalog::ProviderCacheRulesFromJson(provider, ToJson(entry, "providers entry")));
          },
          py::arg("provider"), py::arg("entry"),
          "Reads and validates one providers.<name> entry (a dict with the policy's fields).")
      .def_readonly("provider", &ProviderCacheRules::provider)
      .def_property_readonly(
          "mode",
          [](const ProviderCacheRules& r) { return std::string(catalog::CacheModeName(r.mode)); })
      .def_readonly("block_tokens", &ProviderCacheRules::block_tokens)
      .def_readonly("max_breakpoints", &ProviderCacheRules::max_breakpoints)
      .def_readonly("lookback_blocks", &ProviderCacheRules::lookback_blocks)
      .def_readonly("read_multiplier", &ProviderCacheRules::read_multiplier)
      .def_readonly("cache_key_field", &ProviderCacheRules::cache_key_field)
      .def_readonly("cache_key_rpm", &ProviderCacheRules::cache_key_rpm)
      .def_readonly("source", &ProviderCacheRules::source)
      .def_readonly("read_on", &ProviderCacheRules::read_on)
      .def("min_tokens_for", &ProviderCacheRules::MinTokensFor, py::arg("model"),
           "The minimum cacheable prefix for a catalog model name.")
      .def("cached_from_matched", &ProviderCacheRules::CachedFromMatched, py::arg("model"),
           py::arg("matched_tokens"),
           "Tokens served from a warm prefix of matched_tokens (minimum and granularity applied).")
      .def(
          "ttl_seconds",
          [](const ProviderCacheRules& r, std::string_view name) -> std::optional<int64_t> {
            const catalog::CacheTtl* t = r.FindTtl(name);
            return t ? std::optional<int64_t>(t->seconds) : std::nullopt;
          },
          py::arg("name") = "", "Seconds of the TTL called name ('' = the default), or None.")
      .def("to_dict", &RulesToDict)
      .def("__eq__",
           [](const ProviderCacheRules& a, const ProviderCacheRules& b) { return a == b; })
      .def("__repr__", [](const ProviderCacheRules& r) {
        return "ProviderCacheRules(provider='" + r.provider + "', mode='" +
               std::string(catalog::CacheModeName(r.mode)) + "')";
      });

  py::class_<ModelSpec>(m, "ModelSpec",
                        "One model's prices (USD per million tokens), limits and quality priors.\n"
                        "Immutable; thread-safe to share.")
      .def(py::init([](std::string name, std::string provider, double input_per_mtok,
                       double output_per_mtok, std::optional<double> cached_input_per_mtok,
                       std::optional<double> cache_write_5m_per_mtok,
                       std::optional<double> cache_write_1h_per_mtok,
                       std::optional<int64_t> context_window,
                       std::optional<int64_t> max_output_tokens,
                       std::optional<std::map<std::string, double, std::less<>>> quality,
                       std::vector<std::string> aliases, bool deprecated, std::string source) {
             ModelSpec spec;
             spec.name = std::move(name);
             spec.provider = std::move(provider);
             spec.input_per_mtok = input_per_mtok;
             spec.output_per_mtok = output_per_mtok;
             spec.cached_input_per_mtok = cached_input_per_mtok;
             spec.cache_write_5m_per_mtok = cache_write_5m_per_mtok;
             spec.cache_write_1h_per_mtok = cache_write_1h_per_mtok;
             spec.context_window = context_window;
             spec.max_output_tokens = max_output_tokens;
             if (quality) spec.quality = std::move(*quality);
             spec.aliases = std::move(aliases);
             spec.deprecated = deprecated;
             spec.source = std::move(source);
             ThrowIfError(catalog::ValidateModelSpec(spec));
             return spec;
           }),
           py::arg("name"), py::arg("provider"), py::arg("input_per_mtok"),
           py::arg("output_per_mtok"), py::kw_only(), py::arg("cached_input_per_mtok") = py::none(),
           py::arg("cache_write_5m_per_mtok") = py::none(),
           py::arg("cache_write_1h_per_mtok") = py::none(), py::arg("context_window") = py::none(),
           py::arg("max_output_tokens") = py::none(), py::arg("quality") = py::none(),
           py::arg("aliases") = std::vector<std::string>{}, py::arg("deprecated") = false,
           py::arg("source") = "")
      .def_readonly("name", &ModelSpec::name)
      .def_readonly("provider", &ModelSpec::provider)
      .def_readonly("input_per_mtok", &ModelSpec::input_per_mtok)
      .def_readonly("output_per_mtok", &ModelSpec::output_per_mtok)
      .def_readonly("cached_input_per_mtok", &ModelSpec::cached_input_per_mtok)
      .def_readonly("cache_write_5m_per_mtok", &ModelSpec::cache_write_5m_per_mtok)
      .def_readonly("cache_write_1h_per_mtok", &ModelSpec::cache_write_1h_per_mtok)
      .def_readonly("context_window", &ModelSpec::context_window)
      .def_readonly("max_output_tokens", &ModelSpec::max_output_tokens)
      .def_property_readonly("quality", [](const ModelSpec& s) { return py::cast(s.quality); })
      .def_property_readonly("aliases",
                             [](const ModelSpec& s) { return py::tuple(py::cast(s.aliases)); })
      .def_readonly("deprecated", &ModelSpec::deprecated)
      .def_readonly("source", &ModelSpec::source)
      .def("to_dict", &SpecToDict, "All fields as a plain dict.")
      .def("__eq__", [](const ModelSpec& a, const ModelSpec& b) { return a == b; })
      .def("__hash__", [](const ModelSpec& s) { return py::hash(py::str(s.name)); })
      .def("__repr__",
           [](const ModelSpec& s) {
             return "ModelSpec(name='" + s.name + "', provider='" + s.provider +
                    "', input_per_mtok=" +
                    py::repr(py::float_(s.input_per_mtok)).cast<std::string>() +
                    ", output_per_mtok=" +
                    py::repr(py::float_(s.output_per_mtok)).cast<std::string>() + ")";
           })
      .def(py::pickle(
          [](const ModelSpec& s) { return SpecToDict(s); },
          [](const py::dict& d) {
            return py::module_::import("thrifty._core").attr("ModelSpec")(**d).cast<ModelSpec>();
          }));

  py::class_<Catalog, std::shared_ptr<Catalog>>(
      m, "Catalog",
      "The models a router may choose from, by name or alias (case-insensitive; a\n"
      "'provider/' prefix is accepted). Immutable; thread-safe to share.")
      .def(py::init([](const std::vector<ModelSpec>& models,
                       const std::vector<ProviderCacheRules>& providers) {
             return std::make_shared<Catalog>(ValueOrThrow(Catalog::Create(models, providers)));
           }),
           py::arg("models"), py::arg("providers") = std::vector<ProviderCacheRules>{})
      .def(
          "provider_rules",
          [](const Catalog& c, std::string_view provider) {
            return *ValueOrThrow(c.GetProviderRules(provider));
          },
          py::arg("provider"),
          "The provider's prompt-cache rules; NotFoundError listing the known providers otherwise.")
      .def(
          "providers", [](const Catalog& c) { return c.providers(); },
          "Every provider's prompt-cache rules, in policy order.")
      .def(
          "get", [](const Catalog& c, std::string_view name) { return *ValueOrThrow(c.Get(name)); },
          py::arg("name_or_alias"),
          "The model's spec; NotFoundError (a KeyError) listing the closest names otherwise.")
      .def(
          "find",
          [](const Catalog& c, std::string_view name) -> std::optional<ModelSpec> {
            const ModelSpec* spec = c.Find(name);
            return spec ? std::optional<ModelSpec>(*spec) : std::nullopt;
          },
          py::arg("name_or_alias"), "The model's spec, or None.")
      .def(
          "models", [](const Catalog& c) { return c.models(); }, "Every ModelSpec, in order.")
      .def("names",
           [](const Catalog& c) {
             std::vector<std::string> names;
             for (const auto& s : c.models()) names.push_back(s.name);
             return names;
           })
      .def("__len__", &Catalog::size)
      .def("__contains__",
           [](const Catalog& c, std::string_view name) { return c.Find(name) != nullptr; })
      .def("__iter__", [](const Catalog& c) { return py::iter(py::cast(c.models())); })
      .def("__repr__", [](const Catalog& c) {
        return "<thrifty.Catalog with " + std::to_string(c.size()) + " models>";
      });
}

}  // namespace thrifty::bindings
