#include "thrifty/cache/semantic_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include "test_util.h"

namespace thrifty::cache {
namespace {

using ::testing::HasSubstr;
using ::thrifty::testing::Msg;

constexpr size_t kDim = 16;

std::vector<float> Basis(size_t i, float noise = 0.0f, size_t noise_axis = 0) {
  std::vector<float> v(kDim, 0.0f);
  v[i % kDim] = 1.0f;
  v[noise_axis % kDim] += noise;
  return v;
}

std::vector<float> Random(std::mt19937& rng, size_t dim = kDim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(dim);
  for (float& x : v) x = normal(rng);
  return v;
}

SemanticValue Value(std::string data, double cost = 0.0) {
  SemanticValue v;
  v.data = std::move(data);
  v.cost_usd = cost;
  return v;
}

std::unique_ptr<SemanticCache> MakeCache(SemanticCacheOptions options = {}, size_t dim = kDim) {
  auto cache = SemanticCache::Create(dim, std::move(options), nullptr);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return *std::move(cache);
}

std::string HitData(SemanticCache& cache, const std::vector<float>& v, std::string_view context,
                    std::string_view ns, std::optional<double> threshold = std::nullopt) {
  auto hit = cache.GetVector(v, context, ns, threshold);
  EXPECT_TRUE(hit.ok()) << hit.status();
  return hit.ok() && hit->has_value() ? (*hit)->value.data : "<miss>";
}

TEST(SemanticCacheTest, HitsAboveThresholdAndMissesBelow) {
  SemanticCacheOptions options;
  options.threshold = 0.95;
  auto cache = MakeCache(options);
  ASSERT_TRUE(cache->PutVector(Basis(0), "what is 2+2", Value("4", 0.01), "ctx", "ns").ok());
  // cos = 1/sqrt(1.01) = 0.995 -> hit; 1/sqrt(2) = 0.707 -> miss.
  auto hit = cache->GetVector(Basis(0, 0.1f, 1), "ctx", "ns");
  ASSERT_TRUE(hit.ok() && hit->has_value());
  EXPECT_EQ((*hit)->value.data, "4");
  EXPECT_EQ((*hit)->matched_query, "what is 2+2");
  EXPECT_NEAR((*hit)->similarity, 1.0 / std::sqrt(1.01), 1e-5);
  EXPECT_EQ(HitData(*cache, Basis(0, 1.0f, 1), "ctx", "ns"), "<miss>");
  EXPECT_EQ(HitData(*cache, Basis(0, 1.0f, 1), "ctx", "ns", 0.7), "4");  // per-call threshold
  const SemanticCacheStats stats = cache->stats();
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_DOUBLE_EQ(stats.saved_usd, 0.02);
}

TEST(SemanticCacheTest, NeverCrossesNamespaceOrContextEvenForPerfectMatches) {
  auto cache = MakeCache();
  ASSERT_TRUE(cache->PutVector(Basis(0), "q", Value("tenant-a"), "ctx", "a").ok());
  ASSERT_TRUE(cache->PutVector(Basis(0), "q", Value("tenant-b"), "ctx", "b").ok());
  ASSERT_TRUE(cache->PutVector(Basis(0), "q", Value("other-conversation"), "ctx2", "a").ok());
  EXPECT_EQ(HitData(*cache, Basis(0), "ctx", "a"), "tenant-a");
  EXPECT_EQ(HitData(*cache, Basis(0), "ctx", "b"), "tenant-b");
  EXPECT_EQ(HitData(*cache, Basis(0), "ctx2", "a"), "other-conversation");
  EXPECT_EQ(HitData(*cache, Basis(0), "ctx", "c"), "<miss>");
  // Scope strings that would collide if concatenated naively.
  EXPECT_EQ(HitData(*cache, Basis(0), "tx", "ac"), "<miss>");
  EXPECT_EQ(HitData(*cache, Basis(0), "", "actx"), "<miss>");
}

TEST(SemanticCacheTest, AdversarialNearDuplicatesInOtherScopesDoNotWin) {
  // Many exact matches in foreign scopes; the own scope holds only a weaker match.
  SemanticCacheOptions options;
  options.threshold = 0.9;
  options.index = IndexKind::kHnsw;
  auto cache = MakeCache(options);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(
        cache->PutVector(Basis(3), "q", Value("foreign"), "ctx", "t" + std::to_string(i)).ok());
  }
  ASSERT_TRUE(cache->PutVector(Basis(3, 0.3f, 4), "q'", Value("mine"), "ctx", "me").ok());
  EXPECT_EQ(HitData(*cache, Basis(3), "ctx", "me"), "mine");
  EXPECT_EQ(HitData(*cache, Basis(3), "ctx", "nobody"), "<miss>");
}

TEST(SemanticCacheTest, RePuttingAQueryReplacesIt) {
  auto cache = MakeCache();
  ASSERT_TRUE(cache->PutVector(Basis(1), "q", Value("old"), "", "").ok());
  ASSERT_TRUE(cache->PutVector(Basis(1), "q", Value("new"), "", "").ok());
  EXPECT_EQ(HitData(*cache, Basis(1), "", ""), "new");
  EXPECT_EQ(cache->stats().entries, 1u);
  EXPECT_EQ(cache->stats().replaced, 1u);
  EXPECT_EQ(cache->Delete("q", "", ""), 1u);
  EXPECT_EQ(HitData(*cache, Basis(1), "", ""), "<miss>");
}

TEST(SemanticCacheTest, TtlExpiresExactlyWithAFakeClock) {
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  SemanticCacheOptions options;
  options.clock = [&now] { return now; };
  options.default_ttl = absl::Seconds(60);
  auto cache = MakeCache(options);
  ASSERT_TRUE(cache->PutVector(Basis(0), "default ttl", Value("a"), "", "").ok());
  ASSERT_TRUE(cache->PutVector(Basis(1), "short ttl", Value("b"), "", "", absl::Seconds(5)).ok());
  now += absl::Seconds(5);
  EXPECT_EQ(HitData(*cache, Basis(1), "", ""), "<miss>");
  EXPECT_EQ(HitData(*cache, Basis(0), "", ""), "a");
  now += absl::Seconds(55);
  EXPECT_EQ(HitData(*cache, Basis(0), "", ""), "<miss>");
  EXPECT_EQ(cache->PurgeExpired(), 2u);
  EXPECT_EQ(cache->stats().entries, 0u);
  EXPECT_EQ(cache->stats().expirations, 2u);
  EXPECT_THAT(Msg(cache->PutVector(Basis(0), "q", Value("x"), "", "", absl::Seconds(-1))),
              HasSubstr("ttl_seconds must be > 0"));
}

TEST(SemanticCacheTest, MaxEntriesEvictsLeastRecentlyUsed) {
  SemanticCacheOptions options;
  options.max_entries = 200;
  auto cache = MakeCache(options, 256);
  std::mt19937 rng(1);
  std::vector<std::vector<float>> vectors;
  for (int i = 0; i < 200; ++i) {
    vectors.push_back(Random(rng, 256));
    ASSERT_TRUE(cache->PutVector(vectors.back(), "q" + std::to_string(i), Value("v"), "", "").ok());
  }
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 10; ++i) EXPECT_NE(HitData(*cache, vectors[i], "", ""), "<miss>");
  }
  for (int i = 200; i < 300; ++i) {
    ASSERT_TRUE(
        cache->PutVector(Random(rng, 256), "q" + std::to_string(i), Value("v"), "", "").ok());
  }
  EXPECT_EQ(cache->stats().entries, 200u);
  EXPECT_EQ(cache->stats().evictions, 100u);
  for (int i = 0; i < 10; ++i) EXPECT_NE(HitData(*cache, vectors[i], "", ""), "<miss>") << i;
}

TEST(SemanticCacheTest, MaxBytesBoundsMemoryAndRejectsOversizedValues) {
  SemanticCacheOptions options;
  options.max_bytes = 20'000;
  auto cache = MakeCache(options);
  EXPECT_THAT(Msg(cache->PutVector(Basis(0), "q", Value(std::string(30'000, 'x')), "", "")),
              HasSubstr("more than max_bytes=20000"));
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(
        cache->PutVector(Basis(i), "q" + std::to_string(i), Value(std::string(1000, 'x')), "", "")
            .ok());
  }
  EXPECT_LE(cache->stats().bytes, 20'000u);
  EXPECT_GT(cache->stats().evictions, 0u);
}

TEST(SemanticCacheTest, RejectsBadVectorsAndOptions) {
  auto cache = MakeCache();
  std::vector<float> nan = Basis(0);
  nan[3] = std::nanf("");
  EXPECT_THAT(Msg(cache->PutVector(nan, "q", Value("v"), "", "")),
              HasSubstr("vector[3] is not finite"));
  EXPECT_THAT(Msg(cache->GetVector(std::vector<float>(3, 1.0f), "", "")),
              HasSubstr("vector has 3 values, the cache expects dim=16"));
  EXPECT_THAT(Msg(cache->Get("hello", "", "")), HasSubstr("has no embedder"));
  // A zero vector matches nothing.
  ASSERT_TRUE(cache->PutVector(Basis(0), "q", Value("v"), "", "").ok());
  EXPECT_EQ(HitData(*cache, std::vector<float>(kDim, 0.0f), "", ""), "<miss>");
  SemanticCacheOptions bad;
  bad.threshold = 0.0;
  EXPECT_THAT(Msg(SemanticCache::Create(kDim, bad, nullptr)), HasSubstr("threshold must be"));
  EXPECT_THAT(Msg(SemanticCache::Create(0, {}, nullptr)), HasSubstr("dim must be"));
}

TEST(SemanticCacheTest, HnswFindsEveryStoredVectorAndSurvivesTombstones) {
  SemanticCacheOptions options;
  options.index = IndexKind::kAuto;
  options.ann_min_entries = 500;
  options.threshold = 0.99;
  auto cache = MakeCache(options, 64);
  std::mt19937 rng(7);
  std::vector<std::vector<float>> vectors;
  for (int i = 0; i < 3000; ++i) {
    vectors.push_back(Random(rng, 64));
    ASSERT_TRUE(
        cache->PutVector(vectors.back(), "q" + std::to_string(i), Value(std::to_string(i)), "", "")
            .ok());
  }
  EXPECT_EQ(cache->stats().ann_scopes, 1u);
  int found = 0;
  for (int i = 0; i < 3000; ++i) found += HitData(*cache, vectors[i], "", "") == std::to_string(i);
  EXPECT_GE(found, 2970);  // recall@1 >= 0.99 on exact re-queries
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(cache->Delete("q" + std::to_string(i), "", ""), 1u);
  for (int i = 0; i < 2000; i += 97) EXPECT_EQ(HitData(*cache, vectors[i], "", ""), "<miss>");
  found = 0;
  for (int i = 2000; i < 3000; ++i)
    found += HitData(*cache, vectors[i], "", "") == std::to_string(i);
  EXPECT_GE(found, 990);
}

TEST(SemanticCacheTest, SnapshotRoundTripsAndDetectsCorruption) {
  absl::Time now = absl::FromUnixSeconds(2'000'000);
  SemanticCacheOptions options;
  options.clock = [&now] { return now; };
  auto cache = MakeCache(options);
  SemanticValue bytes_value = Value(std::string("\0\1\2", 3), 0.5);
  bytes_value.is_text = false;
  bytes_value.model = "gpt-6-luna";
  ASSERT_TRUE(cache->PutVector(Basis(0), "kept", bytes_value, "ctx", "ns").ok());
  ASSERT_TRUE(
      cache->PutVector(Basis(1), "expiring", Value("x"), "ctx", "ns", absl::Seconds(10)).ok());
  const std::string path = ::testing::TempDir() + "/semantic.snap";
  ASSERT_TRUE(cache->Save(path).ok());

  now += absl::Seconds(11);
  auto loaded = MakeCache(options);
  ASSERT_TRUE(loaded->Load(path).ok());
  EXPECT_EQ(loaded->stats().entries, 1u);  // the expired entry is not restored
  auto hit = loaded->GetVector(Basis(0), "ctx", "ns");
  ASSERT_TRUE(hit.ok() && hit->has_value());
  EXPECT_EQ((*hit)->value.data, std::string("\0\1\2", 3));
  EXPECT_FALSE((*hit)->value.is_text);
  EXPECT_EQ((*hit)->value.model, "gpt-6-luna");

  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  bytes[bytes.size() / 2] ^= 0x40;
  const std::string corrupt = ::testing::TempDir() + "/corrupt.snap";
  std::ofstream(corrupt, std::ios::binary) << bytes;
  auto victim = MakeCache(options);
  ASSERT_TRUE(victim->PutVector(Basis(5), "untouched", Value("y"), "", "").ok());
  const absl::Status status = victim->Load(corrupt);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(status), HasSubstr("checksum mismatch"));
  EXPECT_EQ(HitData(*victim, Basis(5), "", ""), "y");  // a failed load keeps the old contents
  EXPECT_EQ(victim->Load(::testing::TempDir() + "/absent.snap").code(),
            absl::StatusCode::kNotFound);
}

TEST(SemanticCacheTest, ConcurrentReadersAndWritersAreConsistent) {
  SemanticCacheOptions options;
  options.max_entries = 300;
  options.ann_min_entries = 100;
  auto cache = MakeCache(options, 32);
  std::vector<std::thread> threads;
  std::atomic<int> gets{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 400; ++i) {
        const std::string ns = "ns" + std::to_string(i % 3);
        if (t < 2) {
          ASSERT_TRUE(
              cache->PutVector(Random(rng, 32), "q" + std::to_string(i), Value("v"), "c", ns).ok());
          if (i % 7 == 0) cache->Delete("q" + std::to_string(i / 2), "c", ns);
        } else {
          ASSERT_TRUE(cache->GetVector(Random(rng, 32), "c", ns, 0.2).ok());
          gets.fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const SemanticCacheStats stats = cache->stats();
  EXPECT_EQ(stats.hits + stats.misses, static_cast<uint64_t>(gets.load()));
  EXPECT_LE(stats.entries, 300u);
}

}  // namespace
}  // namespace thrifty::cache
