// Prompt assembly (PromptBuilder), request layout and the prefix tracker.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>  // std::thread
#include <vector>

#include "nlohmann/json.hpp"
#include "test_util.h"
#include "thrifty/base/status_macros.h"
#include "thrifty/catalog/catalog.h"
#include "thrifty/prompt/clock.h"
#include "thrifty/prompt/layout.h"
#include "thrifty/prompt/prefix_tracker.h"
#include "thrifty/prompt/prompt_builder.h"

namespace thrifty::prompt {
namespace {

using ::testing::HasSubstr;
using ::thrifty::testing::Msg;
using json = nlohmann::json;

catalog::ModelSpec Spec(std::string name, std::string provider, double in, double cached, double w5,
                        double w1h) {
  catalog::ModelSpec s;
  s.name = std::move(name);
  s.provider = std::move(provider);
  s.input_per_mtok = in;
  s.output_per_mtok = in * 5;
  s.cached_input_per_mtok = cached;
  if (w5 > 0) s.cache_write_5m_per_mtok = w5;
  if (w1h > 0) s.cache_write_1h_per_mtok = w1h;
  return s;
}

json AnthropicRules() {
  return json::parse(R"({
    "mode": "explicit",
    "min_tokens": [{"models": ["claude-haiku*"], "tokens": 4096}, {"models": ["*"], "tokens": 1024}],
    "block_tokens": 1, "max_breakpoints": 4, "lookback_blocks": 20,
    "ttls": [{"name": "5m", "seconds": 300, "write_multiplier": 1.25},
             {"name": "1h", "seconds": 3600, "write_multiplier": 2.0}],
    "read_multiplier": 0.1, "source": "x", "read_on": "2026-11-22"})");
}

json OpenAIRules() {
  return json::parse(R"({
    "mode": "automatic", "min_tokens": [{"models": ["*"], "tokens": 1024}],
    "block_tokens": 128,
    "ttls": [{"name": "in_memory", "seconds": 600}, {"name": "24h", "seconds": 86400}],
    "read_multiplier": 0.1, "cache_key_field": "prompt_cache_key", "cache_key_rpm": 15,
    "source": "x", "read_on": "2026-11-22"})");
}

std::shared_ptr<const catalog::Catalog> TestCatalog() {
  std::vector<catalog::ProviderCacheRules> rules = {
      *catalog::ProviderCacheRulesFromJson("anthropic", AnthropicRules()),
      *catalog::ProviderCacheRulesFromJson("openai", OpenAIRules()),
  };
  auto c = catalog::Catalog::Create(
      {Spec("claude-sonnet-x", "anthropic", 3, 0.3, 3.75, 6),
       Spec("claude-haiku-x", "anthropic", 1, 0.1, 1.25, 2), Spec("gpt-x", "openai", 2, 0.2, 0, 0)},
      rules);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::make_shared<const catalog::Catalog>(*std::move(c));
}

// About `words` tokens of stable text.
std::string Words(int words, const std::string& seed = "alpha") {
  std::string out;
  for (int i = 0; i < words; ++i) out += seed + std::to_string(i % 97) + " ";
  return out;
}

json Tools(bool reversed) {
  json a = {{"name", "search"},
            {"description", "Search the docs"},
            {"input_schema", {{"type", "object"}, {"properties", {{"q", {{"type", "string"}}}}}}}};
  json b = {
      {"name", "fetch"},
      {"description", "Fetch a page"},
      {"input_schema", {{"properties", {{"url", {{"type", "string"}}}}}, {"type", "object"}}}};
  return reversed ? json::array({a, b}) : json::array({b, a});
}

// ------------------------------------------------------------------ rules --

TEST(ProviderRulesTest, MinimumByGlobFirstMatchWins) {
  auto rules = catalog::ProviderCacheRulesFromJson("anthropic", AnthropicRules());
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ(rules->MinTokensFor("claude-haiku-4-5"), 4096);
  EXPECT_EQ(rules->MinTokensFor("CLAUDE-SONNET-5"), 1024);
}

TEST(ProviderRulesTest, OpenAIHitsGrowIn128TokenStepsFrom1024) {
  auto rules = catalog::ProviderCacheRulesFromJson("openai", OpenAIRules());
  ASSERT_TRUE(rules.ok());
  EXPECT_EQ(rules->CachedFromMatched("gpt-x", 1023), 0);
  EXPECT_EQ(rules->CachedFromMatched("gpt-x", 1024), 1024);
  EXPECT_EQ(rules->CachedFromMatched("gpt-x", 1151), 1024);
  EXPECT_EQ(rules->CachedFromMatched("gpt-x", 1152), 1152);
}

TEST(ProviderRulesTest, UnknownFieldAndMissingLimitsAreErrors) {
  json bad = AnthropicRules();
  bad["max_breakpoint"] = 4;
  EXPECT_THAT(Msg(catalog::ProviderCacheRulesFromJson("anthropic", bad)),
              HasSubstr("unknown field 'max_breakpoint'"));
  bad = AnthropicRules();
  bad.erase("max_breakpoints");
  EXPECT_THAT(Msg(catalog::ProviderCacheRulesFromJson("anthropic", bad)),
              HasSubstr("providers.anthropic.max_breakpoints"));
}

TEST(ProviderRulesTest, CatalogFindsRulesByAliasAndRejectsDuplicates) {
  auto rules = *catalog::ProviderCacheRulesFromJson("anthropic", AnthropicRules());
  rules.aliases = {"bedrock"};
  auto c =
      catalog::Catalog::Create({Spec("claude-sonnet-x", "anthropic", 3, 0.3, 3.75, 6)}, {rules});
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->FindProviderRules("Bedrock"), nullptr);
  EXPECT_EQ(c->GetProviderRules("mistral").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(catalog::Catalog::Create({}, {rules, rules}).ok());
}

// ----------------------------------------------------------------- layout --

TEST(LayoutTest, AppendingMessagesKeepsEarlierPositionsAndHashes) {
  json a = {{"system", Words(300)}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  json b = a;
  b["messages"].push_back({{"role", "assistant"}, {"content", "hello"}});
  auto la = LayoutRequest(a, request::TokenizerFamily::kClaude, 7);
  auto lb = LayoutRequest(b, request::TokenizerFamily::kClaude, 7);
  ASSERT_TRUE(la.ok() && lb.ok());
  ASSERT_EQ(la->blocks.size() + 1, lb->blocks.size());
  for (size_t i = 0; i < la->blocks.size(); ++i) {
    EXPECT_EQ(la->blocks[i].chain, lb->blocks[i].chain);
    EXPECT_EQ(la->blocks[i].end_tokens, lb->blocks[i].end_tokens);
  }
  EXPECT_GT(la->chunks.size(), la->blocks.size());  // the long system text is cut in chunks
}

TEST(LayoutTest, CacheControlIsNotPartOfTheHash) {
  json a = {{"system", {{{"type", "text"}, {"text", "abc"}}}}};
  json b = {{"system",
             {{{"type", "text"}, {"text", "abc"}, {"cache_control", {{"type", "ephemeral"}}}}}}};
  auto la = LayoutRequest(a, request::TokenizerFamily::kClaude, 1);
  auto lb = LayoutRequest(b, request::TokenizerFamily::kClaude, 1);
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_EQ(la->blocks[0].chain, lb->blocks[0].chain);
  EXPECT_FALSE(la->blocks[0].breakpoint);
  EXPECT_TRUE(lb->blocks[0].breakpoint);
}

// ---------------------------------------------------------------- builder --

absl::StatusOr<Plan> AnthropicPlan(bool reversed_tools, int turns, PlanOptions options = {}) {
  auto b = PromptBuilder::Create(TestCatalog(), "anthropic", "claude-sonnet-x", options);
  if (!b.ok()) return b.status();
  THRIFTY_RETURN_IF_ERROR(b->AddTools(Tools(reversed_tools)));
  THRIFTY_RETURN_IF_ERROR(b->AddSystem("You are a careful assistant.\n" + Words(1500)));
  json history = json::array();
  for (int t = 0; t < turns; ++t) {
    history.push_back({{"role", "user"}, {"content", "question " + std::to_string(t)}});
    history.push_back({{"role", "assistant"}, {"content", "answer " + std::to_string(t)}});
  }
  THRIFTY_RETURN_IF_ERROR(b->AddHistory(history));
  THRIFTY_RETURN_IF_ERROR(b->AddUser("question " + std::to_string(turns)));
  return b->Build();
}

TEST(PromptBuilderTest, ToolsSortedAndStaticBytesIdenticalWhateverTheInputOrder) {
  auto p1 = AnthropicPlan(false, 1);
  auto p2 = AnthropicPlan(true, 3);
  ASSERT_TRUE(p1.ok() && p2.ok()) << p1.status() << p2.status();
  EXPECT_EQ(p1->request["tools"][0]["name"], "fetch");
  EXPECT_EQ(p1->request["tools"].dump(), p2->request["tools"].dump());
  EXPECT_EQ(p1->request["system"].dump(), p2->request["system"].dump());
}

TEST(PromptBuilderTest, AnthropicBreakpointsOnStaticPrefixAndTail) {
  auto plan = AnthropicPlan(false, 2);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->breakpoints.size(), 2u);
  EXPECT_EQ(plan->breakpoints[0].why, "static_prefix");
  EXPECT_EQ(plan->breakpoints[0].label, "system[0]");
  EXPECT_EQ(plan->breakpoints[1].why, "conversation_tail");
  EXPECT_TRUE(plan->request["system"][0].contains("cache_control"));
  const json& last = plan->request["messages"].back()["content"].back();
  EXPECT_EQ(last["cache_control"]["type"], "ephemeral");
  EXPECT_EQ(plan->cacheable_tokens, plan->breakpoints.back().tokens);
}

TEST(PromptBuilderTest, LongTtlWhenRequestsAreFurtherApartThanFiveMinutes) {
  PlanOptions options;
  options.request_interval_s = 900;
  auto plan = AnthropicPlan(false, 1, options);
  ASSERT_TRUE(plan.ok());
  ASSERT_FALSE(plan->breakpoints.empty());
  EXPECT_EQ(plan->breakpoints[0].ttl, "1h");
  EXPECT_EQ(plan->request["system"][0]["cache_control"]["ttl"], "1h");
}

TEST(PromptBuilderTest, NoBreakpointUnderTheMinimum) {
  auto b = PromptBuilder::Create(TestCatalog(), "anthropic", "claude-haiku-x");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->AddSystem(Words(300)).ok());  // far under Haiku's 4096
  ASSERT_TRUE(b->AddUser("hi").ok());
  auto plan = b->Build();
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->breakpoints.empty());
  EXPECT_EQ(plan->cacheable_tokens, 0);
}

TEST(PromptBuilderTest, AnchorsKeepLongHistoriesWithinTheLookback) {
  // 2 tools + 1 system block are static; messages start at block 3.
  for (int turns : {40, 41, 47}) {
    auto plan = AnthropicPlan(false, turns);
    ASSERT_TRUE(plan.ok());
    ASSERT_EQ(plan->breakpoints.size(), 4u);
    EXPECT_EQ(plan->breakpoints[0].why, "static_prefix");
    EXPECT_EQ(plan->breakpoints[1].why, "anchor");
    EXPECT_EQ(plan->breakpoints[2].why, "anchor");
    EXPECT_EQ(plan->breakpoints[3].why, "conversation_tail");
    for (int i : {1, 2}) {
      // Fixed multiples of 15 message blocks: the same positions on every turn.
      EXPECT_EQ((plan->breakpoints[i].block - 3 + 1) % 15, 0) << turns;
    }
    EXPECT_EQ(plan->breakpoints[2].block - plan->breakpoints[1].block, 15);
    EXPECT_LE(plan->breakpoints[3].block - plan->breakpoints[2].block, 20);
  }
}

TEST(PromptBuilderTest, OpenAICacheKeyStableAcrossTurnsAndSharded) {
  auto build = [](int turns, PlanOptions options) {
    auto b = PromptBuilder::Create(TestCatalog(), "openai", "gpt-x", options);
    EXPECT_TRUE(b.ok());
    EXPECT_TRUE(b->AddTools(Tools(turns % 2 == 0)).ok());
    EXPECT_TRUE(b->AddSystem(Words(800)).ok());
    json history = json::array();
    for (int t = 0; t < turns; ++t) history.push_back({{"role", "user"}, {"content", "q"}});
    EXPECT_TRUE(b->AddHistory(history).ok());
    EXPECT_TRUE(b->AddUser("now").ok());
    return *b->Build();
  };
  const Plan a = build(1, {});
  const Plan b = build(2, {});
  EXPECT_FALSE(a.cache_key.empty());
  EXPECT_EQ(a.cache_key, b.cache_key);
  EXPECT_EQ(a.request["prompt_cache_key"], a.cache_key);
  EXPECT_EQ(a.request["tools"][0]["type"], "function");
  EXPECT_EQ(a.request["tools"][0]["function"]["name"], "fetch");
  PlanOptions sharded;
  sharded.expected_rpm = 60;  // 4 shards of 15/min
  const Plan s = build(1, sharded);
  EXPECT_THAT(s.cache_key, HasSubstr(a.cache_key + "-"));
}

TEST(PromptBuilderTest, LintNamesSegmentAndTextAndCanMoveIt) {
  PlanOptions options;
  options.move_volatile = true;
  auto b = PromptBuilder::Create(TestCatalog(), "anthropic", "claude-sonnet-x", options);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->AddSystem("Be brief.\nToday is 2026-11-22T10:31:00Z.\nRequest "
                           "123e4567-e89b-12d3-a456-426614174000.\n" +
                           Words(1500))
                  .ok());
  ASSERT_TRUE(b->AddUser("hi").ok());
  auto plan = b->Build();
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->warnings.size(), 2u);
  EXPECT_EQ(plan->warnings[0].segment, "system[0]");
  EXPECT_EQ(plan->warnings[0].kind, "uuid");
  EXPECT_EQ(plan->warnings[1].text, "2026-11-22T10:31:00Z");
  EXPECT_TRUE(plan->warnings[1].moved);
  const std::string system = plan->request["system"][0]["text"];
  EXPECT_EQ(system.find("2026-11-22"), std::string::npos);
  const std::string first_user = plan->request["messages"][0]["content"][0]["text"];
  EXPECT_THAT(first_user, HasSubstr("Today is 2026-11-22T10:31:00Z."));
}

TEST(PromptBuilderTest, BadInputErrors) {
  auto cat = TestCatalog();
  EXPECT_EQ(PromptBuilder::Create(cat, "nope", "gpt-x").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(PromptBuilder::Create(cat, "openai", "gpt-nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(PromptBuilder::Create(cat, "anthropic", "gpt-x")), HasSubstr("openai model"));
  PlanOptions five;
  five.max_breakpoints = 5;
  EXPECT_THAT(Msg(PromptBuilder::Create(cat, "anthropic", "claude-sonnet-x", five)),
              HasSubstr("limit of 4"));
  auto b = PromptBuilder::Create(cat, "anthropic", "claude-sonnet-x");
  ASSERT_TRUE(b.ok());
  EXPECT_THAT(Msg(b->AddTools(json::array({{{"name", "x"}, {"input_schema", json::array()}}}))),
              HasSubstr("must be a JSON object"));
  ASSERT_TRUE(b->AddUser("hi").ok());
  const absl::Status late = b->AddSystem("late");
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(late), HasSubstr("after add_user"));
}

TEST(PromptBuilderTest, FromRequestCanonicalizesOpenAIToolCallArguments) {
  json request = json::parse(R"({
    "model": "gpt-x", "temperature": 0.2,
    "tools": [{"type": "function", "function": {"name": "zeta", "parameters": {"type": "object"}}},
              {"type": "function", "function": {"name": "alpha", "parameters": {"type": "object"}}}],
    "messages": [
      {"role": "system", "content": "sys"},
      {"role": "user", "content": "hi"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
         "function": {"name": "zeta", "arguments": "{ \"b\": 1,  \"a\": 2 }"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "ok"},
      {"role": "user", "content": "thanks"}]})");
  auto b = PromptBuilder::FromRequest(TestCatalog(), "openai", "gpt-x", request);
  ASSERT_TRUE(b.ok()) << b.status();
  auto plan = b->Build();
  ASSERT_TRUE(plan.ok()) << plan.status();
  const json& r = plan->request;
  EXPECT_EQ(r["temperature"], 0.2);
  EXPECT_EQ(r["tools"][0]["function"]["name"], "alpha");
  EXPECT_EQ(r["messages"][0]["content"], "sys");
  EXPECT_EQ(r["messages"][2]["tool_calls"][0]["function"]["arguments"], R"({"a":2,"b":1})");
  EXPECT_EQ(r["messages"][3]["role"], "tool");
  EXPECT_EQ(r["messages"].back()["content"], "thanks");
  EXPECT_TRUE(r.contains("prompt_cache_key"));
}

// ---------------------------------------------------------------- tracker --

json OpenAIRequest(int turns) {
  json messages = json::array({{{"role", "system"}, {"content", Words(1500)}}});
  for (int t = 0; t < turns; ++t) {
    messages.push_back({{"role", "user"}, {"content", "question " + std::to_string(t)}});
    messages.push_back({{"role", "assistant"}, {"content", Words(40, "ans")}});
  }
  messages.push_back({{"role", "user"}, {"content", "last"}});
  return {{"model", "gpt-x"}, {"messages", messages}};
}

TEST(PrefixTrackerTest, OpenAIPrefixHitRoundedToRules) {
  auto clock = std::make_shared<ManualClock>(1000);
  PrefixTracker tracker(TestCatalog(), clock);
  auto cold = tracker.Predict("", "gpt-x", OpenAIRequest(1));
  ASSERT_TRUE(cold.ok()) << cold.status();
  EXPECT_EQ(cold->cached_tokens, 0);
  EXPECT_EQ(cold->reason, "cold");
  ASSERT_TRUE(tracker.Observe("", "gpt-x", OpenAIRequest(1), {}).ok());
  clock->Advance(10);
  auto warm = tracker.Predict("openai", "gpt-x", OpenAIRequest(2));
  ASSERT_TRUE(warm.ok());
  EXPECT_EQ(warm->reason, "hit");
  EXPECT_GE(warm->cached_tokens, 1024);
  EXPECT_EQ((warm->cached_tokens - 1024) % 128, 0);
  EXPECT_LE(warm->cached_tokens, warm->matched_tokens);
  EXPECT_GT(warm->matched_tokens + 128, warm->matched_tokens);
  // The cached prefix covers the first turn but not the changed last message.
  EXPECT_THAT(warm->segment, HasSubstr("messages["));
  clock->Advance(601);
  auto lapsed = tracker.Predict("openai", "gpt-x", OpenAIRequest(2));
  ASSERT_TRUE(lapsed.ok());
  EXPECT_EQ(lapsed->cached_tokens, 0);
  EXPECT_EQ(lapsed->reason, "ttl_lapsed");
}

TEST(PrefixTrackerTest, OpenAIExplainsWhereThePrefixChanged) {
  PrefixTracker tracker(TestCatalog(), std::make_shared<ManualClock>(0));
  ASSERT_TRUE(tracker.Observe("", "gpt-x", OpenAIRequest(1), {}).ok());
  json changed = OpenAIRequest(1);
  changed["messages"][0]["content"] = "Now: 10:31. " + Words(1500);
  auto p = tracker.Predict("", "gpt-x", changed);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->reason, "prefix_changed");
  EXPECT_EQ(p->segment, "messages[0].content");
  // Another prompt_cache_key is another namespace: cold.
  json keyed = OpenAIRequest(1);
  keyed["prompt_cache_key"] = "other";
  EXPECT_EQ(tracker.Predict("", "gpt-x", keyed)->reason, "cold");
}

TEST(PrefixTrackerTest, AnthropicReadsEarlierBreakpointWrites) {
  auto clock = std::make_shared<ManualClock>(0);
  auto catalog = TestCatalog();
  PrefixTracker tracker(catalog, clock);
  auto turn1 = AnthropicPlan(false, 1);
  auto turn2 = AnthropicPlan(false, 2);
  ASSERT_TRUE(turn1.ok() && turn2.ok());
  auto first = tracker.Predict("", "claude-sonnet-x", turn1->request);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->cached_tokens, 0);
  EXPECT_EQ(first->write_5m_tokens, turn1->breakpoints.back().tokens);
  ASSERT_TRUE(tracker.Observe("", "claude-sonnet-x", turn1->request, {}).ok());
  clock->Advance(30);
  auto second = tracker.Predict("", "claude-sonnet-x", turn2->request);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->reason, "hit");
  // Turn 1's tail write is found within the lookback of turn 2's tail.
  EXPECT_EQ(second->cached_tokens, turn1->breakpoints.back().tokens);
  EXPECT_EQ(second->write_5m_tokens, turn2->breakpoints.back().tokens - second->cached_tokens);
  // Without breakpoints Anthropic caches nothing.
  json bare = turn2->request;
  bare["system"][0].erase("cache_control");
  bare["messages"].back()["content"].back().erase("cache_control");
  EXPECT_EQ(tracker.Predict("", "claude-sonnet-x", bare)->reason, "no_breakpoint");
  // Past the TTL.
  clock->Advance(400);
  EXPECT_EQ(tracker.Predict("", "claude-sonnet-x", turn2->request)->reason, "ttl_lapsed");
}

TEST(PrefixTrackerTest, ReconcilesAndBoundsMemory) {
  PrefixTrackerOptions options;
  options.max_entries = 200;
  auto clock = std::make_shared<ManualClock>(0);
  PrefixTracker tracker(TestCatalog(), clock, options);
  for (int i = 0; i < 30; ++i) {
    json r = OpenAIRequest(1);
    r["messages"][0]["content"] = Words(600, "s" + std::to_string(i));
    cost::Usage reported;
    reported.cached_input_tokens = 0;
    ASSERT_TRUE(tracker.Observe("", "gpt-x", r, reported).ok());
    clock->Advance(1);
  }
  const TrackerStats s = tracker.stats();
  EXPECT_EQ(s.observations, 30);
  EXPECT_LE(s.entries, 200u);
  EXPECT_GT(s.evictions, 0);
  EXPECT_EQ(s.exact, 30);
}

TEST(PrefixTrackerTest, PredictCachedTokensSeamNeverThrows) {
  auto catalog = TestCatalog();
  PrefixTracker tracker(catalog, std::make_shared<ManualClock>(0));
  const request::CachedTokensPredictor& seam = tracker;
  EXPECT_EQ(seam.PredictCachedTokens(*catalog->Find("gpt-x"), json("not a request")), 0);
  ASSERT_TRUE(tracker.Observe("", "gpt-x", OpenAIRequest(1), {}).ok());
  EXPECT_GE(seam.PredictCachedTokens(*catalog->Find("gpt-x"), OpenAIRequest(2)), 1024);
}

TEST(PrefixTrackerTest, ConcurrentPredictAndObserve) {
  PrefixTrackerOptions options;
  options.max_entries = 500;  // small, so eviction runs while others read
  auto catalog = TestCatalog();
  PrefixTracker tracker(catalog, std::make_shared<ManualClock>(0), options);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&tracker, &catalog, t] {
      for (int i = 0; i < 25; ++i) {
        json r = OpenAIRequest(i % 3);
        r["messages"][0]["content"] = Words(300, "t" + std::to_string(t));
        if (t % 2 == 0) {
          EXPECT_TRUE(tracker.Observe("", "gpt-x", r, {}).ok());
        } else {
          EXPECT_GE(tracker.PredictCachedTokens(*catalog->Find("gpt-x"), r), 0);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(tracker.stats().observations, 50);
  EXPECT_LE(tracker.size(), 500u);
}

}  // namespace
}  // namespace thrifty::prompt
