#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "test_util.h"
#include "thrifty/cost/pricing.h"
#include "thrifty/cost/usage.h"

namespace thrifty::cost {
namespace {

using ::thrifty::testing::Msg;

using ::nlohmann::json;
using ::testing::HasSubstr;

TEST(UsageFromOpenAITest, ChatCompletionsSplitsCachedAndKeepsReasoningInOutput) {
  const json report = json::parse(R"({
    "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 128}})");
  auto usage = UsageFromOpenAI(report);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->input_tokens, 86);
  EXPECT_EQ(usage->cached_input_tokens, 1920);
  EXPECT_EQ(usage->output_tokens, 300);
  EXPECT_EQ(usage->reasoning_tokens, 128);
  EXPECT_EQ(usage->prompt_tokens(), 2006);
}

TEST(UsageFromOpenAITest, ResponsesApiAndWholeResponseAndNullDetails) {
  const json response = json::parse(R"({"id": "resp_1", "usage": {
    "input_tokens": 500, "input_tokens_details": {"cached_tokens": 256},
    "output_tokens": 40, "output_tokens_details": null}})");
  auto usage = UsageFromOpenAI(response);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->input_tokens, 244);
  EXPECT_EQ(usage->cached_input_tokens, 256);
  EXPECT_EQ(usage->output_tokens, 40);
  EXPECT_EQ(usage->reasoning_tokens, 0);
}

TEST(UsageFromOpenAITest, RejectsCachedAbovePromptAndBadTypes) {
  EXPECT_THAT(Msg(UsageFromOpenAI(json::parse(
                  R"({"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 11}})"))),
              HasSubstr("exceeds prompt_tokens"));
  EXPECT_THAT(Msg(UsageFromOpenAI(json::parse(R"({"prompt_tokens": "12"})"))),
              HasSubstr("'prompt_tokens' must be a non-negative integer"));
  EXPECT_THAT(Msg(UsageFromOpenAI(json::parse(R"({"prompt_tokens": -3})"))),
              HasSubstr("non-negative"));
  EXPECT_FALSE(UsageFromOpenAI(json::parse("[1, 2]")).ok());
}

TEST(UsageFromAnthropicTest, SplitsCacheWritesByTtl) {
  const json report = json::parse(R"({
    "input_tokens": 50, "output_tokens": 200,
    "cache_creation_input_tokens": 3000, "cache_read_input_tokens": 10000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}})");
  auto usage = UsageFromAnthropic(report);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->input_tokens, 50);
  EXPECT_EQ(usage->cached_input_tokens, 10000);
  EXPECT_EQ(usage->cache_write_5m_tokens, 1000);
  EXPECT_EQ(usage->cache_write_1h_tokens, 2000);
  EXPECT_EQ(usage->output_tokens, 200);
}

TEST(UsageFromAnthropicTest, WritesWithoutSplitAreFiveMinute) {
  auto usage = UsageFromAnthropic(json::parse(
      R"({"usage": {"input_tokens": 5, "output_tokens": 1, "cache_creation_input_tokens": 1500}})"));
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->cache_write_5m_tokens, 1500);
  EXPECT_EQ(usage->cache_write_1h_tokens, 0);
}

TEST(UsageFromGeminiTest, CamelAndSnakeCaseAgreeAndThoughtsAreOutput) {
  const json camel = json::parse(R"({"usageMetadata": {"promptTokenCount": 1200,
    "cachedContentTokenCount": 1000, "candidatesTokenCount": 80, "thoughtsTokenCount": 120,
    "totalTokenCount": 1400}})");
  const json snake = json::parse(R"({"prompt_token_count": 1200,
    "cached_content_token_count": 1000, "candidates_token_count": 80,
    "thoughts_token_count": 120})");
  auto a = UsageFromGemini(camel);
  auto b = UsageFromGemini(snake);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->input_tokens, 200);
  EXPECT_EQ(a->cached_input_tokens, 1000);
  EXPECT_EQ(a->output_tokens, 200);
  EXPECT_EQ(a->reasoning_tokens, 120);
}

TEST(UsageFromDeepSeekTest, UsesHitAndMissCounts) {
  auto usage = UsageFromDeepSeek(json::parse(R"({"prompt_tokens": 900,
    "prompt_cache_hit_tokens": 640, "prompt_cache_miss_tokens": 260, "completion_tokens": 70,
    "completion_tokens_details": {"reasoning_tokens": 30}})"));
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->input_tokens, 260);
  EXPECT_EQ(usage->cached_input_tokens, 640);
  EXPECT_EQ(usage->reasoning_tokens, 30);
}

TEST(UsageFromProviderTest, DetectsShapeWhenProviderIsEmpty) {
  auto anthropic = UsageFromProvider(
      "", json::parse(R"({"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 7})"));
  ASSERT_TRUE(anthropic.ok());
  EXPECT_EQ(anthropic->cached_input_tokens, 7);
  EXPECT_EQ(anthropic->input_tokens, 3);
  auto gemini = UsageFromProvider("", json::parse(R"({"promptTokenCount": 9})"));
  ASSERT_TRUE(gemini.ok());
  EXPECT_EQ(gemini->input_tokens, 9);
  auto groq = UsageFromProvider("groq", json::parse(R"({"prompt_tokens": 9})"));
  ASSERT_TRUE(groq.ok());
  EXPECT_EQ(groq->input_tokens, 9);
}

TEST(PricingTest, ExactToPublishedPrices) {
  catalog::ModelSpec sonnet;
  sonnet.name = "claude-sonnet-4-5";
  sonnet.provider = "anthropic";
  sonnet.input_per_mtok = 3.0;
  sonnet.output_per_mtok = 15.0;
  sonnet.cached_input_per_mtok = 0.30;
  sonnet.cache_write_5m_per_mtok = 3.75;
  sonnet.cache_write_1h_per_mtok = 6.0;
  Usage usage;
  usage.input_tokens = 1'000'000;
  usage.cached_input_tokens = 2'000'000;
  usage.cache_write_5m_tokens = 1'000'000;
  usage.cache_write_1h_tokens = 500'000;
  usage.output_tokens = 100'000;
  const CostBreakdown b = PriceUsage(sonnet, usage);
  EXPECT_DOUBLE_EQ(b.input_usd, 3.0);
  EXPECT_DOUBLE_EQ(b.cached_input_usd, 0.6);
  EXPECT_DOUBLE_EQ(b.cache_write_usd, 3.75 + 3.0);
  EXPECT_DOUBLE_EQ(b.output_usd, 1.5);
  EXPECT_DOUBLE_EQ(b.total_usd(), 3.0 + 0.6 + 6.75 + 1.5);
  EXPECT_DOUBLE_EQ(UncachedCostUsd(sonnet, usage), 4.5 * 3.0 + 1.5);
}

TEST(PricingTest, MissingCachePricesBillAtInputPrice) {
  catalog::ModelSpec plain;
  plain.name = "m";
  plain.provider = "together";
  plain.input_per_mtok = 0.88;
  plain.output_per_mtok = 0.88;
  Usage usage;
  usage.cached_input_tokens = 1000;
  EXPECT_DOUBLE_EQ(CostUsd(plain, usage), 0.00088);
}

TEST(UsageTest, AdditionAndValidation) {
  Usage a{1, 2, 3, 4, 5, 1};
  Usage b{10, 20, 30, 40, 50, 10};
  EXPECT_EQ((a + b).total_tokens(), 11 + 22 + 33 + 44 + 55);
  Usage bad;
  bad.reasoning_tokens = 5;
  EXPECT_THAT(Msg(ValidateUsage(bad)), HasSubstr("reasoning_tokens (5) exceeds output"));
}

}  // namespace
}  // namespace thrifty::cost
