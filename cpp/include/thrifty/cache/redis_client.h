// RedisClient: a small, reusable Redis client over hiredis (Debian's 0.14.1) for the shared
// caches and anything else that wants Redis (budgets): URL parsing, a connection pool,
// pipelining, connect/command timeouts, AUTH (ACL user + password), SELECT, and a circuit
// breaker that turns a dead or slow server into fast failures.
//
// Failure model: every call returns within a bounded time. A call that cannot reach the
// server (connection refused, reset, timed out) returns Unavailable or DeadlineExceeded and
// counts one failure in the breaker; after `breaker_failures` consecutive failures the breaker
// opens and calls fail at once with Unavailable (no I/O) for `breaker_cooldown`; then one
// caller's call is let through as a probe (half-open): success closes the breaker, failure
// reopens it with the cooldown doubled up to `breaker_max_cooldown`. A reply error from the
// server (OOM, WRONGTYPE, NOAUTH...) is not a connectivity failure: it comes back as a reply of
// type kError and does not move the breaker. Reconnection is automatic: a broken connection is
// dropped, the idle pool is flushed (after a restart all of it is stale), and the next call
// dials afresh.
//
// Users of this class decide what a failure means; the caches fail open (a miss, a dropped
// write) and never surface these statuses to the application.
//
// TLS: hiredis 0.14.1 has no TLS (hiredis_ssl arrived in 1.0), so `rediss://` is rejected with
// an explanation.
//
// Thread-safety: RedisClient and CircuitBreaker are thread-safe. Each call takes one pooled
// connection for its duration, so concurrent calls run in parallel on separate sockets.
#ifndef THRIFTY_CACHE_REDIS_CLIENT_H_
#define THRIFTY_CACHE_REDIS_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "thrifty/base/mutex.h"

struct redisContext;  // hiredis; kept out of this header

namespace thrifty::cache {

// A parsed backend URL:
//   redis://[[user]:password@]host[:port][/db][?option=value&...]
//   unix://[[user]:password@]/path/to/redis.sock[?db=N&option=value...]
// Options: connect_timeout, timeout (command), both in seconds (default 0.03: a hung server
// costs a call < 50 ms before the breaker opens); pool (idle
// connections kept, >= 1); prefix (key prefix, [A-Za-z0-9_.:-]+); breaker_failures (>= 1);
// breaker_cooldown, breaker_max_cooldown (seconds); stream_maxlen (semantic stream length).
// User and password are percent-decoded.
struct RedisUrl {
  bool unix_socket = false;
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string path;  // unix socket path
  std::string user;
  std::string password;
  int db = 0;
  absl::Duration connect_timeout = absl::Milliseconds(30);
  absl::Duration command_timeout = absl::Milliseconds(30);
  int pool_size = 8;
  std::string prefix = "thrifty";
  int breaker_failures = 3;
  absl::Duration breaker_cooldown = absl::Seconds(1);
  absl::Duration breaker_max_cooldown = absl::Seconds(30);
  int64_t stream_maxlen = 1'000'000;

  // The URL with the password replaced by "***", for messages and repr.
  std::string Redacted() const;
};

// InvalidArgument naming the faulty part and what is accepted; Unimplemented for rediss://.
absl::StatusOr<RedisUrl> ParseRedisUrl(std::string_view url);

// The breaker state machine, separate from I/O so it can be tested with a fake clock.
// Thread-safe.
class CircuitBreaker {
 public:
  enum class State { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
  struct Options {
    int failure_threshold = 3;  // consecutive failures that open it
    absl::Duration cooldown = absl::Seconds(1);
    absl::Duration max_cooldown = absl::Seconds(30);
  };

  explicit CircuitBreaker(Options options, std::function<absl::Time()> clock = nullptr);

  // Whether a call may go to the server now. Closed: yes. Open: no until the cooldown has
  // passed; then the first caller is let through as the probe and the state becomes half-open.
  // Half-open: no, except when the probe has not reported within one cooldown (it is then
  // presumed lost and another probe goes through).
  bool Allow();
  void RecordSuccess();
  void RecordFailure();

  State state() const { return static_cast<State>(state_.load(std::memory_order_acquire)); }
  uint64_t opens() const { return opens_.load(std::memory_order_relaxed); }
  // Increments on every state change; lets callers report each change once.
  uint64_t transitions() const { return transitions_.load(std::memory_order_acquire); }
  absl::Duration current_cooldown() const;

  static const char* StateName(State state);

 private:
  absl::Time Now() const { return clock_ ? clock_() : absl::Now(); }
  void SetStateLocked(State state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const std::function<absl::Time()> clock_;
  std::atomic<int> state_{0};
  std::atomic<int> consecutive_failures_{0};
  std::atomic<uint64_t> opens_{0};
  std::atomic<uint64_t> transitions_{0};
  mutable Mutex mu_;
  absl::Time reopen_at_ ABSL_GUARDED_BY(mu_);
  absl::Time probe_started_ ABSL_GUARDED_BY(mu_);
  absl::Duration cooldown_ ABSL_GUARDED_BY(mu_);
};

// One reply, copied out of hiredis's reply tree.
struct RedisReply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
};

// Arguments of one command; binary-safe. The views must outlive the call.
using RedisArgs = std::vector<std::string_view>;

struct RedisClientStats {
  const char* state = "closed";  // breaker state: closed, open, half_open
  uint64_t commands = 0;         // commands sent (a pipeline of n counts n)
  uint64_t round_trips = 0;      // pipelines (each one round trip)
  uint64_t failures = 0;         // I/O errors and timeouts (each counted by the breaker)
  uint64_t timeouts = 0;         // of which timeouts
  uint64_t rejected = 0;         // calls refused without I/O while the breaker was open
  uint64_t reply_errors = 0;     // error replies from the server (OOM, NOAUTH, ...)
  uint64_t breaker_opens = 0;
  uint64_t connects = 0;  // connections opened (the first one and every reconnect)
  uint64_t connect_failures = 0;
};

class RedisClient {
 public:
  // Parses nothing and dials nothing: the first call connects. Use Ping() to check a server.
  static absl::StatusOr<std::unique_ptr<RedisClient>> Create(
      RedisUrl url, std::function<absl::Time()> clock = nullptr);
  static absl::StatusOr<std::unique_ptr<RedisClient>> Create(std::string_view url);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends the commands in one pipeline on one connection (one round trip) and returns one
  // reply per command; an individual reply may be kError. Fails with Unavailable (breaker
  // open, no connection, I/O error) or DeadlineExceeded (timeout); PermissionDenied when the
  // server rejected AUTH. `timeout` overrides the command timeout for this call (for blocking
  // commands such as XREAD BLOCK).
  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      std::span<const RedisArgs> commands, std::optional<absl::Duration> timeout = std::nullopt);
  absl::StatusOr<RedisReply> Command(const RedisArgs& args,
                                     std::optional<absl::Duration> timeout = std::nullopt);

  // PING, bypassing the breaker's refusal (a direct health check); records the outcome.
  absl::Status Ping();

  RedisClientStats Stats() const;
  const RedisUrl& url() const { return url_; }
  CircuitBreaker& breaker() { return breaker_; }

  // When the breaker changed state since the last call, a one-line description of the change
  // (for a warning); nullopt otherwise. Each change is reported to one caller once.
  std::optional<std::string> TakeStateChange();

 private:
  struct Conn;
  RedisClient(RedisUrl url, std::function<absl::Time()> clock);

  absl::StatusOr<std::unique_ptr<Conn>> Dial();
  std::unique_ptr<Conn> TakeIdle();
  void GiveBack(std::unique_ptr<Conn> conn);
  void FlushIdle();
  // One attempt on `conn`; on an I/O error the connection is unusable afterwards.
  absl::StatusOr<std::vector<RedisReply>> RunOn(Conn& conn, std::span<const RedisArgs> commands,
                                                std::optional<absl::Duration> timeout,
                                                bool* io_error);
  absl::StatusOr<std::vector<RedisReply>> PipelineUnchecked(std::span<const RedisArgs> commands,
                                                            std::optional<absl::Duration> timeout);

  const RedisUrl url_;
  CircuitBreaker breaker_;
  Mutex pool_mu_;
  std::vector<std::unique_ptr<Conn>> idle_ ABSL_GUARDED_BY(pool_mu_);
  Mutex change_mu_;
  uint64_t reported_transitions_ ABSL_GUARDED_BY(change_mu_) = 0;

  std::atomic<uint64_t> commands_{0};
  std::atomic<uint64_t> round_trips_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> timeouts_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> reply_errors_{0};
  std::atomic<uint64_t> connects_{0};
  std::atomic<uint64_t> connect_failures_{0};
};

}  // namespace thrifty::cache

#endif  // THRIFTY_CACHE_REDIS_CLIENT_H_
