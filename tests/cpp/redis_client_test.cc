// RedisClient, its URL parser and circuit breaker, the Redis key layout and record codecs; and,
// when redis-server is installed, the client, exact store and semantic sync against a real
// server started by the test (skipped otherwise).
#include "thrifty/cache/redis_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>  // sockaddr_in
#include <signal.h>      // kill
#include <sys/socket.h>
#include <unistd.h>  // access, getpid

#include <atomic>
#include <cstdlib>  // std::system, mkdtemp
#include <fstream>
#include <string>
#include <thread>  // std::thread
#include <vector>

#include "test_util.h"
#include "thrifty/cache/exact_cache.h"
#include "thrifty/cache/redis_exact_store.h"
#include "thrifty/cache/redis_semantic_sync.h"
#include "thrifty/cache/semantic_cache.h"

namespace thrifty::cache {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::thrifty::testing::Msg;

// --- URL parsing -----------------------------------------------------------------------------

TEST(ParseRedisUrl, DefaultsAndFullForm) {
  absl::StatusOr<RedisUrl> url = ParseRedisUrl("redis://localhost");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "localhost");
  EXPECT_EQ(url->port, 6379);
  EXPECT_EQ(url->db, 0);
  EXPECT_EQ(url->prefix, "thrifty");
  EXPECT_TRUE(url->user.empty() && url->password.empty());

  url = ParseRedisUrl(
      "redis://alice:p%40ss%3Aword@cache.internal:6380/3?timeout=0.2&connect_timeout=0.1&pool=4&"
      "prefix=app1&breaker_failures=5&breaker_cooldown=2&stream_maxlen=1000");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->user, "alice");
  EXPECT_EQ(url->password, "p@ss:word");
  EXPECT_EQ(url->host, "cache.internal");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->db, 3);
  EXPECT_EQ(url->command_timeout, absl::Milliseconds(200));
  EXPECT_EQ(url->connect_timeout, absl::Milliseconds(100));
  EXPECT_EQ(url->pool_size, 4);
  EXPECT_EQ(url->prefix, "app1");
  EXPECT_EQ(url->breaker_failures, 5);
  EXPECT_EQ(url->breaker_cooldown, absl::Seconds(2));
  EXPECT_EQ(url->stream_maxlen, 1000);
  EXPECT_THAT(url->Redacted(), Not(HasSubstr("p@ss")));
  EXPECT_THAT(url->Redacted(), HasSubstr("alice:***@"));
}

TEST(ParseRedisUrl, PasswordOnlyIpv6AndUnixSockets) {
  absl::StatusOr<RedisUrl> url = ParseRedisUrl("redis://:secret@[::1]:7000/1");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 7000);
  EXPECT_EQ(url->password, "secret");
  EXPECT_TRUE(url->user.empty());

  url = ParseRedisUrl("unix://bob:pw@/run/redis/redis.sock?db=2");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->unix_socket);
  EXPECT_EQ(url->path, "/run/redis/redis.sock");
  EXPECT_EQ(url->user, "bob");
  EXPECT_EQ(url->db, 2);
}

TEST(ParseRedisUrl, BadUrlsSayWhatIsWrongAndWhatIsAccepted) {
  struct Case {
    const char* url;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"http://x", "scheme must be redis:// or unix://"},
           {"redis://x:0", "port must be in 1..65535"},
           {"redis://x:abc", "port must be in 1..65535"},
           {"redis://x/-1", "database after '/' must be an integer"},
           {"redis://x?timeout=-1", "timeout must be a number of seconds > 0"},
           {"redis://x?pool=0", "pool must be an integer in [1, 1024]"},
           {"redis://x?prefix=a}b", "prefix must be 1-128 characters"},
           {"redis://x?nope=1", "unknown option 'nope'"},
           {"redis://x?timeout", "needs a value"},
           {"redis://u@x", "credentials need a password"},
           {"redis://u:%zz@x", "bad percent-encoding"},
           {"redis://[::1", "unclosed '['"},
           {"unix://sock", "absolute socket path"},
       }) {
    absl::StatusOr<RedisUrl> url = ParseRedisUrl(c.url);
    ASSERT_FALSE(url.ok()) << c.url;
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument) << c.url;
    EXPECT_THAT(Msg(url), HasSubstr(c.message)) << c.url;
    EXPECT_THAT(Msg(url), HasSubstr("accepted: redis://")) << c.url;
  }
}

TEST(ParseRedisUrl, TlsIsRejectedWithTheReasonAndNoSecret) {
  absl::StatusOr<RedisUrl> url = ParseRedisUrl("rediss://u:topsecret@host:6380/0");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Msg(url), HasSubstr("hiredis 0.14.1"));
  EXPECT_THAT(Msg(url), Not(HasSubstr("topsecret")));
}

// --- Circuit breaker -------------------------------------------------------------------------

class FakeClock {
 public:
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  std::function<absl::Time()> fn() {
    return [this] { return now; };
  }
};

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresAndProbesAfterTheCooldown) {
  FakeClock clock;
  CircuitBreaker breaker(
      {.failure_threshold = 3, .cooldown = absl::Seconds(1), .max_cooldown = absl::Seconds(4)},
      clock.fn());
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kClosed);
  breaker.RecordFailure();
  breaker.RecordFailure();
  breaker.RecordSuccess();  // resets the run of failures
  breaker.RecordFailure();
  breaker.RecordFailure();
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kClosed);
  EXPECT_TRUE(breaker.Allow());
  breaker.RecordFailure();
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kOpen);
  EXPECT_EQ(breaker.opens(), 1u);
  EXPECT_FALSE(breaker.Allow());

  clock.now += absl::Milliseconds(999);
  EXPECT_FALSE(breaker.Allow());
  clock.now += absl::Milliseconds(1);
  EXPECT_TRUE(breaker.Allow());  // the probe
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kHalfOpen);
  EXPECT_FALSE(breaker.Allow());  // one probe at a time

  breaker.RecordFailure();  // probe failed: reopen with the cooldown doubled
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kOpen);
  EXPECT_EQ(breaker.current_cooldown(), absl::Seconds(2));
  clock.now += absl::Seconds(1);
  EXPECT_FALSE(breaker.Allow());
  clock.now += absl::Seconds(1);
  EXPECT_TRUE(breaker.Allow());
  breaker.RecordFailure();
  EXPECT_EQ(breaker.current_cooldown(), absl::Seconds(4));
  clock.now += absl::Seconds(4);
  EXPECT_TRUE(breaker.Allow());
  breaker.RecordFailure();
  EXPECT_EQ(breaker.current_cooldown(), absl::Seconds(4));  // capped

  clock.now += absl::Seconds(4);
  EXPECT_TRUE(breaker.Allow());
  breaker.RecordSuccess();  // probe succeeded
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kClosed);
  EXPECT_EQ(breaker.current_cooldown(), absl::Seconds(1));
  EXPECT_TRUE(breaker.Allow());
}

TEST(CircuitBreaker, ALostProbeIsReplacedAfterOneCooldown) {
  FakeClock clock;
  CircuitBreaker breaker({.failure_threshold = 1}, clock.fn());
  breaker.RecordFailure();
  clock.now += absl::Seconds(1);
  EXPECT_TRUE(breaker.Allow());
  EXPECT_FALSE(breaker.Allow());
  clock.now += absl::Seconds(1);
  EXPECT_TRUE(breaker.Allow());
}

TEST(CircuitBreaker, CountsTransitionsForOneWarningPerChange) {
  FakeClock clock;
  CircuitBreaker breaker({.failure_threshold = 1}, clock.fn());
  EXPECT_EQ(breaker.transitions(), 0u);
  breaker.RecordFailure();
  breaker.RecordFailure();  // already open
  EXPECT_EQ(breaker.transitions(), 1u);
  clock.now += absl::Seconds(1);
  ASSERT_TRUE(breaker.Allow());
  breaker.RecordSuccess();
  EXPECT_EQ(breaker.transitions(), 3u);  // open, half-open, closed
}

// --- Key layout and codecs -------------------------------------------------------------------

TEST(RedisKeyLayout, NamespacesBecomeSafeHashTags) {
  EXPECT_EQ(RedisExactStore::EntryKey("thrifty", "tenant-a", "abc123"),
            "thrifty:{tenant-a}:x:abc123");
  EXPECT_EQ(RedisExactStore::EntryKey("p", "", "k"), "p:{~}:x:k");
  const std::string odd = RedisExactStore::NamespaceTag("we{ird}/ns");
  EXPECT_EQ(odd.size(), 33u);
  EXPECT_EQ(odd[0], '#');
  EXPECT_EQ(odd.find_first_of("{}"), std::string::npos);
  EXPECT_NE(RedisExactStore::NamespaceTag("a}"), RedisExactStore::NamespaceTag("a{"));
  EXPECT_EQ(RedisExactStore::NamespaceTag(std::string(65, 'a'))[0], '#');
  EXPECT_EQ(RedisSemanticSync::StreamKey("app", "static-256"), "app:{app:sem}:s:static-256");
}

TEST(RedisCodec, ExactRecordsRoundTripAndRejectGarbage) {
  CachedValue value;
  value.value = std::string("hello\0world", 11);
  value.kind = ValueKind::kText;
  value.metadata = {"gpt-x", R"({"in":3})", 0.125};
  value.created_at = absl::FromUnixMicros(1'700'000'000'123'456);
  value.expires_at = value.created_at + absl::Seconds(60);
  const std::string record = RedisExactStore::EncodeValue(value);
  absl::StatusOr<std::shared_ptr<CachedValue>> decoded = RedisExactStore::DecodeValue(record);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ((*decoded)->value, value.value);
  EXPECT_EQ((*decoded)->kind, ValueKind::kText);
  EXPECT_EQ((*decoded)->metadata.model, "gpt-x");
  EXPECT_EQ((*decoded)->metadata.usage_json, R"({"in":3})");
  EXPECT_EQ((*decoded)->metadata.cost_usd, 0.125);
  EXPECT_EQ((*decoded)->created_at, value.created_at);
  EXPECT_EQ((*decoded)->expires_at, value.expires_at);

  value.expires_at = absl::InfiniteFuture();
  decoded = RedisExactStore::DecodeValue(RedisExactStore::EncodeValue(value));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ((*decoded)->expires_at, absl::InfiniteFuture());

  EXPECT_EQ(RedisExactStore::DecodeValue("short").status().code(), absl::StatusCode::kDataLoss);
  std::string bad_version = record;
  bad_version[0] = 9;
  EXPECT_FALSE(RedisExactStore::DecodeValue(bad_version).ok());
  EXPECT_FALSE(RedisExactStore::DecodeValue(record.substr(0, 40)).ok());  // model cut off
}

TEST(RedisCodec, SemanticRecordsRoundTripAndFailTheirChecksumWhenDamaged) {
  SemanticRecord r;
  r.vector = {0.6f, 0.8f, 0.0f};
  r.query = "what time is it";
  r.context = "ctx";
  r.ns = "tenant";
  r.value = SemanticValue{"noon", true, "m", 0.5};
  r.created_at = absl::FromUnixMicros(42);
  r.expires_at = absl::FromUnixMicros(4242);
  const std::string data = RedisSemanticSync::EncodeRecord(r);
  absl::StatusOr<SemanticRecord> back = RedisSemanticSync::DecodeRecord(data);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->vector, r.vector);
  EXPECT_EQ(back->query, r.query);
  EXPECT_EQ(back->context, r.context);
  EXPECT_EQ(back->ns, r.ns);
  EXPECT_EQ(back->value.data, "noon");
  EXPECT_EQ(back->value.model, "m");
  EXPECT_EQ(back->created_at, r.created_at);
  EXPECT_EQ(back->expires_at, r.expires_at);
  for (size_t i = 0; i < data.size(); i += 7) {
    std::string damaged = data;
    damaged[i] ^= 0x5a;
    EXPECT_FALSE(RedisSemanticSync::DecodeRecord(damaged).ok()) << "byte " << i;
  }
  EXPECT_FALSE(RedisSemanticSync::DecodeRecord(data.substr(0, data.size() - 1)).ok());

  SemanticRecord deletion;  // a delete carries no vector
  deletion.query = "gone";
  back = RedisSemanticSync::DecodeRecord(RedisSemanticSync::EncodeRecord(deletion));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->vector.empty());
  EXPECT_EQ(back->query, "gone");
}

TEST(RedisCodec, StreamIdsCompareAsNumbers) {
  EXPECT_EQ(RedisSemanticSync::ParseStreamId("1700000000000-12"),
            std::make_pair(uint64_t{1700000000000}, uint64_t{12}));
  EXPECT_LT(*RedisSemanticSync::ParseStreamId("9-5"), *RedisSemanticSync::ParseStreamId("10-0"));
  EXPECT_FALSE(RedisSemanticSync::ParseStreamId("12").has_value());
  EXPECT_FALSE(RedisSemanticSync::ParseStreamId("a-b").has_value());
}

TEST(RedisClient, UnreachableServerFailsFastOnceTheBreakerOpens) {
  // Port 1 on localhost: nothing listens, the connection is refused at once.
  absl::StatusOr<std::unique_ptr<RedisClient>> client =
      RedisClient::Create("redis://127.0.0.1:1/0?breaker_failures=2&breaker_cooldown=60");
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Command({"PING"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE((*client)->Command({"PING"}).ok());
  EXPECT_EQ((*client)->breaker().state(), CircuitBreaker::State::kOpen);
  absl::StatusOr<RedisReply> rejected = (*client)->Command({"PING"});
  EXPECT_THAT(Msg(rejected), HasSubstr("circuit breaker open"));
  const RedisClientStats stats = (*client)->Stats();
  EXPECT_EQ(stats.failures, 2u);
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_EQ(stats.connect_failures, 2u);
  ASSERT_TRUE((*client)->TakeStateChange().has_value());
  EXPECT_FALSE((*client)->TakeStateChange().has_value());  // reported once
}

// --- Against a real server -------------------------------------------------------------------

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string FindRedisServer() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/usr/sbin"}) {
    const std::string path = std::string(dir) + "/redis-server";
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

// redis-server --daemonize yes in a temporary directory, stopped by the destructor.
class RedisServerProcess {
 public:
  bool Start() {
    binary_ = FindRedisServer();
    if (binary_.empty()) return false;
    char dir_template[] = "/tmp/thrifty_redis_test_XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) return false;
    dir_ = dir_template;
    port_ = FreePort();
    return Launch();
  }
  bool Launch() {
    const std::string command = binary_ + " --port " + std::to_string(port_) +
                                " --bind 127.0.0.1 --save '' --appendonly no --daemonize yes"
                                " --dir " +
                                dir_ + " --pidfile " + dir_ + "/redis.pid" + " --logfile " + dir_ +
                                "/redis.log";
    if (std::system(command.c_str()) != 0) return false;
    for (int i = 0; i < 500; ++i) {  // up to 5 s for the pid file and the port
      std::ifstream pidfile(dir_ + "/redis.pid");
      if (pidfile >> pid_ && pid_ > 0) {
        auto probe = RedisClient::Create(url());
        if (probe.ok() && (*probe)->Ping().ok()) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      for (int i = 0; i < 500 && ::kill(pid_, 0) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      pid_ = 0;
      std::remove((dir_ + "/redis.pid").c_str());
    }
  }
  ~RedisServerProcess() {
    Kill();
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }
  std::string url(std::string options = "timeout=1") const {
    return "redis://127.0.0.1:" + std::to_string(port_) + "/0?" + options;
  }

 private:
  std::string binary_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

#define START_REDIS_OR_SKIP(server) \
  RedisServerProcess server;        \
  if (!server.Start()) GTEST_SKIP() << "redis-server is not installed (or did not start)"

TEST(RedisServerTest, PipelinesAndExactStoreFailOpenAcrossAKill) {
  START_REDIS_OR_SKIP(server);
  auto client = RedisClient::Create(server.url("timeout=1&breaker_failures=2"));
  ASSERT_TRUE(client.ok());
  std::shared_ptr<RedisClient> shared = *std::move(client);
  const std::vector<RedisArgs> commands = {
      {"SET", "a", "1"}, {"INCR", "a"}, {"GET", "a"}, {"HSET", "a", "f", "v"}};
  absl::StatusOr<std::vector<RedisReply>> replies = shared->Pipeline(commands);
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ((*replies)[1].integer, 2);
  EXPECT_EQ((*replies)[2].str, "2");
  EXPECT_TRUE((*replies)[3].is_error());  // WRONGTYPE: a reply error, not a failure
  EXPECT_EQ(shared->breaker().state(), CircuitBreaker::State::kClosed);

  auto store = RedisExactStore::Create(shared);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Put("ns", "k", "v", ValueKind::kBytes, {}, absl::Seconds(30)).ok());
  ASSERT_NE((*store)->Get("ns", "k"), nullptr);

  // Threads hammer the store while the server dies: no errors, only misses and drops.
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = "k" + std::to_string(t);
      while (!stop.load()) {
        EXPECT_TRUE((*store)->Put("ns", key, "v", ValueKind::kText, {}, std::nullopt).ok());
        (*store)->Get("ns", key);
        std::vector<std::string_view> keys = {"k", key};
        (*store)->GetMany("ns", keys);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server.Kill();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ((*store)->Get("ns", "k"), nullptr);
  EXPECT_EQ(shared->breaker().state(), CircuitBreaker::State::kOpen);
  EXPECT_GT((*store)->fail_open_stats().failed_gets, 0u);
}

TEST(RedisServerTest, SemanticEntriesFlowBetweenCachesThroughTheStream) {
  START_REDIS_OR_SKIP(server);
  constexpr size_t kDim = 8;
  auto make = [&]() -> std::unique_ptr<SemanticCache> {
    auto cache = SemanticCache::Create(kDim, SemanticCacheOptions{}, nullptr);
    EXPECT_TRUE(cache.ok());
    auto client = RedisClient::Create(server.url());
    EXPECT_TRUE(client.ok());
    auto sync = RedisSemanticSync::Start(*std::move(client), cache->get(), "test-8");
    EXPECT_TRUE(sync.ok());
    (*cache)->SetReplicator(*std::move(sync));
    return *std::move(cache);
  };
  std::unique_ptr<SemanticCache> a = make();
  std::unique_ptr<SemanticCache> b = make();
  std::vector<float> v(kDim, 0.0f);
  // Writers and the two reader threads run concurrently (for TSAN).
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::vector<float> w(kDim, 0.0f);
        // Never along axis 0, which the probe below uses.
        const int j = t * 20 + i;
        w[1 + j % (kDim - 1)] = 1.0f;
        w[1 + (j + 1) % (kDim - 1)] = 0.1f * static_cast<float>(i);
        EXPECT_TRUE(a->PutVector(w, "q" + std::to_string(t) + "-" + std::to_string(i),
                                 SemanticValue{"r", true, "", 0.0}, "", "ns")
                        .ok());
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  v[0] = 1.0f;
  ASSERT_TRUE(a->PutVector(v, "probe", SemanticValue{"answer", true, "m", 0.0}, "", "ns").ok());
  auto* sync_b = dynamic_cast<RedisSemanticSync*>(b->replicator());
  ASSERT_NE(sync_b, nullptr);
  ASSERT_TRUE(sync_b->WaitForSync(absl::Seconds(5)));
  absl::StatusOr<std::optional<SemanticHit>> hit = b->GetVector(v, "", "ns", 0.99);
  ASSERT_TRUE(hit.ok());
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ((*hit)->value.data, "answer");
  EXPECT_EQ(b->stats().entries, 41u);
  EXPECT_EQ(sync_b->stats().applied, 41u);
  EXPECT_EQ(b->Delete("probe", "", "ns"), 1u);
  auto* sync_a = dynamic_cast<RedisSemanticSync*>(a->replicator());
  ASSERT_TRUE(sync_a->WaitForSync(absl::Seconds(5)));
  hit = a->GetVector(v, "", "ns", 0.99);
  ASSERT_TRUE(hit.ok());
  EXPECT_FALSE(hit->has_value());
}

}  // namespace
}  // namespace thrifty::cache
