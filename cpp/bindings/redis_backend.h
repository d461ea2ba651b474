// Shared by the exact and semantic cache bindings: backend= URLs, the warning raised once per
// change of a Redis backend's health, and its counters as a dict.
#ifndef THRIFTY_BINDINGS_REDIS_BACKEND_H_
#define THRIFTY_BINDINGS_REDIS_BACKEND_H_

#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "thrifty/cache/redis_client.h"
#include "thrifty/cache/redis_exact_store.h"

namespace thrifty::bindings {

// Creates thrifty._core.CacheBackendWarning (a RuntimeWarning); called once at import.
void RegisterRedisBackend(pybind11::module_& m);

// A client for a redis:// or unix:// URL. Raises InvalidArgumentError for a malformed URL,
// UnimplementedError for rediss:// (no TLS in this hiredis), PermissionDeniedError when the
// server rejects the credentials. An unreachable server is not an error (fail open): it warns.
// Call with the GIL held; the connection check releases it.
std::shared_ptr<cache::RedisClient> RedisClientFromUrl(const std::string& url, const char* owner);

// Emits a CacheBackendWarning when the client's breaker changed state since the last report.
// Needs the GIL. Never raises (a warnings filter set to "error" is ignored: fail open).
void WarnOnStateChange(cache::RedisClient* client);

// The client's counters plus the fail-open ones.
pybind11::dict RedisStatsDict(const cache::RedisClient& client,
                              const cache::RedisFailOpenStats& fail_open);

}  // namespace thrifty::bindings

#endif  // THRIFTY_BINDINGS_REDIS_BACKEND_H_
