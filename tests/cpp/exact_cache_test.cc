#include "thrifty/cache/exact_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>  // setrlimit
#include <unistd.h>        // getpid

#include <algorithm>
#include <atomic>
#include <csignal>  // std::signal(SIGXFSZ)
#include <cstdlib>  // mkdtemp
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>  // std::thread
#include <vector>

#include "test_util.h"
#include "thrifty/base/mutex.h"

namespace thrifty::cache {
namespace {

using ::testing::HasSubstr;
using ::thrifty::testing::Msg;

// Time stands still unless a test moves it. Thread-safe.
class FakeClock final : public Clock {
 public:
  absl::Time Now() const override {
    MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1'800'000'000);
};

ExactCacheOptions Opts(std::optional<int64_t> max_entries,
                       std::optional<int64_t> max_bytes = std::nullopt,
                       std::optional<absl::Duration> default_ttl = std::nullopt,
                       const Clock* clock = nullptr) {
  ExactCacheOptions options;
  options.max_entries = max_entries;
  options.max_bytes = max_bytes;
  options.default_ttl = default_ttl;
  options.clock = clock;
  return options;
}

EntryMetadata Meta(std::string model, std::string usage_json, double cost_usd) {
  EntryMetadata metadata;
  metadata.model = std::move(model);
  metadata.usage_json = std::move(usage_json);
  metadata.cost_usd = cost_usd;
  return metadata;
}

std::unique_ptr<ExactCache> MakeCache(ExactCacheOptions options = {}) {
  auto cache = ExactCache::Create(options);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.ok() ? *std::move(cache) : nullptr;
}

void Put(ExactCache& cache, std::string_view key, std::string value, std::string_view ns = "",
         std::optional<absl::Duration> ttl = std::nullopt) {
  const absl::Status status =
      cache.Put(ns, key, std::move(value), ValueKind::kBytes, EntryMetadata{}, ttl);
  EXPECT_TRUE(status.ok()) << status;
}

// The value for key, or "<miss>".
std::string Value(ExactCache& cache, std::string_view key, std::string_view ns = "") {
  std::shared_ptr<const CachedValue> value = cache.Get(ns, key);
  return value ? value->value : "<miss>";
}

// A fresh directory under the test's temporary directory, removed with its contents at the end.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string pattern = ::testing::TempDir() + "/exact_cache_test.XXXXXX";
    const char* dir = mkdtemp(pattern.data());
    EXPECT_NE(dir, nullptr) << pattern;
    path_ = dir != nullptr ? dir : pattern;
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

std::vector<std::string> DirEntries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string KeyN(int i) { return "key-" + std::to_string(i); }

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void WriteAll(const std::filesystem::path& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

TEST(ExactCacheTest, GetReturnsValueKindAndMetadata) {
  FakeClock clock;
  auto cache = MakeCache(Opts(std::nullopt, std::nullopt, std::nullopt, &clock));
  ASSERT_TRUE(cache
                  ->Put("", "k", "hello", ValueKind::kText,
                        Meta("gpt-6-luna", R"({"input_tokens":3})", 0.25))
                  .ok());
  std::shared_ptr<const CachedValue> got = cache->Get("", "k");
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->value, "hello");
  EXPECT_EQ(got->kind, ValueKind::kText);
  EXPECT_EQ(got->metadata.model, "gpt-6-luna");
  EXPECT_EQ(got->metadata.usage_json, R"({"input_tokens":3})");
  EXPECT_EQ(got->metadata.cost_usd, 0.25);
  EXPECT_EQ(got->created_at, clock.Now());
  EXPECT_EQ(got->expires_at, absl::InfiniteFuture());
  EXPECT_EQ(cache->Get("", "other"), nullptr);
}

TEST(ExactCacheTest, StatsCountHitsMissesBytesAndSavings) {
  auto cache = MakeCache();
  ASSERT_TRUE(cache->Put("ns", "key", "value", ValueKind::kBytes, Meta("m", "", 0.5)).ok());
  EXPECT_EQ(Value(*cache, "key", "ns"), "value");
  EXPECT_EQ(Value(*cache, "key", "ns"), "value");
  EXPECT_EQ(Value(*cache, "absent", "ns"), "<miss>");
  const ExactCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.hits, 2);
  EXPECT_EQ(stats.misses, 1);
  EXPECT_EQ(stats.entries, 1);
  EXPECT_EQ(stats.bytes, 2 + 3 + 5 + 1);  // namespace + key + value + model
  EXPECT_DOUBLE_EQ(stats.saved_usd, 1.0);
  EXPECT_EQ(stats.evictions, 0);
  EXPECT_EQ(stats.expirations, 0);
  EXPECT_EQ(cache->size(), 1);
}

TEST(ExactCacheTest, PutReplacesTheEntryAndItsCharge) {
  auto cache = MakeCache();
  Put(*cache, "k", "short");
  Put(*cache, "k", "a much longer value");
  EXPECT_EQ(Value(*cache, "k"), "a much longer value");
  EXPECT_EQ(cache->Stats().entries, 1);
  EXPECT_EQ(cache->Stats().bytes, 1 + 19);
}

TEST(ExactCacheTest, NamespacesNeverCollide) {
  auto cache = MakeCache();
  Put(*cache, "k", "in a", "a");
  Put(*cache, "k", "in b", "b");
  Put(*cache, "k", "in default");
  // Concatenation must not alias: ("a", "bc") and ("ab", "c").
  Put(*cache, "bc", "a/bc", "a");
  Put(*cache, "c", "ab/c", "ab");
  EXPECT_EQ(Value(*cache, "k", "a"), "in a");
  EXPECT_EQ(Value(*cache, "k", "b"), "in b");
  EXPECT_EQ(Value(*cache, "k"), "in default");
  EXPECT_EQ(Value(*cache, "bc", "a"), "a/bc");
  EXPECT_EQ(Value(*cache, "c", "ab"), "ab/c");
  EXPECT_EQ(Value(*cache, "k", "c"), "<miss>");
  EXPECT_TRUE(cache->Delete("a", "k"));
  EXPECT_FALSE(cache->Contains("a", "k"));
  EXPECT_TRUE(cache->Contains("b", "k"));
  EXPECT_TRUE(cache->Contains("", "k"));
}

TEST(ExactCacheTest, EvictsLeastRecentlyUsedByEntryCount) {
  auto cache = MakeCache(Opts(3));
  Put(*cache, "a", "1");
  Put(*cache, "b", "2");
  Put(*cache, "c", "3");
  EXPECT_EQ(Value(*cache, "a"), "1");  // a is now the most recently used; b the least
  Put(*cache, "d", "4");
  EXPECT_FALSE(cache->Contains("", "b"));
  EXPECT_TRUE(cache->Contains("", "a"));
  EXPECT_TRUE(cache->Contains("", "c"));
  EXPECT_TRUE(cache->Contains("", "d"));
  Put(*cache, "c", "3'");  // a Put refreshes too: a is now the least recently used
  Put(*cache, "e", "5");
  EXPECT_FALSE(cache->Contains("", "a"));
  const ExactCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.evictions, 2);
  EXPECT_EQ(stats.entries, 3);
}

TEST(ExactCacheTest, LruOrderIsGlobalAcrossShards) {
  // 200 keys land in every shard; the survivors must be exactly the most recently used.
  auto cache = MakeCache(Opts(20));
  for (int i = 0; i < 200; ++i) Put(*cache, KeyN(i), "v");
  for (int i = 0; i < 180; ++i) EXPECT_FALSE(cache->Contains("", KeyN(i))) << i;
  for (int i = 180; i < 200; ++i) EXPECT_TRUE(cache->Contains("", KeyN(i))) << i;
  // Touch the older half, then insert 10 more: the untouched 190..199 go.
  for (int i = 180; i < 190; ++i) EXPECT_EQ(Value(*cache, KeyN(i)), "v");
  for (int i = 200; i < 210; ++i) Put(*cache, KeyN(i), "v");
  for (int i = 180; i < 190; ++i) EXPECT_TRUE(cache->Contains("", KeyN(i))) << i;
  for (int i = 190; i < 200; ++i) EXPECT_FALSE(cache->Contains("", KeyN(i))) << i;
  EXPECT_EQ(cache->Stats().evictions, 190);
}

TEST(ExactCacheTest, EvictsLeastRecentlyUsedByBytes) {
  auto cache = MakeCache(Opts(std::nullopt, 100));
  Put(*cache, "a", std::string(29, 'a'));  // 30 bytes each with the key
  Put(*cache, "b", std::string(29, 'b'));
  Put(*cache, "c", std::string(29, 'c'));
  EXPECT_EQ(cache->Stats().bytes, 90);
  EXPECT_EQ(Value(*cache, "a").size(), 29u);
  Put(*cache, "d", std::string(19, 'd'));  // 110 > 100: b (the LRU) goes
  EXPECT_FALSE(cache->Contains("", "b"));
  EXPECT_EQ(cache->Stats().bytes, 80);
  Put(*cache, "e", std::string(59, 'e'));  // 140: c, then a go
  EXPECT_FALSE(cache->Contains("", "c"));
  EXPECT_FALSE(cache->Contains("", "a"));
  EXPECT_TRUE(cache->Contains("", "d"));
  EXPECT_TRUE(cache->Contains("", "e"));
  EXPECT_EQ(cache->Stats().bytes, 80);
  EXPECT_EQ(cache->Stats().evictions, 3);
}

TEST(ExactCacheTest, EntryLargerThanMaxBytesIsRejectedNotDropped) {
  auto cache = MakeCache(Opts(std::nullopt, 64));
  Put(*cache, "keep", "me");
  const absl::Status status = cache->Put("", "big", std::string(100, 'x'), ValueKind::kBytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), HasSubstr("exceeds max_bytes 64"));
  EXPECT_THAT(Msg(status), HasSubstr("entry of 103 bytes"));
  EXPECT_EQ(Value(*cache, "keep"), "me");
  EXPECT_EQ(cache->Stats().evictions, 0);
  // Exactly max_bytes fits.
  Put(*cache, "k", std::string(63, 'x'));
  EXPECT_EQ(cache->Stats().bytes, 64);
}

TEST(ExactCacheTest, DefaultTtlExpiresLazilyOnGet) {
  FakeClock clock;
  auto cache = MakeCache(Opts(std::nullopt, std::nullopt, absl::Seconds(10), &clock));
  ASSERT_TRUE(cache->Put("", "k", "v", ValueKind::kBytes, Meta("", "", 1.0)).ok());
  EXPECT_EQ(cache->Get("", "k")->expires_at, clock.Now() + absl::Seconds(10));
  clock.Advance(absl::Seconds(9));
  EXPECT_EQ(Value(*cache, "k"), "v");
  clock.Advance(absl::Seconds(1));  // expiry is inclusive
  EXPECT_EQ(cache->size(), 1);      // not yet collected
  EXPECT_FALSE(cache->Contains("", "k"));
  EXPECT_EQ(Value(*cache, "k"), "<miss>");
  const ExactCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.hits, 2);
  EXPECT_EQ(stats.misses, 1);
  EXPECT_EQ(stats.expirations, 1);
  EXPECT_EQ(stats.entries, 0);
  EXPECT_EQ(stats.bytes, 0);
  EXPECT_DOUBLE_EQ(stats.saved_usd, 2.0);
}

TEST(ExactCacheTest, PerEntryTtlOverridesTheDefault) {
  FakeClock clock;
  auto cache = MakeCache(Opts(std::nullopt, std::nullopt, absl::Seconds(10), &clock));
  Put(*cache, "short", "v", "", absl::Seconds(1));
  Put(*cache, "forever", "v", "", absl::InfiniteDuration());
  Put(*cache, "default", "v");
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(Value(*cache, "short"), "<miss>");
  EXPECT_EQ(Value(*cache, "default"), "v");
  clock.Advance(absl::Hours(24 * 365));
  EXPECT_EQ(Value(*cache, "default"), "<miss>");
  EXPECT_EQ(Value(*cache, "forever"), "v");
  EXPECT_EQ(cache->Stats().expirations, 2);
}

TEST(ExactCacheTest, EvictingAnExpiredEntryCountsAsExpiration) {
  FakeClock clock;
  auto cache = MakeCache(Opts(2, std::nullopt, std::nullopt, &clock));
  Put(*cache, "old", "v", "", absl::Seconds(1));
  Put(*cache, "b", "v");
  clock.Advance(absl::Seconds(5));
  Put(*cache, "c", "v");
  EXPECT_FALSE(cache->Contains("", "old"));
  EXPECT_EQ(cache->Stats().expirations, 1);
  EXPECT_EQ(cache->Stats().evictions, 0);
}

TEST(ExactCacheTest, DeleteAndContains) {
  FakeClock clock;
  auto cache = MakeCache(Opts(std::nullopt, std::nullopt, std::nullopt, &clock));
  Put(*cache, "k", "v");
  Put(*cache, "t", "v", "", absl::Seconds(1));
  EXPECT_TRUE(cache->Contains("", "k"));
  EXPECT_FALSE(cache->Contains("x", "k"));
  EXPECT_EQ(cache->Stats().hits + cache->Stats().misses, 0);  // Contains counts nothing
  EXPECT_TRUE(cache->Delete("", "k"));
  EXPECT_FALSE(cache->Delete("", "k"));
  clock.Advance(absl::Seconds(1));
  EXPECT_FALSE(cache->Delete("", "t"));  // expired: removed, but not a live entry
  EXPECT_EQ(cache->Stats().expirations, 1);
  EXPECT_EQ(cache->size(), 0);
}

TEST(ExactCacheTest, ClearRemovesEntriesAndKeepsCounters) {
  auto cache = MakeCache(Opts(10));
  for (int i = 0; i < 5; ++i) Put(*cache, KeyN(i), "v");
  EXPECT_EQ(Value(*cache, KeyN(0)), "v");
  cache->Clear();
  EXPECT_EQ(cache->size(), 0);
  ExactCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.entries, 0);
  EXPECT_EQ(stats.bytes, 0);
  EXPECT_EQ(stats.hits, 1);
  EXPECT_EQ(stats.evictions, 0);
  EXPECT_EQ(Value(*cache, KeyN(0)), "<miss>");
  // Still usable, limits still hold.
  for (int i = 0; i < 15; ++i) Put(*cache, KeyN(i), "v");
  EXPECT_EQ(cache->size(), 10);
}

TEST(ExactCacheTest, RejectsBadOptionsAndArguments) {
  for (const ExactCacheOptions& options : {Opts(0), Opts(-3), Opts(std::nullopt, 0),
                                           Opts(std::nullopt, std::nullopt, absl::ZeroDuration()),
                                           Opts(std::nullopt, std::nullopt, absl::Seconds(-1))}) {
    const auto cache = ExactCache::Create(options);
    EXPECT_EQ(cache.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(cache), HasSubstr("must be positive"));
  }
  EXPECT_THAT(Msg(ExactCache::Create(Opts(-3)).status()),
              HasSubstr("max_entries must be positive, got -3"));

  auto cache = MakeCache();
  absl::Status status = cache->Put("", "k", "v", ValueKind::kBytes, {}, absl::Milliseconds(-500));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), HasSubstr("ttl must be positive, got -500ms"));
  status = cache->Put("", "k", "v", ValueKind::kBytes, Meta("", "", -1));
  EXPECT_THAT(Msg(status), HasSubstr("cost_usd must be a finite number >= 0"));
  status = cache->Put("", "k", "v", ValueKind::kBytes,
                      Meta("", "", std::numeric_limits<double>::quiet_NaN()));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache->size(), 0);
}

TEST(ExactCacheTest, SnapshotRoundTripKeepsValuesMetadataAndLruOrder) {
  FakeClock clock;
  const ScopedTempDir dir;
  const std::string path = dir / "cache.snap";
  auto cache = MakeCache(Opts(std::nullopt, std::nullopt, std::nullopt, &clock));
  ASSERT_TRUE(cache
                  ->Put("tenant", "text", "héllo", ValueKind::kText,
                        Meta("gpt-6-luna", R"({"output_tokens":7})", 0.125), absl::Hours(1))
                  .ok());
  std::string binary("\0\xff\x01 bytes", 9);
  ASSERT_TRUE(cache->Put("", "bin", binary, ValueKind::kBytes).ok());
  ASSERT_TRUE(cache->Put("", "empty", "", ValueKind::kBytes).ok());
  EXPECT_EQ(Value(*cache, "text", "tenant"), "héllo");  // now the most recently used
  ASSERT_TRUE(cache->Save(path).ok());
  EXPECT_EQ(DirEntries(dir.path()),
            std::vector<std::string>{"cache.snap"});  // no temporary file left behind

  clock.Advance(absl::Minutes(30));
  auto loaded = MakeCache(Opts(3, std::nullopt, std::nullopt, &clock));
  Put(*loaded, "replaced", "by load");
  absl::StatusOr<int64_t> count = loaded->Load(path);
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 3);
  EXPECT_FALSE(loaded->Contains("", "replaced"));
  EXPECT_EQ(loaded->Stats().bytes, cache->Stats().bytes);

  std::shared_ptr<const CachedValue> text = loaded->Get("tenant", "text");
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(text->kind, ValueKind::kText);
  EXPECT_EQ(text->metadata.model, "gpt-6-luna");
  EXPECT_EQ(text->metadata.usage_json, R"({"output_tokens":7})");
  EXPECT_EQ(text->metadata.cost_usd, 0.125);
  EXPECT_EQ(text->created_at, cache->Get("tenant", "text")->created_at);
  EXPECT_EQ(text->expires_at, text->created_at + absl::Hours(1));
  EXPECT_EQ(Value(*loaded, "bin"), binary);
  EXPECT_EQ(loaded->Get("", "bin")->kind, ValueKind::kBytes);
  EXPECT_EQ(Value(*loaded, "empty"), "");

  // Recency survives the snapshot: oldest first it was bin, empty, text. (The reads above
  // reordered `loaded`, so reload before checking the order through eviction.)
  ASSERT_TRUE(loaded->Load(path).ok());
  Put(*loaded, "new", "v");  // max_entries 3: evicts "bin"
  EXPECT_FALSE(loaded->Contains("", "bin"));
  EXPECT_TRUE(loaded->Contains("", "empty"));
  Put(*loaded, "newer", "v");  // then "empty"
  EXPECT_FALSE(loaded->Contains("", "empty"));
  EXPECT_TRUE(loaded->Contains("tenant", "text"));
}

TEST(ExactCacheTest, LoadSkipsExpiredEntriesAndKeepsTheNewestThatFit) {
  FakeClock clock;
  const ScopedTempDir dir;
  const std::string path = dir / "cache.snap";
  auto cache = MakeCache(Opts(std::nullopt, std::nullopt, std::nullopt, &clock));
  Put(*cache, "soon", "v", "", absl::Seconds(10));
  for (int i = 0; i < 6; ++i) Put(*cache, KeyN(i), "v");
  ASSERT_TRUE(cache->Save(path).ok());

  clock.Advance(absl::Seconds(11));
  auto small = MakeCache(Opts(4, std::nullopt, std::nullopt, &clock));
  absl::StatusOr<int64_t> count = small->Load(path);
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 4);
  EXPECT_FALSE(small->Contains("", "soon"));
  for (int i = 0; i < 2; ++i) EXPECT_FALSE(small->Contains("", KeyN(i))) << i;
  for (int i = 2; i < 6; ++i) EXPECT_TRUE(small->Contains("", KeyN(i))) << i;
  EXPECT_EQ(small->Stats().evictions, 0);  // trimmed before inserting, not evicted
}

TEST(ExactCacheTest, CorruptSnapshotIsRejectedAndContentsAreUntouched) {
  const ScopedTempDir dir;
  const std::string path = dir / "cache.snap";
  auto source = MakeCache();
  Put(*source, "k", "snapshot value");
  ASSERT_TRUE(source->Save(path).ok());
  const std::string good = ReadAll(path);
  ASSERT_GT(good.size(), 32u);

  auto cache = MakeCache();
  Put(*cache, "mine", "untouched");
  auto expect_rejected = [&](const std::string& bytes, absl::StatusCode code,
                             std::string_view what) {
    const std::string bad_path = dir / "bad.snap";
    WriteAll(bad_path, bytes);
    absl::StatusOr<int64_t> loaded = cache->Load(bad_path);
    EXPECT_EQ(loaded.status().code(), code) << what << ": " << loaded.status();
    EXPECT_THAT(Msg(loaded), HasSubstr(bad_path)) << what;
    EXPECT_EQ(Value(*cache, "mine"), "untouched") << what;
    EXPECT_EQ(cache->size(), 1) << what;
  };

  std::string flipped = good;
  flipped[flipped.size() - 3] ^= 0x01;  // inside the last record
  expect_rejected(flipped, absl::StatusCode::kDataLoss, "payload byte flipped");
  flipped = good;
  flipped[24] = static_cast<char>(flipped[24] ^ 0x40);  // the checksum itself
  expect_rejected(flipped, absl::StatusCode::kDataLoss, "checksum flipped");
  expect_rejected(good.substr(0, good.size() - 1), absl::StatusCode::kDataLoss, "truncated");
  expect_rejected(good.substr(0, 20), absl::StatusCode::kDataLoss, "truncated header");
  flipped = good;
  flipped[0] = 'X';
  expect_rejected(flipped, absl::StatusCode::kInvalidArgument, "bad magic");
  expect_rejected("{\"json\": true}", absl::StatusCode::kInvalidArgument, "not a snapshot");
  flipped = good;
  flipped[8] = 9;
  expect_rejected(flipped, absl::StatusCode::kInvalidArgument, "future version");

  absl::StatusOr<int64_t> missing = cache->Load(dir / "absent.snap");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(missing), HasSubstr("absent.snap"));
  EXPECT_EQ(Value(*cache, "mine"), "untouched");

  // The intact file still loads.
  ASSERT_TRUE(cache->Load(path).ok());
  EXPECT_EQ(Value(*cache, "k"), "snapshot value");
}

TEST(ExactCacheTest, FailedWriteMidSaveLeavesThePreviousSnapshotIntact) {
  const ScopedTempDir dir;
  const std::string path = dir / "cache.snap";
  auto cache = MakeCache();
  Put(*cache, "k", "old");
  ASSERT_TRUE(cache->Save(path).ok());
  const std::string old_bytes = ReadAll(path);

  // A 1 MiB value against a 64 KiB file-size limit: write() fails with EFBIG partway through
  // the temporary file, as a full disk would.
  Put(*cache, "k", std::string(1 << 20, 'n'));
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = 64 << 10;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  const absl::Status status = cache->Save(path);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  std::signal(SIGXFSZ, SIG_DFL);

  EXPECT_FALSE(status.ok());
  EXPECT_THAT(Msg(status), HasSubstr(path + ".tmp."));
  EXPECT_EQ(ReadAll(path), old_bytes);
  EXPECT_EQ(DirEntries(dir.path()), std::vector<std::string>{"cache.snap"});
  auto reloaded = MakeCache();
  ASSERT_TRUE(reloaded->Load(path).ok());
  EXPECT_EQ(Value(*reloaded, "k"), "old");
}

TEST(ExactCacheTest, FailedRenameLeavesNoTemporaryFile) {
  const ScopedTempDir dir;
  const std::filesystem::path target = dir / "occupied";
  std::filesystem::create_directory(target);
  WriteAll(target / "file", "x");  // a non-empty directory cannot be replaced by rename()
  auto cache = MakeCache();
  Put(*cache, "k", "v");
  const absl::Status status = cache->Save(target);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(Msg(status), HasSubstr("cannot rename"));
  EXPECT_THAT(Msg(status), HasSubstr(target.string()));
  EXPECT_EQ(DirEntries(dir.path()), std::vector<std::string>{"occupied"});
  EXPECT_EQ(DirEntries(target), std::vector<std::string>{"file"});

  const absl::Status no_dir = cache->Save(dir / "missing" / "cache.snap");
  EXPECT_EQ(no_dir.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(no_dir), HasSubstr("missing/cache.snap"));
}

TEST(ExactCacheTest, ConcurrentGetPutDeleteEvictIsConsistent) {
  constexpr int kThreads = 8;
  constexpr int kOpsPerThread = 20000;
  constexpr int kKeys = 300;
  FakeClock clock;
  auto cache = MakeCache(Opts(64, 64 * 40, std::nullopt, &clock));
  const ScopedTempDir dir;
  const std::string path = dir / "concurrent.snap";
  std::atomic<int64_t> gets{0};
  std::atomic<int64_t> hits{0};
  std::atomic<int> saves_ok{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint32_t state = 2654435761u * static_cast<uint32_t>(t + 1);
      int64_t my_gets = 0, my_hits = 0;
      for (int i = 0; i < kOpsPerThread; ++i) {
        state = state * 1664525u + 1013904223u;
        const int k = static_cast<int>((state >> 8) % kKeys);
        const std::string key = KeyN(k);
        const std::string_view ns = (k % 3 == 0) ? "tenant" : "";
        const uint32_t op = (state >> 24) % 100;
        if (op < 60) {
          ++my_gets;
          std::shared_ptr<const CachedValue> value = cache->Get(ns, key);
          if (value) {
            ++my_hits;
            // The value a hit returns is the one stored for this key, never torn.
            EXPECT_EQ(value->value, std::string(10 + k % 20, static_cast<char>('a' + k % 26)));
          }
        } else if (op < 90) {
          std::optional<absl::Duration> ttl;
          if (op % 7 == 0) ttl = absl::Seconds(1);
          EXPECT_TRUE(cache
                          ->Put(ns, key, std::string(10 + k % 20, static_cast<char>('a' + k % 26)),
                                ValueKind::kBytes, Meta("", "", 0.001), ttl)
                          .ok());
        } else if (op < 95) {
          cache->Delete(ns, key);
        } else if (op < 97) {
          cache->Contains(ns, key);
        } else if (op < 98) {
          const ExactCacheStats stats = cache->Stats();
          EXPECT_GE(stats.entries, 0);
        } else {
          clock.Advance(absl::Milliseconds(50));
        }
        if (t < 2 && i % 4000 == 0) {
          if (cache->Save(path + std::to_string(t)).ok()) ++saves_ok;
        }
      }
      gets += my_gets;
      hits += my_hits;
    });
  }
  for (std::thread& thread : threads) thread.join();

  const ExactCacheStats stats = cache->Stats();
  EXPECT_EQ(stats.hits + stats.misses, gets.load());
  EXPECT_EQ(stats.hits, hits.load());
  EXPECT_NEAR(stats.saved_usd, 0.001 * static_cast<double>(hits.load()), 1e-6);
  EXPECT_LE(stats.entries, 64);
  EXPECT_LE(stats.bytes, 64 * 40);
  EXPECT_EQ(stats.entries, cache->size());
  EXPECT_GT(stats.evictions, 0);
  EXPECT_GT(stats.expirations, 0);
  EXPECT_EQ(saves_ok.load(), 2 * (kOpsPerThread / 4000));
  // Every entry the counters report is reachable, and the charges add up to stats.bytes. Get
  // collects expired entries on the way, so compare with the counters afterwards.
  int64_t live = 0, bytes = 0;
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = KeyN(k);
    const std::string_view ns = (k % 3 == 0) ? "tenant" : "";
    if (std::shared_ptr<const CachedValue> value = cache->Get(ns, key)) {
      ++live;
      bytes += static_cast<int64_t>(ns.size() + key.size() + value->value.size());
    }
  }
  EXPECT_EQ(cache->Stats().entries, live);
  EXPECT_EQ(cache->Stats().bytes, bytes);
  EXPECT_EQ(cache->size(), live);
  cache->Clear();
  EXPECT_EQ(cache->size(), 0);
  EXPECT_EQ(cache->Stats().bytes, 0);
}

}  // namespace
}  // namespace thrifty::cache
