#include "thrifty/cache/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>

#include "thrifty/base/strings.h"

namespace thrifty::cache {
namespace {

constexpr std::string_view kAccepted =
    "accepted: redis://[[user]:password@]host[:port][/db][?option=value&...] or "
    "unix://[[user]:password@]/path/to.sock[?db=N&...]";

absl::Status UrlError(std::string_view url_redacted, std::string_view what) {
  return absl::InvalidArgumentError(
      StrCat("backend URL '", url_redacted, "': ", what, " (", kAccepted, ")"));
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    const int hi = HexDigit(in[i + 1]);
    const int lo = HexDigit(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t value = 0;
  if (s.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return value;
}

std::optional<double> ParseSeconds(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::string text(s);
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value) || value <= 0) return std::nullopt;
  return value;
}

bool ValidPrefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > 128) return false;
  return std::all_of(prefix.begin(), prefix.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
  });
}

// The URL with the userinfo's password masked, for error messages (never echo a secret).
std::string RedactRaw(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const size_t start = scheme + 3;
  const size_t at = url.find('@', start);
  const size_t slash = url.find('/', start);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) {
    return std::string(url);
  }
  const std::string_view userinfo = url.substr(start, at - start);
  const size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) return std::string(url);
  return StrCat(url.substr(0, start), userinfo.substr(0, colon), ":***", url.substr(at));
}

timeval TimevalOf(absl::Duration d) {
  const int64_t us = std::max<int64_t>(absl::ToInt64Microseconds(d), 1000);
  timeval tv;
  tv.tv_sec = static_cast<time_t>(us / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1'000'000);
  return tv;
}

RedisReply CopyReply(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(CopyReply(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

}  // namespace

// --- URL -------------------------------------------------------------------------------------

std::string RedisUrl::Redacted() const {
  std::string auth;
  if (!user.empty() || !password.empty()) {
    auth = StrCat(user, password.empty() ? "" : ":***", "@");
  }
  if (unix_socket) return StrCat("unix://", auth, path, "?db=", db, "&prefix=", prefix);
  return StrCat("redis://", auth, host, ":", port, "/", db, "?prefix=", prefix);
}

absl::StatusOr<RedisUrl> ParseRedisUrl(std::string_view url) {
  const std::string shown = RedactRaw(url);
  RedisUrl out;
  std::string_view rest;
  if (url.starts_with("rediss://")) {
    return absl::UnimplementedError(StrCat(
        "backend URL '", shown,
        "': TLS (rediss://) is not supported: this build uses Debian's hiredis 0.14.1, which "
        "has no TLS (hiredis_ssl arrived in hiredis 1.0). Use redis:// on a private network or "
        "a unix socket, or a local TLS tunnel (stunnel, spiped) to the server"));
  }
  if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else if (url.starts_with("unix://")) {
    out.unix_socket = true;
    rest = url.substr(7);
  } else {
    return UrlError(shown, "the scheme must be redis:// or unix://");
  }
  std::string_view query;
  if (const size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  // userinfo: everything before the last '@' that precedes the path.
  const size_t slash = out.unix_socket ? rest.find("@/") + 1 : rest.find('/');
  const size_t at = rest.rfind('@', slash == std::string_view::npos ? rest.size() : slash);
  if (at != std::string_view::npos && (slash == std::string_view::npos || at < slash)) {
    const std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    const std::string_view raw_user = userinfo.substr(0, colon);
    const std::string_view raw_password =
        colon == std::string_view::npos ? std::string_view() : userinfo.substr(colon + 1);
    auto user = PercentDecode(raw_user);
    auto password = PercentDecode(raw_password);
    if (!user || !password) {
      return UrlError(shown, "bad percent-encoding in the user or password");
    }
    if (colon == std::string_view::npos || password->empty()) {
      return UrlError(shown,
                      "credentials need a password: user:password@ (ACL user) or :password@ "
                      "(default user)");
    }
    out.user = *std::move(user);
    out.password = *std::move(password);
  }
  if (out.unix_socket) {
    if (!rest.starts_with("/") || rest.size() < 2) {
      return UrlError(shown, "a unix:// URL needs an absolute socket path");
    }
    out.path = std::string(rest);
  } else {
    std::string_view hostport = rest;
    std::string_view db_part;
    if (const size_t s = rest.find('/'); s != std::string_view::npos) {
      hostport = rest.substr(0, s);
      db_part = rest.substr(s + 1);
    }
    std::string_view host = hostport;
    if (hostport.starts_with("[")) {  // [ipv6]:port
      const size_t close = hostport.find(']');
      if (close == std::string_view::npos) return UrlError(shown, "unclosed '[' in the host");
      host = hostport.substr(1, close - 1);
      std::string_view after = hostport.substr(close + 1);
      if (!after.empty()) {
        if (!after.starts_with(":")) return UrlError(shown, "expected ':port' after ']'");
        auto port = ParseInt(after.substr(1));
        if (!port || *port < 1 || *port > 65535) {
          return UrlError(shown, StrCat("port must be in 1..65535, got '", after.substr(1), "'"));
        }
        out.port = static_cast<int>(*port);
      }
    } else if (const size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
      host = hostport.substr(0, colon);
      auto port = ParseInt(hostport.substr(colon + 1));
      if (!port || *port < 1 || *port > 65535) {
        return UrlError(shown,
                        StrCat("port must be in 1..65535, got '", hostport.substr(colon + 1), "'"));
      }
      out.port = static_cast<int>(*port);
    }
    if (host.empty()) return UrlError(shown, "the host is empty");
    out.host = std::string(host);
    if (!db_part.empty()) {
      auto db = ParseInt(db_part);
      if (!db || *db < 0 || *db > 100000) {
        return UrlError(
            shown, StrCat("the database after '/' must be an integer >= 0, got '", db_part, "'"));
      }
      out.db = static_cast<int>(*db);
    }
  }
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return UrlError(shown, StrCat("option '", pair, "' needs a value (name=value)"));
    }
    const std::string_view name = pair.substr(0, eq);
    const std::string_view value = pair.substr(eq + 1);
    auto seconds = [&](absl::Duration* field) -> absl::Status {
      auto s = ParseSeconds(value);
      if (!s) {
        return UrlError(
            shown, StrCat("option ", name, " must be a number of seconds > 0, got '", value, "'"));
      }
      *field = absl::Seconds(*s);
      return absl::OkStatus();
    };
    auto integer = [&](int64_t min, int64_t max) -> absl::StatusOr<int64_t> {
      auto n = ParseInt(value);
      if (!n || *n < min || *n > max) {
        return UrlError(shown, StrCat("option ", name, " must be an integer in [", min, ", ", max,
                                      "], got '", value, "'"));
      }
      return *n;
    };
    absl::Status status;
    if (name == "timeout" || name == "command_timeout") {
      status = seconds(&out.command_timeout);
    } else if (name == "connect_timeout") {
      status = seconds(&out.connect_timeout);
    } else if (name == "breaker_cooldown") {
      status = seconds(&out.breaker_cooldown);
    } else if (name == "breaker_max_cooldown") {
      status = seconds(&out.breaker_max_cooldown);
    } else if (name == "pool") {
      auto n = integer(1, 1024);
      if (!n.ok()) return n.status();
      out.pool_size = static_cast<int>(*n);
    } else if (name == "breaker_failures") {
      auto n = integer(1, 1'000'000'000);
      if (!n.ok()) return n.status();
      out.breaker_failures = static_cast<int>(*n);
    } else if (name == "stream_maxlen") {
      auto n = integer(1, int64_t{1} << 40);
      if (!n.ok()) return n.status();
      out.stream_maxlen = *n;
    } else if (name == "db") {
      auto n = integer(0, 100000);
      if (!n.ok()) return n.status();
      out.db = static_cast<int>(*n);
    } else if (name == "prefix") {
      if (!ValidPrefix(value)) {
        return UrlError(
            shown, StrCat("prefix must be 1-128 characters of [A-Za-z0-9_.:-], got '", value, "'"));
      }
      out.prefix = std::string(value);
    } else {
      return UrlError(shown, StrCat("unknown option '", name,
                                    "'; known: timeout, connect_timeout, pool, prefix, db, "
                                    "breaker_failures, breaker_cooldown, breaker_max_cooldown, "
                                    "stream_maxlen"));
    }
    if (!status.ok()) return status;
  }
  if (out.breaker_max_cooldown < out.breaker_cooldown)
    out.breaker_max_cooldown = out.breaker_cooldown;
  return out;
}

// --- Breaker ---------------------------------------------------------------------------------

CircuitBreaker::CircuitBreaker(Options options, std::function<absl::Time()> clock)
    : options_(options), clock_(std::move(clock)), cooldown_(options.cooldown) {}

const char* CircuitBreaker::StateName(State state) {
  switch (state) {
    case State::kClosed:
      return "closed";
    case State::kOpen:
      return "open";
    case State::kHalfOpen:
      return "half_open";
  }
  return "?";
}

void CircuitBreaker::SetStateLocked(State state) {
  if (this->state() == state) return;
  state_.store(static_cast<int>(state), std::memory_order_release);
  transitions_.fetch_add(1, std::memory_order_acq_rel);
}

bool CircuitBreaker::Allow() {
  if (state() == State::kClosed) return true;
  MutexLock lock(&mu_);
  const absl::Time now = Now();
  switch (state()) {
    case State::kClosed:
      return true;
    case State::kOpen:
      if (now < reopen_at_) return false;
      SetStateLocked(State::kHalfOpen);
      probe_started_ = now;
      return true;
    case State::kHalfOpen:
      if (now - probe_started_ < cooldown_) return false;
      probe_started_ = now;  // the previous probe is presumed lost
      return true;
  }
  return false;
}

void CircuitBreaker::RecordSuccess() {
  if (state() == State::kClosed && consecutive_failures_.load(std::memory_order_relaxed) == 0) {
    return;
  }
  MutexLock lock(&mu_);
  consecutive_failures_.store(0, std::memory_order_relaxed);
  cooldown_ = options_.cooldown;
  SetStateLocked(State::kClosed);
}

void CircuitBreaker::RecordFailure() {
  MutexLock lock(&mu_);
  const absl::Time now = Now();
  const int failures = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  switch (state()) {
    case State::kClosed:
      if (failures >= options_.failure_threshold) {
        reopen_at_ = now + cooldown_;
        opens_.fetch_add(1, std::memory_order_relaxed);
        SetStateLocked(State::kOpen);
      }
      break;
    case State::kHalfOpen:
      // The probe failed: back off.
      cooldown_ = std::min(cooldown_ * 2, options_.max_cooldown);
      reopen_at_ = now + cooldown_;
      opens_.fetch_add(1, std::memory_order_relaxed);
      SetStateLocked(State::kOpen);
      break;
    case State::kOpen:
      break;  // a call that started before the breaker opened
  }
}

absl::Duration CircuitBreaker::current_cooldown() const {
  MutexLock lock(&mu_);
  return cooldown_;
}

// --- Client ----------------------------------------------------------------------------------

struct RedisClient::Conn {
  redisContext* ctx = nullptr;
  ~Conn() {
    if (ctx != nullptr) redisFree(ctx);
  }
};

RedisClient::RedisClient(RedisUrl url, std::function<absl::Time()> clock)
    : url_(std::move(url)),
      breaker_(CircuitBreaker::Options{url_.breaker_failures, url_.breaker_cooldown,
                                       url_.breaker_max_cooldown},
               std::move(clock)) {}

RedisClient::~RedisClient() = default;

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Create(
    RedisUrl url, std::function<absl::Time()> clock) {
  return std::unique_ptr<RedisClient>(new RedisClient(std::move(url), std::move(clock)));
}

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Create(std::string_view url) {
  absl::StatusOr<RedisUrl> parsed = ParseRedisUrl(url);
  if (!parsed.ok()) return parsed.status();
  return Create(*std::move(parsed));
}

absl::StatusOr<std::unique_ptr<RedisClient::Conn>> RedisClient::Dial() {
  auto conn = std::make_unique<Conn>();
  const timeval connect_tv = TimevalOf(url_.connect_timeout);
  conn->ctx = url_.unix_socket ? redisConnectUnixWithTimeout(url_.path.c_str(), connect_tv)
                               : redisConnectWithTimeout(url_.host.c_str(), url_.port, connect_tv);
  if (conn->ctx == nullptr) {
    connect_failures_.fetch_add(1, std::memory_order_relaxed);
    return absl::UnavailableError("redis: out of memory allocating a connection");
  }
  if (conn->ctx->err != 0) {
    connect_failures_.fetch_add(1, std::memory_order_relaxed);
    const bool timed_out = conn->ctx->err == REDIS_ERR_IO &&
                           (errno == EAGAIN || errno == EINPROGRESS || errno == ETIMEDOUT);
    std::string message =
        StrCat("redis: cannot connect to ", url_.Redacted(), ": ", conn->ctx->errstr);
    return timed_out ? absl::DeadlineExceededError(message) : absl::UnavailableError(message);
  }
  redisSetTimeout(conn->ctx, TimevalOf(url_.command_timeout));
  redisEnableKeepAlive(conn->ctx);
  connects_.fetch_add(1, std::memory_order_relaxed);
  std::vector<RedisArgs> setup;
  const std::string db = std::to_string(url_.db);
  if (!url_.password.empty()) {
    if (url_.user.empty()) {
      setup.push_back({"AUTH", url_.password});
    } else {
      setup.push_back({"AUTH", url_.user, url_.password});
    }
  }
  if (url_.db != 0) setup.push_back({"SELECT", db});
  if (!setup.empty()) {
    bool io_error = false;
    absl::StatusOr<std::vector<RedisReply>> replies = RunOn(*conn, setup, std::nullopt, &io_error);
    if (!replies.ok()) return replies.status();
    for (size_t i = 0; i < replies->size(); ++i) {
      const RedisReply& reply = (*replies)[i];
      if (!reply.is_error()) continue;
      if (setup[i][0] == "AUTH") {
        return absl::PermissionDeniedError(
            StrCat("redis: AUTH as ", url_.user.empty() ? "the default user" : url_.user,
                   " rejected by ", url_.Redacted(), ": ", reply.str));
      }
      return absl::InvalidArgumentError(
          StrCat("redis: SELECT ", url_.db, " failed on ", url_.Redacted(), ": ", reply.str));
    }
  }
  return conn;
}

std::unique_ptr<RedisClient::Conn> RedisClient::TakeIdle() {
  MutexLock lock(&pool_mu_);
  if (idle_.empty()) return nullptr;
  std::unique_ptr<Conn> conn = std::move(idle_.back());
  idle_.pop_back();
  return conn;
}

void RedisClient::GiveBack(std::unique_ptr<Conn> conn) {
  std::unique_ptr<Conn> extra;  // closed after unlocking
  MutexLock lock(&pool_mu_);
  if (static_cast<int>(idle_.size()) < url_.pool_size) {
    idle_.push_back(std::move(conn));
  } else {
    extra = std::move(conn);
  }
}

void RedisClient::FlushIdle() {
  std::vector<std::unique_ptr<Conn>> stale;  // closed after unlocking
  MutexLock lock(&pool_mu_);
  stale.swap(idle_);
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::RunOn(Conn& conn,
                                                           std::span<const RedisArgs> commands,
                                                           std::optional<absl::Duration> timeout,
                                                           bool* io_error) {
  redisContext* ctx = conn.ctx;
  if (timeout) redisSetTimeout(ctx, TimevalOf(*timeout));
  std::vector<const char*> argv;
  std::vector<size_t> argvlen;
  for (const RedisArgs& args : commands) {
    argv.clear();
    argvlen.clear();
    for (std::string_view arg : args) {
      argv.push_back(arg.data());
      argvlen.push_back(arg.size());
    }
    if (redisAppendCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), argvlen.data()) !=
        REDIS_OK) {
      *io_error = true;
      return absl::UnavailableError(StrCat("redis: cannot queue a command: ", ctx->errstr));
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    errno = 0;
    if (redisGetReply(ctx, &raw) != REDIS_OK || raw == nullptr) {
      *io_error = true;
      const bool timed_out = ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
      if (timed_out) timeouts_.fetch_add(1, std::memory_order_relaxed);
      std::string message =
          StrCat("redis: ", url_.Redacted(), ": ", timed_out ? "timed out" : ctx->errstr);
      return timed_out ? absl::DeadlineExceededError(message) : absl::UnavailableError(message);
    }
    auto* reply = static_cast<redisReply*>(raw);
    replies.push_back(CopyReply(reply));
    freeReplyObject(reply);
    if (replies.back().is_error()) reply_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  if (timeout) redisSetTimeout(ctx, TimevalOf(url_.command_timeout));
  return replies;
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::PipelineUnchecked(
    std::span<const RedisArgs> commands, std::optional<absl::Duration> timeout) {
  // A pooled connection may have gone stale (server restarted, idle timeout): on an I/O error
  // other than a timeout, retry once on a fresh connection before calling it a failure.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Conn> conn = TakeIdle();
    const bool reused = conn != nullptr;
    if (!reused) {
      absl::StatusOr<std::unique_ptr<Conn>> dialed = Dial();
      if (!dialed.ok()) {
        if (dialed.status().code() != absl::StatusCode::kPermissionDenied &&
            dialed.status().code() != absl::StatusCode::kInvalidArgument) {
          failures_.fetch_add(1, std::memory_order_relaxed);
          breaker_.RecordFailure();
        }
        return dialed.status();
      }
      conn = *std::move(dialed);
    }
    bool io_error = false;
    absl::StatusOr<std::vector<RedisReply>> replies = RunOn(*conn, commands, timeout, &io_error);
    if (replies.ok()) {
      commands_.fetch_add(commands.size(), std::memory_order_relaxed);
      round_trips_.fetch_add(1, std::memory_order_relaxed);
      breaker_.RecordSuccess();
      GiveBack(std::move(conn));
      return replies;
    }
    conn.reset();
    FlushIdle();
    if (reused && replies.status().code() == absl::StatusCode::kUnavailable) continue;
    failures_.fetch_add(1, std::memory_order_relaxed);
    breaker_.RecordFailure();
    return replies.status();
  }
  return absl::UnavailableError("redis: unreachable");  // not reached
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::Pipeline(
    std::span<const RedisArgs> commands, std::optional<absl::Duration> timeout) {
  if (commands.empty()) return std::vector<RedisReply>();
  if (!breaker_.Allow()) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return absl::UnavailableError(StrCat("redis: circuit breaker open for ", url_.Redacted(),
                                         " (the server failed repeatedly); retrying in ",
                                         absl::FormatDuration(breaker_.current_cooldown())));
  }
  return PipelineUnchecked(commands, timeout);
}

absl::StatusOr<RedisReply> RedisClient::Command(const RedisArgs& args,
                                                std::optional<absl::Duration> timeout) {
  absl::StatusOr<std::vector<RedisReply>> replies =
      Pipeline(std::span<const RedisArgs>(&args, 1), timeout);
  if (!replies.ok()) return replies.status();
  return std::move(replies->front());
}

absl::Status RedisClient::Ping() {
  const RedisArgs ping = {"PING"};
  absl::StatusOr<std::vector<RedisReply>> replies =
      PipelineUnchecked(std::span<const RedisArgs>(&ping, 1), std::nullopt);
  if (!replies.ok()) return replies.status();
  if (const RedisReply& reply = replies->front(); reply.is_error()) {
    // NOAUTH / WRONGPASS / NOPERM: the credentials (or their absence) are wrong, not the server.
    if (reply.str.starts_with("NOAUTH") || reply.str.starts_with("WRONGPASS") ||
        reply.str.starts_with("NOPERM")) {
      return absl::PermissionDeniedError(StrCat("redis: ", url_.Redacted(), " refused PING: ",
                                                reply.str, " (pass user:password@ in the URL)"));
    }
    return absl::UnavailableError(StrCat("redis: PING failed: ", reply.str));
  }
  return absl::OkStatus();
}

RedisClientStats RedisClient::Stats() const {
  RedisClientStats s;
  s.state = CircuitBreaker::StateName(breaker_.state());
  s.commands = commands_.load(std::memory_order_relaxed);
  s.round_trips = round_trips_.load(std::memory_order_relaxed);
  s.failures = failures_.load(std::memory_order_relaxed);
  s.timeouts = timeouts_.load(std::memory_order_relaxed);
  s.rejected = rejected_.load(std::memory_order_relaxed);
  s.reply_errors = reply_errors_.load(std::memory_order_relaxed);
  s.breaker_opens = breaker_.opens();
  s.connects = connects_.load(std::memory_order_relaxed);
  s.connect_failures = connect_failures_.load(std::memory_order_relaxed);
  return s;
}

std::optional<std::string> RedisClient::TakeStateChange() {
  const uint64_t transitions = breaker_.transitions();
  {
    MutexLock lock(&change_mu_);
    if (transitions == reported_transitions_) return std::nullopt;
    reported_transitions_ = transitions;
  }
  switch (breaker_.state()) {
    case CircuitBreaker::State::kOpen:
      return StrCat("thrifty: Redis backend ", url_.Redacted(),
                    " is failing; the circuit breaker is open, so cache calls pass through "
                    "(gets miss, puts are dropped) and it will be retried in ",
                    absl::FormatDuration(breaker_.current_cooldown()));
    case CircuitBreaker::State::kHalfOpen:
      return StrCat("thrifty: Redis backend ", url_.Redacted(), " is being probed (half-open)");
    case CircuitBreaker::State::kClosed:
      return StrCat("thrifty: Redis backend ", url_.Redacted(),
                    " is reachable again; the circuit breaker is closed and sharing resumes");
  }
  return std::nullopt;
}

}  // namespace thrifty::cache
