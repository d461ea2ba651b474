#include "thrifty/cache/semantic_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include "faiss/IndexHNSW.h"
#include "faiss/impl/AuxIndexStructures.h"
#include "faiss/impl/DistanceComputer.h"
#include "test_util.h"
// Internal classes of the cache area, tested directly (the target only exports cpp/include).
#include "../../cpp/src/cache/hnsw_index.h"
#include "../../cpp/src/cache/simd_distance.h"
#include "../../cpp/src/cache/sq8_quantizer.h"
#include "../../cpp/src/cache/vector_partition.h"

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

// --- ANN internals: 8-bit codes, the code kernels, the HNSW walk --------------------------

std::vector<float> Unit(std::vector<float> v) {
  double norm = 0.0;
  for (float x : v) norm += static_cast<double>(x) * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

// n unit vectors around `centers` random centres (real embeddings are clustered, not uniform).
std::vector<float> Clustered(std::mt19937& rng, size_t n, size_t dim, size_t centers,
                             float spread) {
  std::vector<std::vector<float>> middle;
  for (size_t c = 0; c < centers; ++c) middle.push_back(Unit(Random(rng, dim)));
  std::normal_distribution<float> normal;
  std::vector<float> out;
  out.reserve(n * dim);
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> v = middle[rng() % centers];
    for (float& x : v) x += spread * normal(rng) / std::sqrt(static_cast<float>(dim));
    v = Unit(std::move(v));
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

float Dot(const float* a, const float* b, size_t dim) {
  double sum = 0.0;
  for (size_t i = 0; i < dim; ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

TEST(SemanticCacheAnnTest, Sq8CodesRoundTripWithinHalfAStep) {
  constexpr size_t kD = 256;
  std::mt19937 rng(3);
  const std::vector<float> vectors = Clustered(rng, 4000, kD, 50, 0.5f);
  const auto quantizer = internal::Sq8Quantizer::Train(vectors.data(), 4000, kD);
  // Trained ranges are much tighter than [-1, 1]: the point of training.
  EXPECT_LT(quantizer.MaxInRangeError(), 0.5f * 2.0f / 255.0f);
  std::vector<uint8_t> code(kD);
  std::vector<float> decoded(kD), weights(kD);
  float worst = 0.0f;
  for (size_t row = 0; row < 4000; ++row) {
    const float* v = &vectors[row * kD];
    quantizer.Encode(v, code.data());
    quantizer.Decode(code.data(), decoded.data());
    for (size_t i = 0; i < kD; ++i) worst = std::max(worst, std::abs(v[i] - decoded[i]));
    // The code-space inner product equals the inner product with the decoded vector, and is
    // within sum_i |q_i| * error of the exact one.
    const float* q = &vectors[((row * 7919) % 4000) * kD];
    const float approx = quantizer.PrepareQuery(q, weights.data()) +
                         internal::WeightedCodeSum(weights.data(), code.data(), kD);
    EXPECT_NEAR(approx, Dot(q, decoded.data(), kD), 1e-4);
    float bound = 0.0f;
    for (size_t i = 0; i < kD; ++i) bound += std::abs(q[i]) * quantizer.MaxInRangeError();
    EXPECT_LE(std::abs(approx - Dot(q, v, kD)), bound + 1e-4f);
  }
  EXPECT_LE(worst, quantizer.MaxInRangeError() * 1.001f);
  EXPECT_GT(worst, 0.0f);

  // Components outside the trained range clamp to its nearer end.
  std::vector<float> outlier(kD, 0.0f);
  outlier[0] = 1.0f;
  quantizer.Encode(outlier.data(), code.data());
  EXPECT_EQ(code[0], 255);
  outlier[0] = -1.0f;
  quantizer.Encode(outlier.data(), code.data());
  EXPECT_EQ(code[0], 0);

  // Too few rows to learn from: [-1, 1] on every dimension, which still holds any unit vector.
  const auto untrained = internal::Sq8Quantizer::Train(vectors.data(), 10, kD);
  EXPECT_NEAR(untrained.MaxInRangeError(), 1.0f / 255.0f, 1e-7);
  untrained.Encode(outlier.data(), code.data());
  untrained.Decode(code.data(), decoded.data());
  EXPECT_NEAR(decoded[0], -1.0f, 1e-6);
  EXPECT_NEAR(decoded[1], 0.0f, 1.0f / 255.0f);
}

TEST(SemanticCacheAnnTest, CodeKernelMatchesScalarAtEveryTailLength) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (size_t dim : {1, 7, 15, 16, 17, 31, 32, 33, 48, 255, 256, 257, 1000}) {
    std::vector<float> weights(dim);
    std::vector<uint8_t> code(dim);
    double expected = 0.0;
    for (size_t i = 0; i < dim; ++i) {
      weights[i] = uniform(rng);
      code[i] = static_cast<uint8_t>(rng() % 256);
      expected += static_cast<double>(weights[i]) * code[i];
    }
    EXPECT_NEAR(internal::WeightedCodeSum(weights.data(), code.data(), dim), expected,
                1e-3 * (1.0 + std::abs(expected)))
        << "dim=" << dim << " simd=" << internal::SimdLevel();
  }
}

TEST(SemanticCacheAnnTest, BatchKernelsMatchTheOneRowKernels) {
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (size_t dim : {1, 7, 31, 32, 33, 64, 96, 255, 256, 257, 1000}) {
    constexpr size_t kRows = 40;
    std::vector<uint8_t> codes(kRows * dim);
    std::vector<float> rows(kRows * dim);
    for (auto& c : codes) c = static_cast<uint8_t>(rng() % 256);
    for (auto& x : rows) x = uniform(rng);
    std::vector<int16_t> weights(dim);
    std::vector<float> query(dim);
    // Extreme weights too: CodeDot's contract allows |sum| < 2^31.
    const int limit = static_cast<int>(std::min<size_t>(32767, 2147483647 / (255 * dim)));
    for (size_t i = 0; i < dim; ++i) {
      weights[i] = static_cast<int16_t>(i % 5 == 0 ? (i % 2 ? limit : -limit)
                                                   : static_cast<int>(rng() % 2001) - 1000);
      query[i] = uniform(rng);
    }
    for (size_t n : {0, 1, 2, 3, 4, 5, 9, 40}) {
      std::vector<int32_t> ids(n);
      for (auto& id : ids) id = static_cast<int32_t>(rng() % kRows);
      std::vector<int32_t> dots(n);
      std::vector<float> products(n);
      internal::CodeDots(weights.data(), codes.data(), dim, ids.data(), n, dots.data());
      internal::InnerProductsGather(query.data(), rows.data(), dim, ids.data(), n, products.data());
      for (size_t j = 0; j < n; ++j) {
        int64_t exact = 0;
        for (size_t i = 0; i < dim; ++i) exact += int64_t{weights[i]} * codes[ids[j] * dim + i];
        EXPECT_EQ(dots[j], exact) << "dim=" << dim << " n=" << n;
        EXPECT_EQ(dots[j], internal::CodeDot(weights.data(), &codes[ids[j] * dim], dim));
        // Bit-identical: the HNSW heuristic's choices must not depend on the batching.
        EXPECT_EQ(products[j], internal::InnerProduct(query.data(), &rows[ids[j] * dim], dim))
            << "dim=" << dim << " n=" << n << " simd=" << internal::SimdLevel();
      }
    }
  }
}

TEST(SemanticCacheAnnTest, IntegerQueryWeightsTrackTheFloatOnes) {
  constexpr size_t kD = 256;
  std::mt19937 rng(4);
  const std::vector<float> vectors = Clustered(rng, 1000, kD, 20, 0.5f);
  const auto quantizer = internal::Sq8Quantizer::Train(vectors.data(), 1000, kD);
  std::vector<uint8_t> code(kD);
  std::vector<float> weights(kD);
  std::vector<int16_t> weights16(kD);
  for (size_t row = 0; row < 200; ++row) {
    const float* q = &vectors[row * kD];
    float unit = 0.0f;
    const float bias16 = quantizer.PrepareQueryInt16(q, weights16.data(), &unit);
    const float bias = quantizer.PrepareQuery(q, weights.data());
    EXPECT_FLOAT_EQ(bias16, bias);
    EXPECT_GT(unit, 0.0f);
    quantizer.Encode(&vectors[((row * 31) % 1000) * kD], code.data());
    const float exact = bias + internal::WeightedCodeSum(weights.data(), code.data(), kD);
    const float approx =
        bias16 + unit * static_cast<float>(internal::CodeDot(weights16.data(), code.data(), kD));
    EXPECT_NEAR(approx, exact, 1e-3f);
  }
  std::vector<float> zero(kD, 0.0f);
  float unit = 1.0f;
  EXPECT_EQ(quantizer.PrepareQueryInt16(zero.data(), weights16.data(), &unit), 0.0f);
  EXPECT_EQ(unit, 0.0f);
  EXPECT_EQ(*std::max_element(weights16.begin(), weights16.end()), 0);
}

// FAISS's own insertion, with the distances HnswIndex's insertion uses: 16-bit query weights
// against the current codes for the beam search, exact float products for the heuristic.
class CodeInsertionDistance : public faiss::DistanceComputer {
 public:
  CodeInsertionDistance(const internal::Sq8Quantizer& quantizer, const uint8_t* codes,
                        const float* base, size_t dim)
      : quantizer_(quantizer), codes_(codes), base_(base), dim_(dim), weights_(dim) {}
  void set_query(const float* x) override {
    bias_ = quantizer_.PrepareQueryInt16(x, weights_.data(), &unit_);
  }
  float operator()(idx_t i) override {
    return -(bias_ + unit_ * static_cast<float>(internal::CodeDot(
                                 weights_.data(), codes_ + static_cast<size_t>(i) * dim_, dim_)));
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    return -internal::InnerProduct(base_ + static_cast<size_t>(i) * dim_,
                                   base_ + static_cast<size_t>(j) * dim_, dim_);
  }

 private:
  const internal::Sq8Quantizer& quantizer_;
  const uint8_t* codes_;
  const float* base_;
  size_t dim_;
  float bias_ = 0.0f;
  float unit_ = 0.0f;
  std::vector<int16_t> weights_;
};

TEST(SemanticCacheAnnTest, HnswInsertionBuildsTheGraphFaissBuilds) {
  // One node at a time (so one thread, in insertion order), the same levels (both draw them
  // from FAISS's generator with its default seed) and the same distances: HnswIndex's
  // insertion must link exactly what faiss::HNSW::add_with_locks links.
  constexpr size_t kD = 32;
  constexpr size_t kN = 3000;
  constexpr int kM = 8;
  std::mt19937 rng(21);
  const std::vector<float> base = Clustered(rng, kN, kD, 30, 0.6f);
  internal::HnswOptions options;
  options.dim = kD;
  options.m = kM;
  options.ef_construction = 24;
  internal::HnswIndex index(options);

  faiss::HNSW reference(kM);
  reference.efConstruction = options.ef_construction;
  std::vector<omp_lock_t> locks(kN);
  for (omp_lock_t& lock : locks) omp_init_lock(&lock);
  faiss::VisitedTable visited(kN);
  std::vector<uint8_t> codes(kN * kD);
  for (size_t i = 0; i < kN; ++i) {
    index.Add(base.data(), 1);
    // HnswIndex re-encodes every row when its quantizer is re-trained: mirror its codes.
    for (size_t row = 0; row <= i; ++row) {
      if (row == i || (i & (i + 1)) == 0) {  // cheap: re-training happens at sizes 4^k
        index.quantizer().Encode(&base[row * kD], &codes[row * kD]);
      }
    }
    const int level = reference.random_level();
    reference.levels.push_back(level + 1);
    reference.prepare_level_tab(1, /*preset_levels=*/true);
    CodeInsertionDistance distance(index.quantizer(), codes.data(), base.data(), kD);
    distance.set_query(&base[i * kD]);
    reference.add_with_locks(distance, level, static_cast<int>(i), locks, visited);
  }
  for (omp_lock_t& lock : locks) omp_destroy_lock(&lock);

  size_t compared = 0;
  for (size_t node = 0; node < kN; ++node) {
    for (int level = 0; level < reference.levels[node]; ++level) {
      size_t begin;
      size_t end;
      reference.neighbor_range(static_cast<faiss::HNSW::idx_t>(node), level, &begin, &end);
      std::vector<int> expected;
      for (size_t j = begin; j < end && reference.neighbors[j] >= 0; ++j) {
        expected.push_back(reference.neighbors[j]);
      }
      ASSERT_EQ(index.Links(node, level), expected) << "node " << node << " level " << level;
      ++compared;
    }
  }
  EXPECT_GT(compared, kN);  // some nodes have upper levels
  EXPECT_TRUE(index.Links(kN, 0).empty());
}

TEST(SemanticCacheAnnTest, HnswWalkOverCodesFindsWhatFaissFindsOverFloats) {
  // Same data, same M and efConstruction: our walk over 8-bit codes must find the exact best
  // match about as often as FAISS's own search over float32 vectors.
  constexpr size_t kD = 64;
  constexpr size_t kN = 10000;
  constexpr size_t kQueries = 400;
  std::mt19937 rng(11);
  const std::vector<float> base = Clustered(rng, kN, kD, 100, 0.5f);
  const std::vector<float> queries = Clustered(rng, kQueries, kD, 100, 0.5f);
  internal::HnswOptions options;
  options.dim = kD;
  options.m = 16;
  options.ef_construction = 40;
  internal::HnswIndex index(options);
  index.Add(base.data(), kN / 2);  // a batch (parallel), then one by one, then a batch
  for (size_t i = kN / 2; i < kN / 2 + 300; ++i) index.Add(base.data(), 1);
  index.Add(base.data(), kN - index.size());
  ASSERT_EQ(index.size(), kN);
  faiss::IndexHNSWFlat reference(kD, 16, faiss::METRIC_INNER_PRODUCT);
  reference.hnsw.efConstruction = 40;
  // One OpenMP thread: FAISS's parallel insertion synchronizes through libgomp locks, which
  // ThreadSanitizer cannot see (it would report their writes as races).
  const int omp_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  reference.add(kN, base.data());

  std::vector<uint32_t> best(kQueries);
  for (size_t q = 0; q < kQueries; ++q) {
    float best_similarity = -2.0f;
    for (uint32_t i = 0; i < kN; ++i) {
      const float similarity = Dot(&queries[q * kD], &base[i * kD], kD);
      if (similarity > best_similarity) {
        best_similarity = similarity;
        best[q] = i;
      }
    }
  }
  std::vector<std::pair<float, uint32_t>> found;
  for (int ef : {32, 128}) {
    index.set_ef_search(ef);
    reference.hnsw.efSearch = ef;
    std::vector<float> distances(kQueries * 10);
    std::vector<faiss::Index::idx_t> labels(kQueries * 10);
    reference.search(kQueries, queries.data(), 10, distances.data(), labels.data());
    int ours = 0;
    int theirs = 0;
    for (size_t q = 0; q < kQueries; ++q) {
      const float* query = &queries[q * kD];
      index.Search(query, 10, found);
      ASSERT_EQ(found.size(), 10u);
      for (size_t i = 1; i < found.size(); ++i) EXPECT_GE(found[i - 1].first, found[i].first);
      for (const auto& [similarity, label] : found) {  // approximate, but close
        EXPECT_NEAR(similarity, Dot(query, &base[label * kD], kD), 0.02);
      }
      ours += std::any_of(found.begin(), found.end(),
                          [&](const auto& f) { return f.second == best[q]; });
      theirs += std::count(&labels[q * 10], &labels[q * 10 + 10],
                           static_cast<faiss::Index::idx_t>(best[q]));
    }
    EXPECT_GE(ours, theirs - static_cast<int>(kQueries) / 50) << "ef=" << ef;
    if (ef == 128) {
      EXPECT_GE(ours, static_cast<int>(kQueries) * 9 / 10);
    }
  }
  omp_set_num_threads(omp_threads);
}

TEST(SemanticCacheAnnTest, PartitionKeepsOneFloatCopyAndReRanksExactly) {
  constexpr size_t kD = 128;
  constexpr size_t kN = 8000;
  std::mt19937 rng(13);
  const std::vector<float> base = Clustered(rng, kN, kD, 100, 1.0f);
  internal::PartitionConfig config;
  config.dim = kD;
  config.ann_always = true;
  config.hnsw_m = 16;
  internal::VectorPartition partition(config);
  std::vector<uint64_t> ids(kN);
  for (size_t i = 0; i < kN; ++i) ids[i] = i + 1;
  partition.AddBatch(base.data(), ids.data(), kN);
  ASSERT_TRUE(partition.uses_ann());
  // float32 vector + 8-bit code + level-0 links (2 * M) and slack; two float copies would not fit.
  const double per_entry = static_cast<double>(partition.MemoryBytes()) / kN;
  EXPECT_LT(per_entry, kD * 4 + kD + 2 * 16 * 4 + 160) << per_entry;
  EXPECT_GT(per_entry, kD * 4 + kD);

  std::vector<std::pair<float, uint64_t>> out;
  for (size_t i = 0; i < kN; i += 37) {
    partition.Search(&base[i * kD], 3, out);
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out[0].second, i + 1);
    for (const auto& [similarity, id] : out) {  // exact, not the 8-bit estimate
      EXPECT_FLOAT_EQ(similarity, internal::InnerProduct(&base[i * kD], &base[(id - 1) * kD], kD));
    }
  }
}

TEST(SemanticCacheAnnTest, GrowingOneByOneRetrainsCodesAndKeepsFindingEverything) {
  // kHnsw from the first entry: the codes start on [-1, 1] and are re-trained (and re-encoded)
  // as the partition grows 4x at a time; every stored vector must stay findable throughout.
  SemanticCacheOptions options;
  options.index = IndexKind::kHnsw;
  options.threshold = 0.999;
  options.hnsw_m = 8;
  auto cache = MakeCache(options, 48);
  std::mt19937 rng(17);
  const std::vector<float> base = Clustered(rng, 5000, 48, 40, 0.6f);
  auto row = [&](size_t i) { return std::vector<float>(&base[i * 48], &base[(i + 1) * 48]); };
  int found = 0;
  for (size_t i = 0; i < 5000; ++i) {
    ASSERT_TRUE(
        cache->PutVector(row(i), "q" + std::to_string(i), Value(std::to_string(i)), "", "").ok());
    if (i % 50 == 0) found += HitData(*cache, row(i / 2), "", "") == std::to_string(i / 2);
  }
  EXPECT_GE(found, 99);  // of 100 probes while growing
  found = 0;
  for (size_t i = 0; i < 5000; ++i) found += HitData(*cache, row(i), "", "") == std::to_string(i);
  EXPECT_GE(found, 4975);
}

TEST(SemanticCacheAnnTest, InterleavedScopesOfDifferentSizesOnOneThread) {
  // One thread's visited bits serve partitions of every size, and are cleared between searches.
  SemanticCacheOptions options;
  options.index = IndexKind::kHnsw;
  options.threshold = 0.999;
  auto cache = MakeCache(options, 32);
  std::mt19937 rng(19);
  std::vector<std::vector<float>> small, large;
  for (int i = 0; i < 300; ++i) {
    small.push_back(Random(rng, 32));
    ASSERT_TRUE(
        cache->PutVector(small.back(), "s" + std::to_string(i), Value("small"), "", "s").ok());
  }
  std::vector<float> batch;
  std::vector<std::string> queries;
  std::vector<SemanticValue> values;
  for (int i = 0; i < 5000; ++i) {
    large.push_back(Random(rng, 32));
    batch.insert(batch.end(), large.back().begin(), large.back().end());
    queries.push_back("l" + std::to_string(i));
    values.push_back(Value("large" + std::to_string(i)));
  }
  ASSERT_TRUE(cache->PutVectors(batch, queries, std::move(values), "", "l").ok());
  int found = 0;
  for (int round = 0; round < 600; ++round) {
    found += HitData(*cache, small[round % 300], "", "s") == "small";
    found += HitData(*cache, large[(round * 7) % 5000], "", "l") ==
             "large" + std::to_string((round * 7) % 5000);
  }
  EXPECT_GE(found, 1190);
  EXPECT_EQ(HitData(*cache, large[0], "", "s"), "<miss>");
}

}  // namespace
}  // namespace thrifty::cache
