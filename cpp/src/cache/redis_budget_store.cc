#include "thrifty/cache/redis_budget_store.h"

#include <string>
#include <vector>

#include "thrifty/base/strings.h"

namespace thrifty::cache {

absl::StatusOr<std::shared_ptr<RedisBudgetStore>> RedisBudgetStore::Create(std::string_view url) {
  absl::StatusOr<RedisUrl> parsed = ParseRedisUrl(url);
  if (!parsed.ok()) return parsed.status();
  std::string prefix = parsed->prefix;
  absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Create(*std::move(parsed));
  if (!client.ok()) return client.status();
  return std::shared_ptr<RedisBudgetStore>(
      new RedisBudgetStore(std::move(prefix), *std::move(client)));
}

absl::StatusOr<int64_t> RedisBudgetStore::Add(std::string_view key, int64_t delta_nano,
                                              int64_t ttl_seconds) {
  const std::string full = StrCat(prefix_, ":", key);
  const std::string delta = std::to_string(delta_nano);
  const std::string ttl = std::to_string(ttl_seconds);
  const std::vector<RedisArgs> commands = {{"INCRBY", full, delta}, {"EXPIRE", full, ttl}};
  absl::StatusOr<std::vector<RedisReply>> replies = client_->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  const RedisReply& reply = (*replies)[0];
  if (reply.type != RedisReply::Type::kInteger) {
    return absl::InternalError(StrCat("redis INCRBY ", full, ": unexpected reply '", reply.str,
                                      "' (is the key used by something else?)"));
  }
  return reply.integer;
}

}  // namespace thrifty::cache
