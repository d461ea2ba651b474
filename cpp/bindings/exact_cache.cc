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
#include "redis_backend.h"
#include "register.h"
#include "thrifty/base/strings.h"
#include "thrifty/cache/exact_store.h"
#include "thrifty/cache/redis_exact_store.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

using cache::CachedValue;
using cache::EntryMetadata;
using cache::ExactCache;
using cache::ExactCacheOptions;
using cache::ExactCacheStats;
using cache::ExactPutItem;
using cache::ExactStore;
using cache::RedisExactStore;
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

py::object TtlSeconds(const std::optional<absl::Duration>& ttl) {
  if (!ttl) return py::none();
  return py::float_(absl::ToDoubleSeconds(*ttl));
}

const ExactCache* Memory(const ExactStore& store) {
  return dynamic_cast<const ExactCache*>(&store);
}
const RedisExactStore* Redis(const ExactStore& store) {
  return dynamic_cast<const RedisExactStore*>(&store);
}

py::object MaxEntries(const ExactStore& store) {
  const ExactCache* memory = Memory(store);
  return memory ? OptionalInt(memory->options().max_entries) : py::none();
}
py::object MaxBytes(const ExactStore& store) {
  const ExactCache* memory = Memory(store);
  return memory ? OptionalInt(memory->options().max_bytes) : py::none();
}
py::object DefaultTtl(const ExactStore& store) {
  if (const ExactCache* memory = Memory(store)) return TtlSeconds(memory->options().default_ttl);
  if (const RedisExactStore* redis = Redis(store)) return TtlSeconds(redis->options().default_ttl);
  return py::none();
}
std::string BackendName(const ExactStore& store) {
  const cache::RedisClient* client = store.redis();
  return client ? client->url().Redacted() : "memory";
}

ExactCache& MemoryOrThrow(ExactStore& store, std::string_view method) {
  auto* memory = dynamic_cast<ExactCache*>(&store);
  if (memory == nullptr) {
    ThrowStatus(absl::UnimplementedError(
        StrCat("ExactCache.", method,
               ": snapshots are for the memory backend; a Redis backend persists through "
               "Redis itself (RDB/AOF)")));
  }
  return *memory;
}

std::unique_ptr<ExactStore> MakeStore(std::optional<int64_t> max_entries,
                                      std::optional<int64_t> max_bytes,
                                      std::optional<double> ttl_seconds,
                                      const std::optional<std::string>& backend) {
  const std::optional<absl::Duration> ttl = TtlArg(ttl_seconds, "ExactCache");
  if (!backend || *backend == "memory") {
    ExactCacheOptions options;
    options.max_entries = LimitArg(max_entries, "max_entries");
    options.max_bytes = LimitArg(max_bytes, "max_bytes");
    options.default_ttl = ttl;
    return ValueOrThrow(ExactCache::Create(options));
  }
  if (max_entries || max_bytes) {
    ThrowStatus(absl::InvalidArgumentError(
        "ExactCache: max_entries and max_bytes apply to the memory backend only; with a Redis "
        "backend, bound memory with Redis's maxmemory and maxmemory-policy (e.g. allkeys-lru)"));
  }
  std::shared_ptr<cache::RedisClient> client = RedisClientFromUrl(*backend, "ExactCache");
  cache::RedisExactStoreOptions options;
  options.default_ttl = ttl;
  return ValueOrThrow(RedisExactStore::Create(std::move(client), options));
}

}  // namespace

void RegisterExactCache(py::module_& m) {
  RegisterRedisBackend(m);
  py::class_<ExactStore>(
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
      .def(py::init(&MakeStore), py::arg("max_entries") = py::none(),
           py::arg("max_bytes") = py::none(), py::arg("ttl_seconds") = py::none(), py::kw_only(),
           py::arg("backend") = py::none(),
           "backend: None or 'memory' (this process only), or a Redis URL\n"
           "'redis://[user:password@]host:port/db?timeout=0.05&prefix=thrifty' shared by every\n"
           "process that uses it (see docs/redis.md). A Redis backend fails open: when Redis is\n"
           "down or slow, gets miss and puts are dropped within the timeout, a circuit breaker\n"
           "stops calling it, and a CacheBackendWarning is emitted once per change.")
      .def(
          "get",
          [](ExactStore& self, py::handle key, py::handle ns) -> py::object {
            const std::string_view key_view = StrArg(key, "get", "key");
            const std::string_view ns_view = StrArg(ns, "get", "namespace");
            std::shared_ptr<const CachedValue> value;
            {
              py::gil_scoped_release release;
              value = self.Get(ns_view, key_view);
            }
            WarnOnStateChange(self.redis());
            return value ? ValueToPy(*value) : py::none();
          },
          py::arg("key"), py::arg("namespace") = "",
          "The cached value (bytes or str, as stored), or None. Counts a hit or a miss.")
      .def(
          "get_entry",
          [](ExactStore& self, py::handle key, py::handle ns) -> py::object {
            const std::string_view key_view = StrArg(key, "get_entry", "key");
            const std::string_view ns_view = StrArg(ns, "get_entry", "namespace");
            std::shared_ptr<const CachedValue> value;
            {
              py::gil_scoped_release release;
              value = self.Get(ns_view, key_view);
            }
            WarnOnStateChange(self.redis());
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
          [](ExactStore& self, py::handle key, py::handle value, py::handle ns,
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
            WarnOnStateChange(self.redis());
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
          "get_many",
          [](ExactStore& self, py::iterable keys, py::handle ns) -> py::list {
            const std::string_view ns_view = StrArg(ns, "get_many", "namespace");
            std::vector<py::object> held;  // keeps each str (and its UTF-8 buffer) alive
            std::vector<std::string_view> views;
            for (py::handle key : keys) {
              held.push_back(py::reinterpret_borrow<py::object>(key));
              views.push_back(StrArg(key, "get_many", "key"));
            }
            std::vector<std::shared_ptr<const CachedValue>> values;
            {
              py::gil_scoped_release release;
              values = self.GetMany(ns_view, views);
            }
            WarnOnStateChange(self.redis());
            py::list out(values.size());
            for (size_t i = 0; i < values.size(); ++i) {
              out[i] = values[i] ? ValueToPy(*values[i]) : py::none();
            }
            return out;
          },
          py::arg("keys"), py::arg("namespace") = "",
          "[get(key) for key in keys] in one call: a Redis backend sends them in one pipeline\n"
          "(one round trip). Counts a hit or a miss per key.")
      .def(
          "put_many",
          [](ExactStore& self, py::iterable items, py::handle ns,
             std::optional<double> ttl_seconds) {
            const std::string_view ns_view = StrArg(ns, "put_many", "namespace");
            const std::optional<absl::Duration> ttl = TtlArg(ttl_seconds, "ExactCache.put_many");
            std::vector<py::object> held;
            std::vector<ExactPutItem> batch;
            for (py::handle item : items) {
              if (!PyTuple_Check(item.ptr()) || PyTuple_GET_SIZE(item.ptr()) != 2) {
                throw py::type_error(
                    StrCat("ExactCache.put_many: items must be (key, value) tuples, got ",
                           TypeName(item), " at index ", batch.size()));
              }
              held.push_back(py::reinterpret_borrow<py::object>(item));
              auto [data, kind] = ValueArg(PyTuple_GET_ITEM(item.ptr(), 1));
              ExactPutItem put;
              put.key = StrArg(PyTuple_GET_ITEM(item.ptr(), 0), "put_many", "key");
              put.value = std::move(data);
              put.kind = kind;
              batch.push_back(std::move(put));
            }
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = self.PutMany(ns_view, batch, ttl);
            }
            WarnOnStateChange(self.redis());
            ThrowIfError(status);
          },
          py::arg("items"), py::arg("namespace") = "", py::arg("ttl_seconds") = py::none(),
          "put(key, value) for each (key, value) tuple in one call: a Redis backend sends them\n"
          "in one pipeline.")
      .def(
          "delete",
          [](ExactStore& self, py::handle key, py::handle ns) {
            const std::string_view key_view = StrArg(key, "delete", "key");
            const std::string_view ns_view = StrArg(ns, "delete", "namespace");
            bool removed = false;
            {
              py::gil_scoped_release release;
              removed = self.Delete(ns_view, key_view);
            }
            WarnOnStateChange(self.redis());
            return removed;
          },
          py::arg("key"), py::arg("namespace") = "",
          "Removes the entry; True when a live entry was removed.")
      .def(
          "stats",
          [](const ExactStore& self) {
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
            if (const RedisExactStore* redis = Redis(self)) {
              d["backend"] = "redis";
              d["entries"] = py::none();
              d["bytes"] = py::none();
              d["redis"] = RedisStatsDict(*self.redis(), redis->fail_open_stats());
            }
            WarnOnStateChange(self.redis());
            return d;
          },
          "Counters since the cache was made (hits, misses, evictions, expirations, saved_usd)\n"
          "and the current entries and bytes (expired entries count until they are collected).\n"
          "A Redis backend reports entries and bytes as None (Redis owns them; len() counts\n"
          "keys) and adds 'redis': breaker state and fail-open counters.")
      .def(
          "clear",
          [](ExactStore& self) {
            {
              py::gil_scoped_release release;
              self.Clear();
            }
            WarnOnStateChange(self.redis());
          },
          "Removes every entry; the counters are kept.")
      .def(
          "save",
          [](ExactStore& self, py::handle path) {
            const ExactCache& memory = MemoryOrThrow(self, "save");
            const std::string path_string = PathArg(path);
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = memory.Save(path_string);
            }
            ThrowIfError(status);
          },
          py::arg("path"),
          "Writes the live entries to path (a versioned, checksummed binary snapshot) through a\n"
          "temporary file that is fsync'ed and renamed over path, so a crash mid-save leaves\n"
          "the previous snapshot intact. The file is created readable by its owner only.")
      .def(
          "load",
          [](ExactStore& self, py::handle path) {
            ExactCache& memory = MemoryOrThrow(self, "load");
            const std::string path_string = PathArg(path);
            absl::StatusOr<int64_t> loaded;
            {
              py::gil_scoped_release release;
              loaded = memory.Load(path_string);
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
      .def(
          "__len__",
          [](const ExactStore& self) {
            py::gil_scoped_release release;
            return self.size();
          },
          "Number of entries, including expired ones not yet collected (a Redis backend counts\n"
          "its keys with SCAN: O(n), for tests and audits).")
      .def(
          "__contains__",
          [](const ExactStore& self, py::handle item) {
            const auto [ns, key] = ContainsArg(item);
            bool found = false;
            {
              py::gil_scoped_release release;
              found = self.Contains(ns, key);
            }
            WarnOnStateChange(self.redis());
            return found;
          },
          py::arg("key"),
          "`key in cache` (default namespace) or `(namespace, key) in cache`; counts nothing.")
      .def_property_readonly("max_entries", &MaxEntries)
      .def_property_readonly("max_bytes", &MaxBytes)
      .def_property_readonly("ttl_seconds", &DefaultTtl)
      .def_property_readonly("backend", &BackendName,
                             "'memory', or the Redis URL with its password masked.")
      .def("__repr__", [](const ExactStore& self) {
        if (self.redis() != nullptr) {
          return StrCat("ExactCache(backend=", std::string(py::repr(py::str(BackendName(self)))),
                        ", ttl_seconds=", std::string(py::repr(DefaultTtl(self))), ")");
        }
        return StrCat("ExactCache(entries=", self.size(),
                      ", max_entries=", std::string(py::repr(MaxEntries(self))),
                      ", max_bytes=", std::string(py::repr(MaxBytes(self))),
                      ", ttl_seconds=", std::string(py::repr(DefaultTtl(self))), ")");
      });
}

}  // namespace thrifty::bindings
