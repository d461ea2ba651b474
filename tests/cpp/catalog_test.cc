#include "thrifty/catalog/catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace thrifty::catalog {
namespace {

using ::thrifty::testing::Msg;

using ::testing::HasSubstr;
using ::testing::StartsWith;

ModelSpec Spec(std::string name, std::string provider, double in, double out) {
  ModelSpec spec;
  spec.name = std::move(name);
  spec.provider = std::move(provider);
  spec.input_per_mtok = in;
  spec.output_per_mtok = out;
  return spec;
}

TEST(ModelSpecTest, RejectsNegativePriceNamingModelAndField) {
  ModelSpec spec = Spec("m", "openai", -1.0, 2.0);
  const absl::Status status = ValidateModelSpec(spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(status), HasSubstr("model 'm': input_per_mtok"));
  EXPECT_THAT(Msg(status), HasSubstr(">= 0"));
}

TEST(ModelSpecTest, RejectsNonFiniteOptionalPrice) {
  ModelSpec spec = Spec("m", "openai", 1.0, 2.0);
  spec.cached_input_per_mtok = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(Msg(ValidateModelSpec(spec)), HasSubstr("cached_input_per_mtok"));
}

TEST(ModelSpecTest, RejectsQualityOutsideUnitInterval) {
  ModelSpec spec = Spec("m", "openai", 1.0, 2.0);
  spec.quality["code"] = 1.5;
  EXPECT_THAT(Msg(ValidateModelSpec(spec)), HasSubstr("quality['code']"));
}

TEST(ModelSpecTest, RejectsOutputLimitAboveContext) {
  ModelSpec spec = Spec("m", "openai", 1.0, 2.0);
  spec.context_window = 1000;
  spec.max_output_tokens = 2000;
  EXPECT_THAT(Msg(ValidateModelSpec(spec)), HasSubstr("exceeds context_window"));
}

TEST(ModelSpecTest, PriceFallbacksFollowProviderBilling) {
  ModelSpec spec = Spec("m", "anthropic", 3.0, 15.0);
  EXPECT_EQ(spec.CachedInputPrice(), 3.0);
  EXPECT_EQ(spec.CacheWrite5mPrice(), 3.0);
  spec.cache_write_5m_per_mtok = 3.75;
  EXPECT_EQ(spec.CacheWrite1hPrice(), 3.75);
  spec.cache_write_1h_per_mtok = 6.0;
  EXPECT_EQ(spec.CacheWrite1hPrice(), 6.0);
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ModelSpec mini = Spec("gpt-4o-mini", "openai", 0.15, 0.60);
    ModelSpec big = Spec("gpt-4o", "openai", 2.50, 10.0);
    big.aliases = {"gpt-4o-2024-08-06"};
    ModelSpec sonnet = Spec("claude-sonnet-4-5", "anthropic", 3.0, 15.0);
    auto catalog = Catalog::Create({mini, big, sonnet});
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    catalog_ = std::make_unique<Catalog>(*std::move(catalog));
  }
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogTest, FindsByNameAliasCaseAndProviderPrefix) {
  EXPECT_EQ(catalog_->Find("gpt-4o")->input_per_mtok, 2.50);
  EXPECT_EQ(catalog_->Find("GPT-4O-2024-08-06")->name, "gpt-4o");
  EXPECT_EQ(catalog_->Find("openai/gpt-4o-mini")->name, "gpt-4o-mini");
  EXPECT_EQ(catalog_->Find("anthropic/gpt-4o"), nullptr);  // wrong provider prefix
  EXPECT_EQ(catalog_->Find("gpt-5"), nullptr);
}

TEST_F(CatalogTest, UnknownModelListsClosestNames) {
  auto result = catalog_->Get("gpt4o-mini");
  ASSERT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(result), HasSubstr("unknown model 'gpt4o-mini'"));
  EXPECT_THAT(Msg(result), HasSubstr("closest in the catalog: gpt-4o-mini"));
}

TEST(CatalogCreateTest, RejectsDuplicateNamesAndAliases) {
  ModelSpec a = Spec("x", "openai", 1, 1);
  ModelSpec b = Spec("y", "openai", 1, 1);
  b.aliases = {"X"};
  auto result = Catalog::Create({a, b});
  ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(result), HasSubstr("alias 'X' is already used by model 'x'"));
}

TEST(CatalogCreateTest, ReportsInvalidSpecFirstError) {
  auto result = Catalog::Create({Spec("ok", "openai", 1, 1), Spec("bad", "", 1, 1)});
  EXPECT_THAT(Msg(result), StartsWith("model 'bad': provider"));
}

TEST(ClosestNamesTest, PrefersSharedStemOverRawDistance) {
  const std::vector<std::string> names = {"claude-sonnet-4-5", "gpt-4o", "claude-opus-4-1",
                                          "gemini-2.5-pro"};
  EXPECT_EQ(ClosestNames("claude-sonnet", names, 1).front(), "claude-sonnet-4-5");
  EXPECT_EQ(ClosestNames("gemini-2.5-pr", names, 1).front(), "gemini-2.5-pro");
  EXPECT_EQ(ClosestNames("x", names, 10).size(), names.size());
}

}  // namespace
}  // namespace thrifty::catalog
