// Bindings for thrifty::cache::SemanticCache, its Hit, and the batch best-match search used
// by threshold calibration.
#include "thrifty/cache/semantic_cache.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>

#include "embed.h"
#include "errors.h"
#include "faiss/utils/distances.h"
#include "redis_backend.h"
#include "register.h"
#include "thrifty/cache/redis_semantic_sync.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

using cache::SemanticCache;
using cache::SemanticHit;
using cache::SemanticValue;

// A float32, C-contiguous array of `rows` x dim (rows == 0: a single 1-D vector), without a
// copy; anything else is a ValueError that says what was given.
py::array_t<float> FloatArray(py::handle object, const char* what, size_t dim, bool matrix) {
  if (!py::isinstance<py::array>(object)) {
    throw py::type_error(std::string(what) + " must be a numpy.ndarray of float32, got " +
                         std::string(py::str(py::type::of(object).attr("__name__"))));
  }
  auto array = py::reinterpret_borrow<py::array>(object);
  if (!array.dtype().is(py::dtype::of<float>())) {
    throw py::value_error(std::string(what) + " must have dtype float32, got " +
                          std::string(py::str(array.dtype())) + " (use .astype(np.float32))");
  }
  if (!(array.flags() & py::array::c_style)) {
    throw py::value_error(std::string(what) + " must be C-contiguous (use np.ascontiguousarray)");
  }
  const size_t ndim = matrix ? 2 : 1;
  if (static_cast<size_t>(array.ndim()) != ndim ||
      static_cast<size_t>(array.shape(array.ndim() - 1)) != dim) {
    std::string shape = "(";
    for (py::ssize_t i = 0; i < array.ndim(); ++i) {
      shape += (i ? ", " : "") + std::to_string(array.shape(i));
    }
    throw py::value_error(
        std::string(what) + " must have shape " +
        (matrix ? "(n, " + std::to_string(dim) + ")" : "(" + std::to_string(dim) + ",)") +
        ", got " + shape + ")");
  }
  return py::reinterpret_borrow<py::array_t<float>>(array);
}

SemanticValue ValueFromPy(py::handle response, double cost_usd, std::string model) {
  SemanticValue value;
  if (py::isinstance<py::str>(response)) {
    value.data = response.cast<std::string>();
    value.is_text = true;
  } else if (py::isinstance<py::bytes>(response)) {
    value.data = response.cast<std::string>();
    value.is_text = false;
  } else {
    throw py::type_error(
        "SemanticCache.put: response must be str or bytes (serialize objects first, e.g. "
        "json.dumps), got " +
        std::string(py::str(py::type::of(response).attr("__name__"))));
  }
  value.cost_usd = cost_usd;
  value.model = std::move(model);
  return value;
}

py::object ValueToPy(const SemanticValue& value) {
  if (value.is_text) return py::str(value.data);
  return py::bytes(value.data);
}

std::optional<absl::Duration> Ttl(std::optional<double> seconds) {
  if (!seconds) return std::nullopt;
  return absl::Seconds(*seconds);
}

cache::IndexKind ParseIndex(const std::string& index) {
  if (index == "auto") return cache::IndexKind::kAuto;
  if (index == "flat") return cache::IndexKind::kFlat;
  if (index == "hnsw") return cache::IndexKind::kHnsw;
  ThrowStatus(
      absl::InvalidArgumentError("SemanticCache: index must be 'auto', 'flat' or "
                                 "'hnsw', got '" +
                                 index + "'"));
}

struct PyHit {
  py::object response;
  float similarity;
  std::string matched_query;
  std::string model;
  double cost_usd;
  double created_at;
};

py::object HitToPy(std::optional<SemanticHit> hit) {
  if (!hit) return py::none();
  return py::cast(PyHit{ValueToPy(hit->value), hit->similarity, std::move(hit->matched_query),
                        hit->value.model, hit->value.cost_usd,
                        static_cast<double>(absl::ToUnixMicros(hit->created_at)) / 1e6});
}

cache::RedisSemanticSync* SyncOf(const SemanticCache& c) {
  return dynamic_cast<cache::RedisSemanticSync*>(c.replicator());
}

void Warn(const SemanticCache& c) {
  if (cache::RedisSemanticSync* sync = SyncOf(c)) WarnOnStateChange(sync->client());
}

// The embedding space's name: caches whose vectors are comparable share a stream.
std::string SpaceOf(const SemanticCache& c) {
  if (c.embedder() != nullptr) return c.embedder()->name() + "-" + std::to_string(c.dim());
  return "dim" + std::to_string(c.dim());
}

void AttachBackend(SemanticCache& c, const std::optional<std::string>& backend) {
  if (!backend || *backend == "memory") return;
  std::shared_ptr<cache::RedisClient> client = RedisClientFromUrl(*backend, "SemanticCache");
  c.SetReplicator(ValueOrThrow(cache::RedisSemanticSync::Start(std::move(client), &c, SpaceOf(c))));
}

}  // namespace

void RegisterSemanticCache(py::module_& m) {
  py::class_<PyHit>(m, "Hit", "A semantic cache hit. Immutable.")
      .def_readonly("response", &PyHit::response, "The stored response (str or bytes).")
      .def_readonly("similarity", &PyHit::similarity, "Cosine similarity of the queries.")
      .def_readonly("matched_query", &PyHit::matched_query, "The stored query that matched.")
      .def_readonly("model", &PyHit::model)
      .def_readonly("cost_usd", &PyHit::cost_usd, "What the stored response cost to make.")
      .def_readonly("created_at", &PyHit::created_at, "Unix seconds when it was stored.")
      .def("__repr__", [](const PyHit& h) {
        return "Hit(similarity=" + std::to_string(h.similarity) +
               ", matched_query=" + std::string(py::repr(py::str(h.matched_query))) + ")";
      });

  py::class_<SemanticCache, std::shared_ptr<SemanticCache>>(
      m, "SemanticCache",
      "Answers a query from a stored one that means the same, within the same context and\n"
      "namespace only. Thread-safe: lookups run in parallel, writes are serialized; every\n"
      "call releases the GIL.")
      .def(py::init([](py::object embedder, double threshold, std::optional<size_t> max_entries,
                       std::optional<size_t> max_bytes, std::optional<double> ttl_seconds,
                       const std::string& index, std::optional<size_t> dim, size_t ann_min_entries,
                       int hnsw_m, int ef_search, const std::optional<std::string>& backend) {
             std::shared_ptr<embed::Embedder> native;
             if (!embedder.is_none()) native = EmbedderFromPy(embedder);
             if (!native && !dim) {
               ThrowStatus(absl::InvalidArgumentError(
                   "SemanticCache: pass an embedder, or dim= to use only the vector calls"));
             }
             if (native && dim && *dim != native->dim()) {
               ThrowStatus(absl::InvalidArgumentError(
                   "SemanticCache: dim=" + std::to_string(*dim) + " but the embedder makes " +
                   std::to_string(native->dim()) + "-d vectors"));
             }
             cache::SemanticCacheOptions options;
             options.threshold = threshold;
             options.max_entries = max_entries;
             options.max_bytes = max_bytes;
             if (ttl_seconds) {
               if (!(*ttl_seconds > 0)) {
                 ThrowStatus(absl::InvalidArgumentError(
                     "SemanticCache: ttl_seconds must be > 0 (or None)"));
               }
               options.default_ttl = absl::Seconds(*ttl_seconds);
             }
             options.index = ParseIndex(index);
             options.ann_min_entries = ann_min_entries;
             options.hnsw_m = hnsw_m;
             options.hnsw_ef_search = ef_search;
             const size_t d = native ? native->dim() : *dim;
             auto created = std::shared_ptr<SemanticCache>(
                 ValueOrThrow(SemanticCache::Create(d, options, native)));
             AttachBackend(*created, backend);
             return created;
           }),
           py::arg("embedder") = py::none(), py::kw_only(), py::arg("threshold") = 0.9,
           py::arg("max_entries") = py::none(), py::arg("max_bytes") = py::none(),
           py::arg("ttl_seconds") = py::none(), py::arg("index") = "auto",
           py::arg("dim") = py::none(), py::arg("ann_min_entries") = 2048, py::arg("hnsw_m") = 32,
           py::arg("ef_search") = 64, py::arg("backend") = py::none(),
           "backend: None or 'memory' (this process only), or a Redis URL shared by every\n"
           "process using it with the same embedder: puts are published to a Redis Stream and\n"
           "a background thread applies other processes' entries to this process's index\n"
           "(lookups stay local). Fails open; see docs/redis.md.")
      .def(
          "put",
          [](SemanticCache& c, const std::string& query, py::handle response,
             const std::string& context, const std::string& ns, std::optional<double> ttl_seconds,
             double cost_usd, std::string model) {
            SemanticValue value = ValueFromPy(response, cost_usd, std::move(model));
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = c.Put(query, std::move(value), context, ns, Ttl(ttl_seconds));
            }
            Warn(c);
            if (!status.ok()) ThrowEmbedStatus(status);
          },
          py::arg("query"), py::arg("response"), py::kw_only(), py::arg("context") = "",
          py::arg("namespace") = "", py::arg("ttl_seconds") = py::none(), py::arg("cost_usd") = 0.0,
          py::arg("model") = "",
          "Stores `response` (str or bytes) for `query` in the (context, namespace) scope.")
      .def(
          "get",
          [](SemanticCache& c, const std::string& query, const std::string& context,
             const std::string& ns, std::optional<double> threshold) {
            absl::StatusOr<std::optional<SemanticHit>> hit;
            {
              py::gil_scoped_release release;
              hit = c.Get(query, context, ns, threshold);
            }
            if (!hit.ok()) ThrowEmbedStatus(hit.status());
            return HitToPy(*std::move(hit));
          },
          py::arg("query"), py::kw_only(), py::arg("context") = "", py::arg("namespace") = "",
          py::arg("threshold") = py::none(),
          "A Hit when a stored query in the same scope is at least `threshold` similar, else "
          "None.")
      .def(
          "put_vector",
          [](SemanticCache& c, py::handle vector, const std::string& query, py::handle response,
             const std::string& context, const std::string& ns, std::optional<double> ttl_seconds,
             double cost_usd, std::string model) {
            auto array = FloatArray(vector, "vector", c.dim(), /*matrix=*/false);
            SemanticValue value = ValueFromPy(response, cost_usd, std::move(model));
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = c.PutVector(std::span<const float>(array.data(), c.dim()), query,
                                   std::move(value), context, ns, Ttl(ttl_seconds));
            }
            Warn(c);
            ThrowIfError(status);
          },
          py::arg("vector"), py::arg("query"), py::arg("response"), py::kw_only(),
          py::arg("context") = "", py::arg("namespace") = "", py::arg("ttl_seconds") = py::none(),
          py::arg("cost_usd") = 0.0, py::arg("model") = "",
          "put() for callers that embed themselves: `vector` is float32 of shape (dim,).")
      .def(
          "put_vectors",
          [](SemanticCache& c, py::handle vectors, const std::vector<std::string>& queries,
             py::sequence responses, const std::string& context, const std::string& ns,
             std::optional<double> ttl_seconds) {
            auto array = FloatArray(vectors, "vectors", c.dim(), /*matrix=*/true);
            if (static_cast<size_t>(array.shape(0)) != queries.size() ||
                py::len(responses) != queries.size()) {
              ThrowStatus(absl::InvalidArgumentError(
                  "SemanticCache.put_vectors: vectors, queries and responses must have the "
                  "same length, got " +
                  std::to_string(array.shape(0)) + ", " + std::to_string(queries.size()) + " and " +
                  std::to_string(py::len(responses))));
            }
            std::vector<SemanticValue> values;
            values.reserve(queries.size());
            for (py::handle response : responses) values.push_back(ValueFromPy(response, 0.0, ""));
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = c.PutVectors(std::span<const float>(array.data(), queries.size() * c.dim()),
                                    queries, std::move(values), context, ns, Ttl(ttl_seconds));
            }
            Warn(c);
            ThrowIfError(status);
          },
          py::arg("vectors"), py::arg("queries"), py::arg("responses"), py::kw_only(),
          py::arg("context") = "", py::arg("namespace") = "", py::arg("ttl_seconds") = py::none(),
          "Bulk put into one scope: vectors (n, dim) float32, n queries, n responses. All or "
          "nothing; much faster than n put_vector calls.")
      .def(
          "get_vector",
          [](SemanticCache& c, py::handle vector, const std::string& context, const std::string& ns,
             std::optional<double> threshold) {
            auto array = FloatArray(vector, "vector", c.dim(), /*matrix=*/false);
            absl::StatusOr<std::optional<SemanticHit>> hit;
            {
              py::gil_scoped_release release;
              hit = c.GetVector(std::span<const float>(array.data(), c.dim()), context, ns,
                                threshold);
            }
            return HitToPy(ValueOrThrow(std::move(hit)));
          },
          py::arg("vector"), py::kw_only(), py::arg("context") = "", py::arg("namespace") = "",
          py::arg("threshold") = py::none())
      .def(
          "search",
          [](SemanticCache& c, py::handle query, size_t k, const std::string& context,
             const std::string& ns) {
            std::vector<float> embedded;
            py::array_t<float> array;
            std::span<const float> vector;
            if (py::isinstance<py::str>(query)) {
              if (c.embedder() == nullptr) {
                ThrowStatus(absl::FailedPreconditionError(
                    "SemanticCache.search: this cache has no embedder; pass a vector"));
              }
              embedded.resize(c.dim());
              const std::string text = query.cast<std::string>();
              absl::Status status;
              {
                py::gil_scoped_release release;
                status = c.embedder()->Embed(text, embedded);
              }
              if (!status.ok()) ThrowEmbedStatus(status);
              vector = embedded;
            } else {
              array = FloatArray(query, "query", c.dim(), /*matrix=*/false);
              vector = std::span<const float>(array.data(), c.dim());
            }
            absl::StatusOr<std::vector<std::pair<float, std::string>>> result;
            {
              py::gil_scoped_release release;
              result = c.Search(vector, context, ns, k);
            }
            return ValueOrThrow(std::move(result));
          },
          py::arg("query"), py::arg("k") = 5, py::kw_only(), py::arg("context") = "",
          py::arg("namespace") = "",
          "The best k stored queries in the scope, whatever their similarity: "
          "[(similarity, query)], best first. For audits and calibration.")
      .def(
          "delete",
          [](SemanticCache& c, const std::string& query, const std::string& context,
             const std::string& ns) {
            size_t removed = 0;
            {
              py::gil_scoped_release release;
              removed = c.Delete(query, context, ns);
            }
            Warn(c);
            return removed;
          },
          py::arg("query"), py::kw_only(), py::arg("context") = "", py::arg("namespace") = "")
      .def("clear",
           [](SemanticCache& c) {
             {
               py::gil_scoped_release release;
               c.Clear();
             }
             Warn(c);
           })
      .def(
          "sync",
          [](SemanticCache& c, double timeout_seconds) {
            cache::RedisSemanticSync* sync = SyncOf(c);
            if (sync == nullptr) return true;
            bool done = false;
            {
              py::gil_scoped_release release;
              done = sync->WaitForSync(absl::Seconds(timeout_seconds));
            }
            Warn(c);
            return done;
          },
          py::arg("timeout_seconds") = 5.0,
          "With a Redis backend: waits until every entry other processes had shared when called\n"
          "is applied here (a new process bootstraps this way). True when caught up; False when\n"
          "Redis is unreachable or the timeout passed. The memory backend returns True.")
      .def_property_readonly(
          "backend",
          [](const SemanticCache& c) -> std::string {
            cache::RedisSemanticSync* sync = SyncOf(c);
            return sync ? sync->client()->url().Redacted() : "memory";
          },
          "'memory', or the Redis URL with its password masked.")
      .def("purge_expired",
           [](SemanticCache& c) {
             py::gil_scoped_release release;
             return c.PurgeExpired();
           })
      .def("stats",
           [](const SemanticCache& c) {
             cache::SemanticCacheStats s;
             {
               py::gil_scoped_release release;
               s = c.stats();
             }
             py::dict d;
             d["hits"] = s.hits;
             d["misses"] = s.misses;
             d["puts"] = s.puts;
             d["replaced"] = s.replaced;
             d["evictions"] = s.evictions;
             d["expirations"] = s.expirations;
             d["entries"] = s.entries;
             d["bytes"] = s.bytes;
             d["scopes"] = s.scopes;
             d["ann_scopes"] = s.ann_scopes;
             d["saved_usd"] = s.saved_usd;
             if (cache::RedisSemanticSync* sync = SyncOf(c)) {
               d["backend"] = "redis";
               const cache::RedisSemanticSyncStats r = sync->stats();
               cache::RedisFailOpenStats fail_open;
               fail_open.dropped_writes = r.publish_dropped;
               fail_open.corrupt = r.decode_errors;
               py::dict redis = RedisStatsDict(*sync->client(), fail_open);
               redis["stream"] = sync->stream_key();
               redis["published"] = r.published;
               redis["applied"] = r.applied;
               redis["applied_deletes"] = r.applied_deletes;
               redis["applied_clears"] = r.applied_clears;
               redis["skipped_expired"] = r.skipped_expired;
               redis["read_failures"] = r.read_failures;
               redis["last_id"] = r.last_id;
               d["redis"] = redis;
             }
             Warn(c);
             return d;
           })
      .def(
          "save",
          [](const SemanticCache& c, const std::string& path) {
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = c.Save(path);
            }
            ThrowIfError(status);
          },
          py::arg("path"), "Writes a snapshot atomically (temp file, fsync, rename).")
      .def(
          "load",
          [](SemanticCache& c, const std::string& path) {
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = c.Load(path);
            }
            ThrowIfError(status);
          },
          py::arg("path"),
          "Replaces the contents with a snapshot's unexpired entries. On error the cache is "
          "unchanged.")
      .def_property_readonly("dim", &SemanticCache::dim)
      .def_property_readonly("threshold", &SemanticCache::threshold)
      .def("__len__", [](const SemanticCache& c) { return c.stats().entries; });

  m.def(
      "_best_matches",
      [](py::handle queries, py::handle stored, size_t k) {
        const auto q = py::reinterpret_borrow<py::array>(queries);
        if (!py::isinstance<py::array>(queries) || q.ndim() != 2) {
          throw py::value_error("queries must be a 2-D float32 array");
        }
        const size_t dim = static_cast<size_t>(q.shape(1));
        auto qa = FloatArray(queries, "queries", dim, true);
        auto sa = FloatArray(stored, "stored", dim, true);
        const size_t nq = static_cast<size_t>(qa.shape(0));
        const size_t ns = static_cast<size_t>(sa.shape(0));
        if (k == 0 || k > ns) throw py::value_error("k must be in [1, len(stored)]");
        py::array_t<float> similarities({nq, k});
        py::array_t<int64_t> indices({nq, k});
        {
          py::gil_scoped_release release;
          faiss::knn_inner_product(qa.data(), sa.data(), dim, nq, ns, k,
                                   similarities.mutable_data(), indices.mutable_data());
        }
        return py::make_tuple(similarities, indices);
      },
      py::arg("queries"), py::arg("stored"), py::arg("k") = 1,
      "Exact top-k inner products of each query row against the stored rows (FAISS, BLAS): "
      "(similarities (n, k), indices (n, k)). For calibration.");
}

}  // namespace thrifty::bindings
