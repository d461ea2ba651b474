// Bindings for thrifty::cache::ExactCache.
//
// GIL: every call that locks a shard or touches the file system runs under
// py::gil_scoped_release; nothing blocks on a shard mutex while holding the GIL. Arguments are
// converted first, with the GIL held: a value is copied into a std::string, a usage dict into
// JSON text, a path into a std::string. Keys and namespaces are read through views of the str's
// UTF-8 buffer instead of being copied: a str is immutable and the call holds a reference to
// it, so the buffer stays valid while the GIL is released (as in request.cc). Results are
// turned into Python objects after the GIL is taken back; a hit shares the stored value
// (a reference-counted pointer), so the shard lock is never held while copying it out.
#include "thrifty/cache/exact_cache.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // std::optional arguments

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "errors.h"
#include "json_convert.h"
#include "nlohmann/json.hpp"
#include "register.h"
#include "thrifty/base/strings.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

using cache::CachedValue;
using cache::EntryMetadata;
using cache::ExactCache;
using cache::ExactCacheOptions;
using cache::ExactCacheStats;
using cache::ValueKind;

const char* TypeName(py::handle object) { return Py_TYPE(object.ptr())->tp_name; }

// The UTF-8 text of a str argument; TypeError for anything else (bytes keys included, so a key
// always means the same thing).
std::string_view StrArg(py::handle object, std::string_view method, std::string_view name) {
  if (!PyUnicode_Check(object.ptr())) {
    throw py::type_error(
        StrCat("ExactCache.", method, ": ", name, " must be str, got ", TypeName(object)));
  }
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(object.ptr(), &size);
  if (data == nullptr) throw py::error_already_set();
  return {data, static_cast<size_t>(size)};
}

std::pair<std::string, ValueKind> ValueArg(py::handle value) {
  if (PyBytes_Check(value.ptr())) {
    return {std::string(PyBytes_AS_STRING(value.ptr()),
                        static_cast<size_t>(PyBytes_GET_SIZE(value.ptr()))),
            ValueKind::kBytes};
  }
  if (PyUnicode_Check(value.ptr())) {
    return {std::string(StrArg(value, "put", "value")), ValueKind::kText};
  }
  throw py::type_error(
      StrCat("ExactCache.put: value must be bytes or str, got ", TypeName(value),
             " (encode other data first, e.g. json.dumps(...) or a bytes serialization)"));
}

py::object ValueToPy(const CachedValue& value) {
  if (value.kind == ValueKind::kText) {
    PyObject* text = PyUnicode_DecodeUTF8(value.value.data(),
                                          static_cast<Py_ssize_t>(value.value.size()), "strict");
    if (text == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(text);
  }
  return py::bytes(value.value.data(), value.value.size());
}

// None: the cache's default (put) or no expiry (constructor); inf: never expires.
std::optional<absl::Duration> TtlArg(std::optional<double> seconds, std::string_view where) {
  if (!seconds) return std::nullopt;
  if (!(*seconds > 0)) {  // also NaN
    ThrowStatus(
        absl::InvalidArgumentError(StrCat(where, ": ttl_seconds must be > 0, got ", *seconds,
                                          " (None for the default, float('inf') for never)")));
  }
  return std::isinf(*seconds) ? absl::InfiniteDuration() : absl::Seconds(*seconds);
}

std::optional<int64_t> LimitArg(std::optional<int64_t> limit, std::string_view name) {
  if (limit && *limit <= 0) {
    ThrowStatus(absl::InvalidArgumentError(
        StrCat("ExactCache: ", name, " must be > 0, got ", *limit, " (None for no limit)")));
  }
  return limit;
}

std::string UsageArg(py::handle usage) {
  if (usage.is_none()) return "";
  const nlohmann::json json = ToJson(usage, "usage");
  if (!json.is_object()) {
    throw py::type_error(
        StrCat("ExactCache.put: usage must be a dict (or an SDK usage object) "
               "or None, got ",
               TypeName(usage)));
  }
  return json.dump();
}

py::object UsageToPy(const std::string& usage_json) {
  if (usage_json.empty()) return py::none();
  nlohmann::json json = nlohmann::json::parse(usage_json, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return py::str(usage_json);  // stored by C++ as non-JSON text
  return FromJson(json);
}

py::object TimeToPy(absl::Time time) {
  if (time == absl::InfiniteFuture()) return py::none();
  return py::float_(absl::ToDoubleSeconds(time - absl::UnixEpoch()));
}

std::string PathArg(py::handle path) {
  return py::module_::import("os").attr("fspath")(path).cast<std::string>();
}

// `key` in the default namespace, or a (namespace, key) tuple.
std::pair<std::string_view, std::string_view> ContainsArg(py::handle item) {
  if (PyTuple_Check(item.ptr()) && PyTuple_GET_SIZE(item.ptr()) == 2) {
    return {StrArg(PyTuple_GET_ITEM(item.ptr(), 0), "__contains__", "namespace"),
            StrArg(PyTuple_GET_ITEM(item.ptr(), 1), "__contains__", "key")};
  }
  if (!PyUnicode_Check(item.ptr())) {
    throw py::type_error(
        StrCat("ExactCache.__contains__: expected a str key or a (namespace, "
               "key) tuple, got ",
               TypeName(item)));
  }
  return {std::string_view(), StrArg(item, "__contains__", "key")};
}

py::object OptionalInt(const std::optional<int64_t>& value) {
  if (!value) return py::none();
  return py::int_(*value);
}

py::object TtlSeconds(const ExactCacheOptions& options) {
  if (!options.default_ttl) return py::none();
  return py::float_(absl::ToDoubleSeconds(*options.default_ttl));
}

}  // namespace

void RegisterExactCache(py::module_& m) {
  py::class_<ExactCache>(
      m, "ExactCache",
      "An in-memory response cache keyed by (namespace, key), usually\n"
      "thrifty.request_key(...) hex strings; any str works. Values are bytes or str and come\n"
      "back as the type stored, with the response's model, usage and cost_usd.\n\n"
      "Limits: max_entries and max_bytes (an entry's size is its namespace, key, value, model\n"
      "and usage JSON in bytes); least recently used entries are evicted first. A value too\n"
      "large for max_bytes raises InvalidArgumentError. ttl_seconds is the default TTL; expiry\n"
      "is checked on access.\n\n"
      "Thread-safe: share one cache across threads. Every call that locks or does I/O\n"
      "releases the GIL.")
      .def(py::init([](std::optional<int64_t> max_entries, std::optional<int64_t> max_bytes,
                       std::optional<double> ttl_seconds) {
             ExactCacheOptions options;
             options.max_entries = LimitArg(max_entries, "max_entries");
             options.max_bytes = LimitArg(max_bytes, "max_bytes");
             options.default_ttl = TtlArg(ttl_seconds, "ExactCache");
             return ValueOrThrow(ExactCache::Create(options));
           }),
           py::arg("max_entries") = py::none(), py::arg("max_bytes") = py::none(),
           py::arg("ttl_seconds") = py::none())
      .def(
          "get",
          [](ExactCache& self, py::handle key, py::handle ns) -> py::object {
            const std::string_view key_view = StrArg(key, "get", "key");
            const std::string_view ns_view = StrArg(ns, "get", "namespace");
            std::shared_ptr<const CachedValue> value;
            {
              py::gil_scoped_release release;
              value = self.Get(ns_view, key_view);
            }
            return value ? ValueToPy(*value) : py::none();
          },
          py::arg("key"), py::arg("namespace") = "",
          "The cached value (bytes or str, as stored), or None. Counts a hit or a miss.")
      .def(
          "get_entry",
          [](ExactCache& self, py::handle key, py::handle ns) -> py::object {
            const std::string_view key_view = StrArg(key, "get_entry", "key");
            const std::string_view ns_view = StrArg(ns, "get_entry", "namespace");
            std::shared_ptr<const CachedValue> value;
            {
              py::gil_scoped_release release;
              value = self.Get(ns_view, key_view);
            }
            if (!value) return py::none();
            py::dict entry;
            entry["value"] = ValueToPy(*value);
            entry["model"] = py::str(value->metadata.model);
            entry["usage"] = UsageToPy(value->metadata.usage_json);
            entry["cost_usd"] = value->metadata.cost_usd;
            entry["created_at"] = TimeToPy(value->created_at);
            entry["expires_at"] = TimeToPy(value->expires_at);
            return entry;
          },
          py::arg("key"), py::arg("namespace") = "",
          "A dict with value, model, usage (dict or None), cost_usd, created_at and expires_at\n"
          "(Unix seconds; expires_at None when it never expires), or None. Counts like get().")
      .def(
          "put",
          [](ExactCache& self, py::handle key, py::handle value, py::handle ns,
             std::optional<double> ttl_seconds, double cost_usd, py::handle model,
             py::handle usage) {
            const std::string_view key_view = StrArg(key, "put", "key");
            const std::string_view ns_view = StrArg(ns, "put", "namespace");
            auto [data, kind] = ValueArg(value);
            EntryMetadata metadata;
            metadata.model = std::string(StrArg(model, "put", "model"));
            metadata.usage_json = UsageArg(usage);
            metadata.cost_usd = cost_usd;
            const std::optional<absl::Duration> ttl = TtlArg(ttl_seconds, "ExactCache.put");
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = self.Put(ns_view, key_view, std::move(data), kind, std::move(metadata), ttl);
            }
            ThrowIfError(status);
          },
          py::arg("key"), py::arg("value"), py::arg("namespace") = "",
          py::arg("ttl_seconds") = py::none(), py::arg("cost_usd") = 0.0, py::arg("model") = "",
          py::arg("usage") = py::none(),
          "Stores value (bytes or str) with the response's metadata, replacing any entry for\n"
          "(namespace, key), then evicts least recently used entries down to the limits.\n"
          "ttl_seconds: None uses the cache's default, float('inf') never expires. cost_usd is\n"
          "what the response cost; every later hit adds it to stats()['saved_usd'].")
      .def(
          "delete",
          [](ExactCache& self, py::handle key, py::handle ns) {
            const std::string_view key_view = StrArg(key, "delete", "key");
            const std::string_view ns_view = StrArg(ns, "delete", "namespace");
            py::gil_scoped_release release;
            return self.Delete(ns_view, key_view);
          },
          py::arg("key"), py::arg("namespace") = "",
          "Removes the entry; True when a live entry was removed.")
      .def(
          "stats",
          [](const ExactCache& self) {
            ExactCacheStats stats;
            {
              py::gil_scoped_release release;
              stats = self.Stats();
            }
            py::dict d;
            d["hits"] = stats.hits;
            d["misses"] = stats.misses;
            d["evictions"] = stats.evictions;
            d["expirations"] = stats.expirations;
            d["entries"] = stats.entries;
            d["bytes"] = stats.bytes;
            d["saved_usd"] = stats.saved_usd;
            return d;
          },
          "Counters since the cache was made (hits, misses, evictions, expirations, saved_usd)\n"
          "and the current entries and bytes (expired entries count until they are collected).")
      .def(
          "clear",
          [](ExactCache& self) {
            py::gil_scoped_release release;
            self.Clear();
          },
          "Removes every entry; the counters are kept.")
      .def(
          "save",
          [](const ExactCache& self, py::handle path) {
            const std::string path_string = PathArg(path);
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = self.Save(path_string);
            }
            ThrowIfError(status);
          },
          py::arg("path"),
          "Writes the live entries to path (a versioned, checksummed binary snapshot) through a\n"
          "temporary file that is fsync'ed and renamed over path, so a crash mid-save leaves\n"
          "the previous snapshot intact. The file is created readable by its owner only.")
      .def(
          "load",
          [](ExactCache& self, py::handle path) {
            const std::string path_string = PathArg(path);
            absl::StatusOr<int64_t> loaded;
            {
              py::gil_scoped_release release;
              loaded = self.Load(path_string);
            }
            return ValueOrThrow(std::move(loaded));
          },
          py::arg("path"),
          "Replaces this cache's contents with the snapshot at path, keeping this cache's\n"
          "limits and TTL: expired entries are skipped, and when the snapshot holds more than\n"
          "the limits allow, the most recently used entries that fit are kept. Counters are\n"
          "kept. Returns the number of entries loaded. The file is validated before anything\n"
          "is replaced: NotFoundError when it is missing, InvalidArgumentError when it is not a\n"
          "snapshot of a supported version, InternalError (data loss) when it is truncated or\n"
          "fails its checksum.")
      .def("__len__", &ExactCache::size,
           "Number of entries, including expired ones not yet collected.")
      .def(
          "__contains__",
          [](const ExactCache& self, py::handle item) {
            const auto [ns, key] = ContainsArg(item);
            py::gil_scoped_release release;
            return self.Contains(ns, key);
          },
          py::arg("key"),
          "`key in cache` (default namespace) or `(namespace, key) in cache`; counts nothing.")
      .def_property_readonly(
          "max_entries",
          [](const ExactCache& self) { return OptionalInt(self.options().max_entries); })
      .def_property_readonly(
          "max_bytes", [](const ExactCache& self) { return OptionalInt(self.options().max_bytes); })
      .def_property_readonly("ttl_seconds",
                             [](const ExactCache& self) { return TtlSeconds(self.options()); })
      .def("__repr__", [](const ExactCache& self) {
        return StrCat("ExactCache(entries=", self.size(), ", max_entries=",
                      std::string(py::repr(OptionalInt(self.options().max_entries))),
                      ", max_bytes=", std::string(py::repr(OptionalInt(self.options().max_bytes))),
                      ", ttl_seconds=", std::string(py::repr(TtlSeconds(self.options()))), ")");
      });
}

}  // namespace thrifty::bindings
