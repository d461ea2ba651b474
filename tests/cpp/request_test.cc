#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "test_util.h"
#include "thrifty/request/canonical_json.h"
#include "thrifty/request/request_key.h"
#include "thrifty/request/token_estimate.h"

namespace thrifty::request {
namespace {

using ::thrifty::testing::Msg;

using ::nlohmann::json;
using ::testing::HasSubstr;

std::string Key(const json& request, std::string_view ns = "") {
  auto key = RequestKey(request, ns);
  EXPECT_TRUE(key.ok()) << key.status();
  return key.ok() ? key->ToHex() : "";
}

json Chat() {
  return json::parse(R"({"model": "gpt-4o-mini", "temperature": 0.2,
    "messages": [{"role": "system", "content": "You are terse."},
                 {"role": "user", "content": "What is 2+2?"}]})");
}

TEST(CanonicalJsonTest, SortsKeysAndNormalizesNumbers) {
  const json value =
      json::parse(R"({"b": [1.0, -0.0, 0.5, 1e21, 3], "a": {"y": true, "x": null}})");
  EXPECT_EQ(*CanonicalJson(value), R"({"a":{"x":null,"y":true},"b":[1,0,0.5,1e+21,3]})");
}

TEST(CanonicalJsonTest, EscapesOnlyWhatJsonRequires) {
  std::string out;
  AppendJsonString("q\"\\\n\x01 é", out);
  EXPECT_EQ(out, "\"q\\\"\\\\\\n\\u0001 é\"");
}

TEST(CanonicalJsonTest, EscapingMatchesReferenceAtEveryOffset) {
  // The escaper skips 8 clean bytes at a time; escapes must be found wherever they fall.
  const std::string alphabet[] = {"a", "Z", " ", "\"", "\\", "\n", "\t", "\x01", "\x1f", "é", "日"};
  uint32_t state = 12345;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text;
    const int length = trial % 70;
    for (int i = 0; i < length; ++i) {
      state = state * 1664525u + 1013904223u;
      // Mostly plain letters, sometimes a character that needs escaping.
      const uint32_t pick = (state >> 8) % 40;
      text += pick < 30 ? alphabet[pick % 2] : alphabet[pick - 29];
    }
    std::string ours;
    AppendJsonString(text, ours);
    EXPECT_EQ(ours, nlohmann::json(text).dump()) << "input: " << nlohmann::json(text).dump();
  }
}

TEST(CanonicalJsonTest, RejectsNonFiniteNumbers) {
  EXPECT_FALSE(CanonicalJson(json(std::numeric_limits<double>::infinity())).ok());
}

TEST(RequestKeyTest, Is32HexDigitsAndStable) {
  const std::string key = Key(Chat());
  EXPECT_EQ(key.size(), 32u);
  EXPECT_EQ(key.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(Key(Chat()), key);
}

TEST(RequestKeyTest, IgnoresFieldsThatDoNotChangeTheAnswer) {
  json noisy = Chat();
  noisy["stream"] = true;
  noisy["stream_options"] = {{"include_usage", true}};
  noisy["user"] = "u-42";
  noisy["metadata"] = {{"trace", "abc"}};
  noisy["timeout"] = 30;
  noisy["extra_headers"] = {{"X-Request-Id", "1"}};
  noisy["prompt_cache_key"] = "tenant-a";
  EXPECT_EQ(Key(noisy), Key(Chat()));
}

TEST(RequestKeyTest, EveryAnswerChangingFieldChangesTheKey) {
  const std::string base = Key(Chat());
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, json>>{{"model", "gpt-4o"},
                                                 {"temperature", 0.3},
                                                 {"top_p", 0.9},
                                                 {"seed", 7},
                                                 {"max_tokens", 10},
                                                 {"n", 2},
                                                 {"stop", {"\n"}},
                                                 {"tool_choice", "none"},
                                                 {"response_format", {{"type", "json_object"}}},
                                                 {"tools", json::array()},
                                                 {"some_future_field", 1}}) {
    json changed = Chat();
    changed[field] = value;
    EXPECT_NE(Key(changed), base) << field;
  }
  json other_message = Chat();
  other_message["messages"][1]["content"] = "What is 2+3?";
  EXPECT_NE(Key(other_message), base);
  json other_system = Chat();
  other_system["messages"][0]["content"] = "You are verbose.";
  EXPECT_NE(Key(other_system), base);
}

TEST(RequestKeyTest, NamespaceSeparatesTenants) {
  EXPECT_NE(Key(Chat(), "tenant-a"), Key(Chat(), "tenant-b"));
  EXPECT_NE(Key(Chat(), ""), Key(Chat(), "tenant-a"));
}

TEST(RequestKeyTest, KeyOrderAndIntegralFloatsDoNotMatter) {
  json a = json::parse(R"({"temperature": 1, "model": "m", "messages": []})");
  json b = json::parse(R"({"messages": [], "model": "m", "temperature": 1.0})");
  EXPECT_EQ(Key(a), Key(b));
}

TEST(RequestKeyTest, CacheControlAndSingleTextBlocksAreNormalized) {
  json plain = json::parse(R"({"model": "claude-sonnet-4-5", "max_tokens": 100,
    "system": "Be brief.", "tools": [{"name": "t", "input_schema": {"type": "object"}}],
    "messages": [{"role": "user", "content": "hi"}]})");
  json marked = json::parse(R"({"model": "claude-sonnet-4-5", "max_tokens": 100,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "tools": [{"name": "t", "input_schema": {"type": "object"},
               "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi",
                                               "cache_control": {"type": "ephemeral"}}]}]})");
  EXPECT_EQ(Key(plain), Key(marked));
}

TEST(RequestKeyTest, CacheControlInsideToolSchemasIsKept) {
  // A tool parameter that happens to be named cache_control is part of the schema.
  json a = json::parse(R"({"model": "m", "tools": [{"name": "t", "input_schema":
    {"properties": {"cache_control": {"type": "string"}}}}]})");
  json b = json::parse(R"({"model": "m", "tools": [{"name": "t", "input_schema":
    {"properties": {}}}]})");
  EXPECT_NE(Key(a), Key(b));
}

TEST(RequestKeyTest, RejectsNonObjects) {
  auto key = RequestKey(json::array({1, 2}), "");
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(key), HasSubstr("must be a JSON object"));
  json nan_request = Chat();
  nan_request["temperature"] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(Msg(RequestKey(nan_request, "")), HasSubstr("'temperature'"));
}

TEST(TokenEstimateTest, FamiliesFromModelNames) {
  EXPECT_EQ(FamilyForModel("gpt-4o-mini"), TokenizerFamily::kO200k);
  EXPECT_EQ(FamilyForModel("o3-mini"), TokenizerFamily::kO200k);
  EXPECT_EQ(FamilyForModel("openai/gpt-5"), TokenizerFamily::kO200k);
  EXPECT_EQ(FamilyForModel("gpt-6.1-terra"), TokenizerFamily::kO200k);
  EXPECT_EQ(FamilyForModel("gpt-4.1-mini"), TokenizerFamily::kO200k);
  EXPECT_EQ(FamilyForModel("gpt-4-1106-preview"), TokenizerFamily::kCl100k);
  EXPECT_EQ(FamilyForModel("gpt-3.5-turbo"), TokenizerFamily::kCl100k);
  EXPECT_EQ(FamilyForModel("claude-haiku-4-5"), TokenizerFamily::kClaude);
  EXPECT_EQ(FamilyForModel("gemini-2.5-flash"), TokenizerFamily::kGemini);
  EXPECT_EQ(FamilyForModel("mistral-small"), TokenizerFamily::kOther);
}

TEST(TokenEstimateTest, ScalesWithTextAndCountsPieces) {
  EXPECT_EQ(EstimateTextTokens("", TokenizerFamily::kO200k), 0);
  EXPECT_EQ(EstimateTextTokens("hello", TokenizerFamily::kO200k), 1);
  const std::string sentence = "The quick brown fox jumps over the lazy dog.";
  const int64_t one = EstimateTextTokens(sentence, TokenizerFamily::kO200k);
  EXPECT_GE(one, 9);  // o200k: 10
  EXPECT_LE(one, 12);
  std::string many = sentence;
  for (int i = 1; i < 100; ++i) many += " " + sentence;
  EXPECT_NEAR(EstimateTextTokens(many, TokenizerFamily::kO200k), 100 * one, 100 * one * 0.05);
  // Digits tokenize in groups of three.
  EXPECT_GT(EstimateTextTokens("123456789012", TokenizerFamily::kO200k), 3);
  // CJK: about one token per character or less, never zero.
  EXPECT_GE(EstimateTextTokens("今日は良い天気ですね", TokenizerFamily::kO200k), 5);
}

TEST(TokenEstimateTest, RequestAddsFramingToolsAndImages) {
  const json request = Chat();
  auto base = EstimateRequestTokens(request, TokenizerFamily::kO200k);
  ASSERT_TRUE(base.ok()) << base.status();
  // Two short messages: content (~10) plus framing (3 + 2 * 4).
  EXPECT_GE(*base, 15);
  EXPECT_LE(*base, 30);
  json with_image = request;
  with_image["messages"].push_back(json::parse(
      R"({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]})"));
  EXPECT_GE(*EstimateRequestTokens(with_image, TokenizerFamily::kO200k), *base + 765);
  json bad = request;
  bad["messages"] = "oops";
  EXPECT_THAT(Msg(EstimateRequestTokens(bad, TokenizerFamily::kO200k)),
              HasSubstr("'messages' must be a list"));
}

}  // namespace
}  // namespace thrifty::request
