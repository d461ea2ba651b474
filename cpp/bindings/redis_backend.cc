#include "redis_backend.h"

#include <utility>

#include "errors.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {
PyObject* warning_class = nullptr;  // owned by the module (a strong reference kept forever)
}  // namespace

void RegisterRedisBackend(py::module_& m) {
  warning_class = PyErr_NewExceptionWithDoc(
      "thrifty._core.CacheBackendWarning",
      "A shared cache backend (Redis) became unreachable, or reachable again. Calls pass\n"
      "through as misses and dropped writes meanwhile; no exception reaches the caller.",
      PyExc_RuntimeWarning, nullptr);
  if (warning_class == nullptr) throw py::error_already_set();
  m.attr("CacheBackendWarning") = py::reinterpret_borrow<py::object>(warning_class);
}

void WarnOnStateChange(cache::RedisClient* client) {
  if (client == nullptr) return;
  std::optional<std::string> change = client->TakeStateChange();
  if (!change) return;
  if (PyErr_WarnEx(warning_class, change->c_str(), 1) != 0) PyErr_Clear();
}

std::shared_ptr<cache::RedisClient> RedisClientFromUrl(const std::string& url, const char* owner) {
  absl::StatusOr<cache::RedisUrl> parsed = cache::ParseRedisUrl(url);
  if (!parsed.ok()) {
    ThrowStatus(absl::Status(parsed.status().code(),
                             std::string(owner) + ": " + std::string(parsed.status().message())));
  }
  std::shared_ptr<cache::RedisClient> client = ValueOrThrow(cache::RedisClient::Create(*parsed));
  absl::Status ping;
  {
    py::gil_scoped_release release;
    ping = client->Ping();
  }
  if (ping.code() == absl::StatusCode::kPermissionDenied ||
      ping.code() == absl::StatusCode::kInvalidArgument) {
    ThrowStatus(absl::Status(ping.code(), std::string(owner) + ": " + std::string(ping.message())));
  }
  if (!ping.ok()) {
    const std::string message = std::string(owner) + ": Redis backend " + parsed->Redacted() +
                                " is unreachable (" + std::string(ping.message()) +
                                "); calls pass through until it answers";
    if (PyErr_WarnEx(warning_class, message.c_str(), 1) != 0) PyErr_Clear();
    client->TakeStateChange();  // this warning covers the breaker's first change too
  }
  return client;
}

py::dict RedisStatsDict(const cache::RedisClient& client,
                        const cache::RedisFailOpenStats& fail_open) {
  const cache::RedisClientStats s = client.Stats();
  py::dict d;
  d["url"] = client.url().Redacted();
  d["state"] = s.state;
  d["commands"] = s.commands;
  d["round_trips"] = s.round_trips;
  d["failures"] = s.failures;
  d["timeouts"] = s.timeouts;
  d["rejected"] = s.rejected;
  d["reply_errors"] = s.reply_errors;
  d["breaker_opens"] = s.breaker_opens;
  d["connects"] = s.connects;
  d["connect_failures"] = s.connect_failures;
  d["failed_gets"] = fail_open.failed_gets;
  d["dropped_writes"] = fail_open.dropped_writes;
  d["corrupt"] = fail_open.corrupt;
  return d;
}

}  // namespace thrifty::bindings
