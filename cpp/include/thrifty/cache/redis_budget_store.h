// RedisBudgetStore: the Ledger's shared budget counters in Redis, so every worker that points
// at the same server enforces one budget (cost::SharedBudgetStore over cache::RedisClient).
//
// A counter is a Redis integer of nano-dollars under "<prefix>:budget:<tag>=<value>:<period>:
// <period index>", moved with INCRBY and given an expiry past its period's end in the same
// pipeline (one round trip). Integers rather than INCRBYFLOAT: float increments round
// differently on each worker; integer nano-dollars add exactly, like the ledger's own totals.
// Errors (server down, breaker open, an error reply) come back as statuses; the ledger then
// falls back to its local counters.
//
// Thread-safety: thread-safe (RedisClient is).
#ifndef THRIFTY_CACHE_REDIS_BUDGET_STORE_H_
#define THRIFTY_CACHE_REDIS_BUDGET_STORE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "thrifty/cache/redis_client.h"
#include "thrifty/cost/ledger.h"

namespace thrifty::cache {

class RedisBudgetStore : public cost::SharedBudgetStore {
 public:
  // `url` as ParseRedisUrl accepts (its `prefix` option names the key space).
  static absl::StatusOr<std::shared_ptr<RedisBudgetStore>> Create(std::string_view url);

  absl::StatusOr<int64_t> Add(std::string_view key, int64_t delta_nano,
                              int64_t ttl_seconds) override;

  RedisClient& client() { return *client_; }

 private:
  RedisBudgetStore(std::string prefix, std::unique_ptr<RedisClient> client)
      : prefix_(std::move(prefix)), client_(std::move(client)) {}

  const std::string prefix_;
  const std::unique_ptr<RedisClient> client_;
};

}  // namespace thrifty::cache

#endif  // THRIFTY_CACHE_REDIS_BUDGET_STORE_H_
