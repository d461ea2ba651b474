#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"
#include "thrifty/embed/hashing_embedder.h"
#include "thrifty/route/features.h"
#include "thrifty/route/knn_predictor.h"
#include "thrifty/route/router.h"

namespace thrifty::route {
namespace {

using ::testing::HasSubstr;
using ::thrifty::testing::Msg;

catalog::ModelSpec Spec(std::string name, double in, double out, double prior,
                        std::optional<double> cached = std::nullopt) {
  catalog::ModelSpec s;
  s.name = std::move(name);
  s.provider = "anthropic";
  s.input_per_mtok = in;
  s.output_per_mtok = out;
  s.cached_input_per_mtok = cached;
  for (auto c : catalog::kQualityCategories) s.quality[std::string(c)] = prior;
  return s;
}

catalog::Catalog ThreeModels() {
  return *catalog::Catalog::Create({Spec("cheap", 1.0, 4.0, 0.70, 0.5),
                                    Spec("mid", 3.0, 15.0, 0.85, 0.3),
                                    Spec("big", 15.0, 75.0, 0.95, 0.15)});
}

std::shared_ptr<const embed::Embedder> Hashing() {
  return std::shared_ptr<const embed::Embedder>(*embed::HashingEmbedder::Create());
}

std::unique_ptr<Router> MakeRouter(std::string kind = "knn", KnnOptions knn = {}) {
  PredictorConfig config;
  config.kind = kind;
  config.knn = knn;
  auto embedder = Hashing();
  auto predictor = MakePredictor(config, ThreeModels(), embedder->dim());
  EXPECT_TRUE(predictor.ok()) << predictor.status();
  auto router = Router::Create(ThreeModels(), embedder, *std::move(predictor));
  EXPECT_TRUE(router.ok()) << router.status();
  return *std::move(router);
}

// Says the whole prompt of `warm_model` is in its provider's prompt cache.
class FakeTracker : public request::CachedTokensPredictor {
 public:
  explicit FakeTracker(std::string warm_model) : warm_(std::move(warm_model)) {}
  int64_t PredictCachedTokens(const catalog::ModelSpec& model,
                              const nlohmann::json& request) const override {
    calls_.fetch_add(1);
    return model.name == warm_ ? int64_t{1} << 40 : 0;  // clamped to the input tokens
  }
  mutable std::atomic<int> calls_{0};

 private:
  std::string warm_;
};

std::vector<Example> Labeled() {
  std::vector<Example> ex;
  for (int i = 0; i < 30; ++i) {
    ex.push_back({nlohmann::json("translate the word number " + std::to_string(i) + " to french"),
                  {{"cheap", 1.0, 40.0}, {"mid", 1.0, std::nullopt}, {"big", 1.0, 60.0}}});
    ex.push_back(
        {nlohmann::json("prove the series " + std::to_string(i) + " converges with epsilon delta"),
         {{"cheap", 0.0, 400.0}, {"mid", 0.0, std::nullopt}, {"big", 1.0, 500.0}}});
  }
  return ex;
}

TEST(RouterTest, CheapModelChosenWhenItMeetsTheThreshold) {
  auto router = MakeRouter();
  auto d = router->Route(nlohmann::json("hello there"), Threshold::Absolute(0.6));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->model, "cheap");
  EXPECT_TRUE(d->met_threshold);
  d = router->Route(nlohmann::json("hello there"), Threshold::Absolute(0.9));
  EXPECT_EQ(d->model, "big");
  d = router->Route(nlohmann::json("hello there"), Threshold::Absolute(0.99));
  EXPECT_EQ(d->model, "big");
  EXPECT_FALSE(d->met_threshold);
  EXPECT_THAT(d->reason, HasSubstr("no model"));
  d = router->Route(nlohmann::json("hello there"), Threshold::Relative(0.85));
  EXPECT_EQ(d->model, "mid");
  EXPECT_NEAR(d->threshold, 0.85 * 0.95, 1e-12);
}

TEST(RouterTest, ExpectedCostIsPricesTimesTokens) {
  auto router = MakeRouter();
  auto d = router->Route(nlohmann::json("hello there"));
  ASSERT_TRUE(d.ok());
  for (size_t j = 0; j < 3; ++j) {
    const auto& s = router->catalog().models()[j];
    const double want =
        (d->input_tokens[j] * s.input_per_mtok + d->output_tokens[j] * s.output_per_mtok) / 1e6;
    EXPECT_NEAR(d->expected_cost_usd[j], want, 1e-15);
    EXPECT_EQ(d->output_tokens[j], kDefaultOutputTokens);
    EXPECT_EQ(d->cached_tokens[j], 0);
  }
}

TEST(RouterTest, WarmPrefixCacheFlipsTheChoiceToAnExpensiveModel) {
  auto router = MakeRouter();
  // A long prompt with a short answer: input dominates the cost.
  std::string prompt;
  for (int i = 0; i < 400; ++i) prompt += "The contract states clause " + std::to_string(i) + ". ";
  const nlohmann::json request = {{"messages", {{{"role", "user"}, {"content", prompt}}}}};
  auto cold = router->Route(request, Threshold::Absolute(0.8));
  ASSERT_TRUE(cold.ok());
  EXPECT_EQ(cold->model, "mid");  // cheap is below 0.8
  auto tracker = std::make_shared<FakeTracker>("big");
  router->SetCachedTokensPredictor(tracker);
  // Make output negligible so the cache decides: big pays 0.15/M on a cached prompt.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(router->Feedback(request, "big", std::nullopt, 1.0).ok());
    ASSERT_TRUE(router->Feedback(request, "mid", std::nullopt, 1.0).ok());
  }
  auto warm = router->Route(request, Threshold::Absolute(0.8));
  ASSERT_TRUE(warm.ok());
  EXPECT_EQ(warm->model, "big") << warm->reason;
  EXPECT_EQ(warm->cached_tokens[2], warm->input_tokens[2]);  // clamped
  EXPECT_LT(warm->expected_cost_usd[2], warm->expected_cost_usd[1]);
  EXPECT_THAT(warm->reason, HasSubstr("cached"));
  EXPECT_GE(tracker->calls_.load(), 3);
  router->SetCachedTokensPredictor(nullptr);
  EXPECT_EQ(router->Route(request, Threshold::Absolute(0.8))->model, "mid");
}

TEST(RouterTest, FitLearnsPerPromptQualityAndOutputTokens) {
  for (std::string kind : {"knn", "logistic"}) {
    auto router = MakeRouter(kind);
    ASSERT_TRUE(router->Fit(Labeled()).ok());
    auto easy = router->Route(nlohmann::json("translate the word number 5 to french"),
                              Threshold::Absolute(0.9));
    auto hard = router->Route(nlohmann::json("prove the series 5 converges with epsilon delta"),
                              Threshold::Absolute(0.9));
    ASSERT_TRUE(easy.ok() && hard.ok());
    EXPECT_EQ(easy->model, "cheap") << kind << ": " << easy->reason;
    EXPECT_EQ(hard->model, "big") << kind << ": " << hard->reason;
    EXPECT_GT(hard->output_tokens[2], easy->output_tokens[2]) << kind;
  }
}

TEST(RouterTest, KnnFallsBackToThePriorWhereAModelHasNoLabels) {
  auto router = MakeRouter("knn");
  std::vector<Example> ex = Labeled();
  for (Example& e : ex) std::erase_if(e.labels, [](const Label& l) { return l.model == "mid"; });
  ASSERT_TRUE(router->Fit(ex).ok());
  auto d = router->Route(nlohmann::json("prove the series 5 converges with epsilon delta"));
  EXPECT_DOUBLE_EQ(d->predicted_quality[1], 0.85);  // mid: no labels anywhere -> its prior
  EXPECT_LT(d->predicted_quality[0], 0.2);          // cheap: its neighbours say 0
}

TEST(RouterTest, PriorPredictorLearnsCategoryMeans) {
  auto router = MakeRouter("prior");
  std::vector<Example> ex;
  for (int i = 0; i < 50; ++i)
    ex.push_back({nlohmann::json("hello " + std::to_string(i)), {{"cheap", 1.0, {}}}});
  ASSERT_TRUE(router->Fit(ex).ok());
  auto d = router->Route(nlohmann::json("hello again"));
  // (50 * 1.0 + 10 * 0.70) / 60
  EXPECT_NEAR(d->predicted_quality[0], (50.0 + 10 * 0.7) / 60.0, 1e-9);
}

TEST(RouterTest, SaveLoadRoundTripGivesIdenticalDecisions) {
  for (std::string kind : {"prior", "knn", "logistic"}) {
    auto router = MakeRouter(kind);
    ASSERT_TRUE(router->Fit(Labeled()).ok());
    const std::string path = ::testing::TempDir() + "/router_" + kind + ".bin";
    ASSERT_TRUE(router->Save(path).ok());
    auto loaded = Router::Load(path, ThreeModels(), Hashing());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->predictor_kind(), kind);
    for (const Example& e : Labeled()) {
      auto a = router->Route(e.input);
      auto b = (*loaded)->Route(e.input);
      EXPECT_EQ(a->model, b->model);
      EXPECT_EQ(a->predicted_quality, b->predicted_quality);
      EXPECT_EQ(a->output_tokens, b->output_tokens);
    }
  }
}

TEST(RouterTest, LoadRejectsCorruptFiles) {
  auto router = MakeRouter();
  ASSERT_TRUE(router->Fit(Labeled()).ok());
  const std::string path = ::testing::TempDir() + "/router_corrupt.bin";
  ASSERT_TRUE(router->Save(path).ok());
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
  };
  write(bytes.substr(0, bytes.size() - 10));
  auto r = Router::Load(path, ThreeModels(), Hashing());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(r), HasSubstr("truncated"));
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x5A;
  write(flipped);
  EXPECT_THAT(Msg(Router::Load(path, ThreeModels(), Hashing())), HasSubstr("checksum"));
  std::string version = bytes;
  version[8] = 99;
  write(version);
  EXPECT_THAT(Msg(Router::Load(path, ThreeModels(), Hashing())), HasSubstr("format version 99"));
  write("garbage");
  EXPECT_THAT(Msg(Router::Load(path, ThreeModels(), Hashing())), HasSubstr("not a thrifty router"));
  EXPECT_EQ(Router::Load(path + ".missing", ThreeModels(), Hashing()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(RouterTest, BadInputErrorsSayWhatAndWhere) {
  auto router = MakeRouter();
  std::vector<Example> ex = Labeled();
  ex[12].labels.push_back({"gpt-9", 1.0, {}});
  auto s = router->Fit(ex);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(s), HasSubstr("examples[12]['gpt-9']"));
  ex = Labeled();
  ex[3].labels.clear();
  EXPECT_THAT(Msg(router->Fit(ex)), HasSubstr("examples[3]: no labels"));
  ex = Labeled();
  ex[4].labels[0].quality = 1.5;
  EXPECT_THAT(Msg(router->Fit(ex)), HasSubstr("examples[4]['cheap']: quality must be in [0, 1]"));
  ex = Labeled();
  ex[5].labels[0].output_tokens = -1;
  EXPECT_THAT(Msg(router->Fit(ex)), HasSubstr("output_tokens"));
  ex = Labeled();
  ex[6].input = 42;
  EXPECT_THAT(Msg(router->Fit(ex)), HasSubstr("examples[6]"));
  EXPECT_THAT(Msg(router->Route(nlohmann::json("x"), Threshold::Absolute(1.5))),
              HasSubstr("must be in [0, 1]"));
  EXPECT_THAT(Msg(router->Route(nlohmann::json("x"), Threshold::Relative(-0.1))),
              HasSubstr("must be in [0, 1]"));
  auto empty = catalog::Catalog::Create({});
  ASSERT_TRUE(empty.ok());
  EXPECT_THAT(Msg(Router::Create(*empty, Hashing())), HasSubstr("catalog is empty"));
  EXPECT_THAT(Msg(router->Feedback(nlohmann::json("x"), "nope", 0.5, {})),
              HasSubstr("feedback[0]['nope']"));
}

TEST(RouterTest, DeprecatedModelsAreNotChosen) {
  auto cheap = Spec("cheap-old", 0.01, 0.01, 0.99);
  cheap.deprecated = true;
  auto cat = *catalog::Catalog::Create({cheap, Spec("big", 15, 75, 0.95)});
  auto router = *Router::Create(cat, Hashing());
  EXPECT_EQ(router->Route(nlohmann::json("hi"))->model, "big");
  RouterOptions options;
  options.include_deprecated = true;
  auto all = *Router::Create(cat, Hashing(), nullptr, options);
  EXPECT_EQ(all->Route(nlohmann::json("hi"))->model, "cheap-old");
}

TEST(RouterTest, ConcurrentRoutesAndFeedback) {
  auto router = MakeRouter();
  ASSERT_TRUE(router->Fit(Labeled()).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        if (t == 0) {
          if (!router->Feedback(nlohmann::json("prompt " + std::to_string(i)), "mid", 0.5, 10.0)
                   .ok()) {
            failures++;
          }
        } else if (!router->Route(nlohmann::json("translate number " + std::to_string(i))).ok()) {
          failures++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(router->examples(), Labeled().size() + 50);
}

// kNN: the HNSW path agrees with the exact path, and the memory bound evicts oldest first.
TEST(KnnPredictorTest, HnswMatchesExactAndEvictsOldest) {
  const size_t dim = 32, m = 2, n = 3000;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  LabeledSet set;
  set.dim = dim;
  set.models = m;
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> v(dim);
    double norm = 0;
    for (float& x : v) {
      x = normal(rng);
      norm += x * x;
    }
    for (float& x : v) x /= std::sqrt(norm);
    set.embeddings.insert(set.embeddings.end(), v.begin(), v.end());
    set.categories.push_back(Category::kChat);
    set.quality.push_back(v[0] > 0 ? 1.0f : 0.0f);
    set.quality.push_back(0.5f);
    set.output_tokens.push_back(10.0f);
    set.output_tokens.push_back(std::nanf(""));
  }
  auto catalog = *catalog::Catalog::Create({Spec("a", 1, 1, 0.5), Spec("b", 1, 1, 0.5)});
  KnnOptions exact_options;
  exact_options.exact_below = n + 1;
  KnnOptions hnsw_options;
  hnsw_options.exact_below = 100;
  auto exact = *KnnPredictor::Create(Priors::FromCatalog(catalog), dim, exact_options);
  auto hnsw = *KnnPredictor::Create(Priors::FromCatalog(catalog), dim, hnsw_options);
  ASSERT_TRUE(exact->Fit(set).ok());
  ASSERT_TRUE(hnsw->Fit(set).ok());
  EXPECT_FALSE(exact->uses_hnsw());
  EXPECT_TRUE(hnsw->uses_hnsw());
  size_t agree = 0;
  for (size_t i = 0; i < 100; ++i) {
    std::span<const float> q(set.embeddings.data() + i * dim, dim);
    auto a = exact->Neighbours(q, 1);
    auto b = hnsw->Neighbours(q, 1);
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].second, i);  // itself
    agree += !b.empty() && b[0].second == a[0].second;
  }
  EXPECT_GE(agree, 98u);
  // Save and load keep the graph and its quantizer: the same neighbours.
  std::string saved;
  hnsw->Save(saved);
  auto loaded = *KnnPredictor::Create(Priors::FromCatalog(catalog), dim, hnsw_options);
  std::string_view in = saved;
  ASSERT_TRUE(loaded->Load(in).ok());
  EXPECT_TRUE(in.empty());
  EXPECT_TRUE(loaded->uses_hnsw());
  for (size_t i = 0; i < 20; ++i) {
    std::span<const float> q(set.embeddings.data() + i * dim, dim);
    EXPECT_EQ(loaded->Neighbours(q, 5), hnsw->Neighbours(q, 5));
  }
  // The memory bound: 1000 examples; adding more evicts the oldest.
  KnnOptions small = hnsw_options;
  small.max_examples = 1000;
  auto bounded = *KnnPredictor::Create(Priors::FromCatalog(catalog), dim, small);
  ASSERT_TRUE(bounded->Fit(set).ok());
  EXPECT_LE(bounded->size(), 1000u);
  // The newest example is still there and finds itself.
  std::span<const float> last(set.embeddings.data() + (n - 1) * dim, dim);
  auto nn = bounded->Neighbours(last, 1);
  ASSERT_FALSE(nn.empty());
  EXPECT_NEAR(nn[0].first, 1.0f, 1e-5);
  // The oldest is gone.
  std::span<const float> first(set.embeddings.data(), dim);
  EXPECT_LT(bounded->Neighbours(first, 1)[0].first, 0.999f);
}

TEST(FeaturesTest, CategoriesFromCheapFeatures) {
  auto cat = [](const std::string& text) {
    return CategoryName(ExtractFeatures(nlohmann::json(text))->category);
  };
  EXPECT_EQ(cat("```python\nprint(1)\n```"), "code");
  EXPECT_EQ(cat("Fix this bug in my javascript function"), "code");
  EXPECT_EQ(cat("Solve the equation 3x + 2 = 11"), "math");
  EXPECT_EQ(cat("What is \\frac{1}{2} of 10?"), "math");
  EXPECT_EQ(cat("Extract the names and dates from the following text as JSON"), "extraction");
  EXPECT_EQ(cat("Why do leaves change color in autumn? Explain."), "reasoning");
  EXPECT_EQ(cat("Hi! How was your weekend?"), "chat");
  std::string long_text;
  for (int i = 0; i < 3000; ++i) long_text += "lorem ipsum dolor sit amet ";
  EXPECT_EQ(cat(long_text), "long_context");
  // A request: the last user message decides; the embedder sees it.
  nlohmann::json req = {
      {"system", "You are helpful."},
      {"messages",
       {{{"role", "user"}, {"content", "Solve 2 + 2 * 3"}},
        {{"role", "assistant"}, {"content", "8"}},
        {{"role", "user"}, {"content", [] {
                              return nlohmann::json::array({{{"type", "text"}, {"text", "Hello"}}});
                            }()}}}}};
  auto f = ExtractFeatures(req);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->embed_text, "Hello");
  EXPECT_EQ(f->category, Category::kChat);
  EXPECT_FALSE(ExtractFeatures(nlohmann::json(3)).ok());
  EXPECT_EQ(*ParseCategory("long_context"), Category::kLongContext);
  EXPECT_THAT(Msg(ParseCategory("poetry")), HasSubstr("accepted"));
}

TEST(FeaturesTest, EmbedTextKeepsHeadAndTail) {
  FeatureOptions o;
  o.embed_head_chars = 5;
  o.embed_tail_chars = 5;
  auto f = ExtractFeatures(nlohmann::json("HEAD-middle middle middle-TAIL!"), o);
  EXPECT_EQ(f->embed_text, "HEAD-\nTAIL!");
}

}  // namespace
}  // namespace thrifty::route
