#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "test_util.h"
#include "thrifty/embed/hashing_embedder.h"
#include "thrifty/embed/static_embedder.h"

namespace thrifty::embed {
namespace {

using ::testing::HasSubstr;
using ::thrifty::testing::Msg;

std::vector<float> EmbedOne(const Embedder& embedder, std::string_view text) {
  std::vector<float> out(embedder.dim());
  const absl::Status status = embedder.Embed(text, out);
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0;
  for (size_t i = 0; i < a.size(); ++i) dot += static_cast<double>(a[i]) * b[i];
  return dot;
}

double Norm(const std::vector<float>& a) { return std::sqrt(Dot(a, a)); }

std::unique_ptr<HashingEmbedder> Hashing(const HashingEmbedderOptions& options = {}) {
  auto embedder = HashingEmbedder::Create(options);
  EXPECT_TRUE(embedder.ok()) << embedder.status();
  return *std::move(embedder);
}

TEST(HashingEmbedderTest, RowsAreUnitNormAndDeterministic) {
  const auto embedder = Hashing();
  EXPECT_EQ(embedder->dim(), 256u);
  EXPECT_EQ(embedder->name(), "hashing(dim=256)");
  const auto a = EmbedOne(*embedder, "How do I learn Python quickly?");
  EXPECT_NEAR(Norm(a), 1.0, 1e-6);
  EXPECT_EQ(a, EmbedOne(*embedder, "How do I learn Python quickly?"));
  // A second instance (as another process would build) gives the same bits.
  EXPECT_EQ(a, EmbedOne(*Hashing(), "How do I learn Python quickly?"));
}

TEST(HashingEmbedderTest, GoldenValuesPinTheFeatureFunction) {
  // Vectors may be stored (Redis, snapshots) and compared across versions and machines: any
  // change to normalization, hashing, seeds or weights must show up here and in name().
  const auto v = EmbedOne(*Hashing(), "Hello, world!");
  std::vector<std::pair<size_t, float>> nonzero;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != 0.0f) nonzero.emplace_back(i, v[i]);
  }
  ASSERT_FALSE(nonzero.empty());
  double checksum = 0;
  for (const auto& [i, x] : nonzero) checksum += static_cast<double>(i + 1) * x;
  EXPECT_EQ(nonzero.size(), 21u);
  ASSERT_GE(nonzero.size(), 4u);
  EXPECT_EQ(nonzero[0].first, 6u);
  EXPECT_FLOAT_EQ(nonzero[0].second, -0.18184824f);
  EXPECT_EQ(nonzero[1].first, 8u);
  EXPECT_FLOAT_EQ(nonzero[1].second, 0.18184824f);
  EXPECT_EQ(nonzero[3].first, 78u);
  EXPECT_NEAR(checksum, 280.67369, 1e-3);
}

TEST(HashingEmbedderTest, NormalizesCaseWhitespaceAndPunctuation) {
  const auto embedder = Hashing();
  const auto a = EmbedOne(*embedder, "what's the capital of France?");
  EXPECT_EQ(a, EmbedOne(*embedder, "  What’s   the CAPITAL of\tFrance "));
  EXPECT_EQ(a, EmbedOne(*embedder, "whats the capital of france"));
}

TEST(HashingEmbedderTest, ParaphrasesScoreHigherThanUnrelatedTexts) {
  const auto embedder = Hashing();
  const auto q = EmbedOne(*embedder, "How can I learn to play the guitar?");
  const auto paraphrase = EmbedOne(*embedder, "What is the best way to learn guitar?");
  const auto unrelated = EmbedOne(*embedder, "How can I reset my bank account password?");
  const auto typo = EmbedOne(*embedder, "How can I lern to play the guitarr?");
  EXPECT_GT(Dot(q, paraphrase), Dot(q, unrelated) + 0.1);
  EXPECT_GT(Dot(q, typo), 0.5);  // character n-grams absorb typos
  EXPECT_GT(Dot(q, typo), Dot(q, unrelated) + 0.3);
}

TEST(HashingEmbedderTest, NonAsciiTextHasFeatures) {
  const auto embedder = Hashing();
  const auto a = EmbedOne(*embedder, "東京の天気はどうですか");
  EXPECT_NEAR(Norm(a), 1.0, 1e-6);
  // Unsegmented scripts are one "word"; the character n-grams still see the overlap.
  EXPECT_GT(Dot(a, EmbedOne(*embedder, "東京の天気は")),
            Dot(a, EmbedOne(*embedder, "今日は雨が降っています")) + 0.2);
  EXPECT_NEAR(Norm(EmbedOne(*embedder, "Ünïcödé wörds")), 1.0, 1e-6);
  // Malformed UTF-8 is consumed byte by byte, never read past the end.
  EXPECT_NEAR(Norm(EmbedOne(*embedder, std::string_view("ab\xE3\x81", 4))), 1.0, 1e-6);
}

TEST(HashingEmbedderTest, TextWithoutWordsIsTheZeroVector) {
  const auto embedder = Hashing();
  for (std::string_view text : {"", "   ", "?!... --", "\xC2\xA0\t\n"}) {
    const auto v = EmbedOne(*embedder, text);
    EXPECT_EQ(Norm(v), 0.0) << "text: '" << text << "'";
  }
}

TEST(HashingEmbedderTest, BatchEqualsSingle) {
  const auto embedder = Hashing({.dim = 64});
  const std::vector<std::string_view> texts = {"first question", "", "Second, longer question?",
                                               "first question"};
  std::vector<float> out(texts.size() * 64, 42.0f);
  ASSERT_TRUE(embedder->EmbedBatch(texts, out).ok());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<float> row(out.begin() + i * 64, out.begin() + (i + 1) * 64);
    EXPECT_EQ(row, EmbedOne(*embedder, texts[i])) << "text " << i;
  }
}

TEST(HashingEmbedderTest, ValidatesOptions) {
  EXPECT_THAT(Msg(HashingEmbedder::Create({.dim = 4})),
              HasSubstr("dim must be in [8, 8192], got 4"));
  EXPECT_EQ(HashingEmbedder::Create({.dim = 9000}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HashingEmbedder::Create({.dim = 8}).ok());
  EXPECT_TRUE(HashingEmbedder::Create({.dim = 8192}).ok());
  EXPECT_THAT(Msg(HashingEmbedder::Create({.word_weight = -1})),
              HasSubstr("word_weight must be a finite number >= 0, got -1"));
  EXPECT_THAT(
      Msg(HashingEmbedder::Create({.word_weight = 0, .bigram_weight = 0, .char_weight = 0})),
      HasSubstr("at least one must be > 0"));
  EXPECT_THAT(Msg(HashingEmbedder::Create({.stopword_weight = 2})),
              HasSubstr("stopword_weight must be in [0, 1]"));
  EXPECT_THAT(Msg(HashingEmbedder::Create({.char_ngram_min = 4, .char_ngram_max = 3})),
              HasSubstr("char_ngram_min=4, char_ngram_max=3"));
}

TEST(HashingEmbedderTest, NameCarriesNonDefaultOptions) {
  EXPECT_EQ(Hashing({.dim = 512})->name(), "hashing(dim=512)");
  EXPECT_EQ(Hashing({.char_ngram_max = 5})->name(),
            "hashing(dim=256,words=1,bigrams=0.25,chars=1.25,stopwords=0.25,ngrams=3-5)");
}

TEST(HashingEmbedderTest, RejectsWrongOutputSize) {
  const auto embedder = Hashing();
  std::vector<float> out(255);
  EXPECT_THAT(Msg(embedder->Embed("hi", out)), HasSubstr("expected 1 texts x 256 = 256"));
}

// A 5-token, 4-dim table: row i is e_(i % 4) scaled by (i + 1).
std::vector<float> ToyTable() {
  std::vector<float> table(5 * 4, 0.0f);
  for (size_t i = 0; i < 5; ++i) table[i * 4 + i % 4] = static_cast<float>(i + 1);
  return table;
}

std::unique_ptr<StaticEmbedder> Toy(StaticEmbedder::Tokenizer tokenizer = nullptr) {
  auto embedder = StaticEmbedder::Create(ToyTable(), 5, 4, "toy", std::move(tokenizer));
  EXPECT_TRUE(embedder.ok()) << embedder.status();
  return *std::move(embedder);
}

TEST(StaticEmbedderTest, MeanPoolsThenNormalizes) {
  const auto embedder = Toy();
  const std::vector<int32_t> a = {0, 1};     // (1, 2, 0, 0)
  const std::vector<int32_t> b = {0, 4, 1};  // (1+5, 2, 0, 0)
  const std::vector<int32_t> empty;
  const std::vector<std::span<const int32_t>> ids = {a, b, empty};
  std::vector<float> out(3 * 4, 7.0f);
  ASSERT_TRUE(embedder->EmbedTokenIds(ids, out).ok());
  const float s5 = std::sqrt(5.0f), s40 = std::sqrt(40.0f);
  EXPECT_THAT(out, ::testing::Pointwise(::testing::FloatNear(1e-6),
                                        std::vector<float>{1 / s5, 2 / s5, 0, 0,    //
                                                           6 / s40, 2 / s40, 0, 0,  //
                                                           0, 0, 0, 0}));
}

TEST(StaticEmbedderTest, RejectsIdsOutsideTheVocabulary) {
  const auto embedder = Toy();
  const std::vector<int32_t> bad = {1, 5};
  const std::vector<std::span<const int32_t>> ids = {bad};
  std::vector<float> out(4);
  EXPECT_THAT(Msg(embedder->EmbedTokenIds(ids, out)),
              HasSubstr("token id 5 (text 0, position 1) is outside the vocabulary [0, 5)"));
  const std::vector<int32_t> negative = {-1};
  const std::vector<std::span<const int32_t>> ids2 = {negative};
  EXPECT_FALSE(embedder->EmbedTokenIds(ids2, out).ok());
}

TEST(StaticEmbedderTest, EmbedBatchNeedsATokenizer) {
  const auto embedder = Toy();
  std::vector<float> out(4);
  const absl::Status status = embedder->Embed("hello", out);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(status), HasSubstr("'toy' has no tokenizer"));
}

TEST(StaticEmbedderTest, EmbedBatchTokenizesWithTheHook) {
  // One token per character: 'a' -> 0, 'b' -> 1, ...
  const auto embedder = Toy([](std::span<const std::string_view> texts,
                               std::vector<std::vector<int32_t>>* ids) -> absl::Status {
    for (std::string_view text : texts) {
      std::vector<int32_t>& row = ids->emplace_back();
      for (char c : text) {
        if (c < 'a' || c > 'e') return absl::InvalidArgumentError("toy tokenizer: a-e only");
        row.push_back(c - 'a');
      }
    }
    return absl::OkStatus();
  });
  const std::vector<std::string_view> texts = {"ab", "aeb", ""};
  std::vector<float> batch(3 * 4);
  ASSERT_TRUE(embedder->EmbedBatch(texts, batch).ok());
  const std::vector<int32_t> a = {0, 1}, b = {0, 4, 1}, c;
  const std::vector<std::span<const int32_t>> ids = {a, b, c};
  std::vector<float> direct(3 * 4);
  ASSERT_TRUE(embedder->EmbedTokenIds(ids, direct).ok());
  EXPECT_EQ(batch, direct);
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<float> row(batch.begin() + i * 4, batch.begin() + (i + 1) * 4);
    EXPECT_EQ(row, EmbedOne(*embedder, texts[i]));
  }
  std::vector<float> out(4);
  EXPECT_THAT(Msg(embedder->Embed("xyz", out)), HasSubstr("a-e only"));
}

TEST(StaticEmbedderTest, ValidatesTheTable) {
  EXPECT_THAT(Msg(StaticEmbedder::Create(std::vector<float>(10), 5, 4, "t")),
              HasSubstr("holds 10 floats, expected 5 x 4 = 20"));
  EXPECT_THAT(Msg(StaticEmbedder::Create({}, 0, 4, "t")), HasSubstr("at least one row"));
  std::vector<float> table = ToyTable();
  table[9] = std::nanf("");
  EXPECT_THAT(Msg(StaticEmbedder::Create(table, 5, 4, "t")),
              HasSubstr("non-finite value at row 2, column 1"));
}

}  // namespace
}  // namespace thrifty::embed
