#include "thrifty/replay/replay.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>  // getpid

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../../cpp/src/replay/simdjson_view.h"
#include "../../cpp/src/replay/trace_line.h"
#include "nlohmann/json.hpp"
#include "test_util.h"
#include "thrifty/replay/line_reader.h"
#include "thrifty/replay/prefix_cache_sim.h"
#include "thrifty/replay/sim_clock.h"
#include "thrifty/replay/trace_record.h"
#include "thrifty/request/request_key.h"

namespace thrifty::replay {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using thrifty::testing::Msg;

// Two models whose prices make the arithmetic easy to check by hand.
catalog::Catalog TestCatalog() {
  catalog::ModelSpec big;
  big.name = "big";
  big.provider = "openai";
  big.input_per_mtok = 10.0;
  big.output_per_mtok = 30.0;
  big.cached_input_per_mtok = 1.0;
  big.quality = {{"chat", 0.95}};
  catalog::ModelSpec small;
  small.name = "small";
  small.provider = "openai";
  small.input_per_mtok = 1.0;
  small.output_per_mtok = 2.0;
  small.cached_input_per_mtok = 0.1;
  small.quality = {{"chat", 0.85}};
  return *catalog::Catalog::Create({big, small});
}

class TempFile {
 public:
  explicit TempFile(const std::vector<json>& lines) {
    static std::atomic<int> counter{0};
    path_ = ::testing::TempDir() + "/replay_test_" + std::to_string(getpid()) + "_" +
            std::to_string(counter++) + ".jsonl";
    std::ofstream out(path_);
    for (const json& line : lines) out << line.dump() << "\n";
  }
  struct Raw {};
  TempFile(Raw, const std::string& text) {
    static std::atomic<int> counter{0};
    path_ = ::testing::TempDir() + "/replay_test_raw_" + std::to_string(getpid()) + "_" +
            std::to_string(counter++) + ".jsonl";
    std::ofstream out(path_);
    out << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

json Call(double ts, const std::string& question, const std::string& model, int64_t prompt,
          int64_t output, json labels = nullptr, const std::string& system = "be brief") {
  json line = {
      {"id", question + "@" + std::to_string(ts)},
      {"ts", ts},
      {"request",
       {{"model", model},
        {"messages",
         {{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", question}}}}}},
      {"response",
       {{"provider", "openai"},
        {"usage", {{"prompt_tokens", prompt}, {"completion_tokens", output}}}}}};
  if (!labels.is_null()) line["labels"] = labels;
  return line;
}

ReplayOptions Options() {
  ReplayOptions options;
  options.semantic = false;
  options.prefix_cache = false;
  options.threads = 2;
  return options;
}

TEST(SimClockTest, NeverGoesBackwards) {
  SimClock clock(10.0);
  EXPECT_TRUE(clock.Advance(20.0));
  EXPECT_FALSE(clock.Advance(15.0));
  EXPECT_DOUBLE_EQ(clock.NowSeconds(), 20.0);
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(20));
  EXPECT_EQ(clock.Function()(), absl::FromUnixSeconds(20));
}

TEST(ReplayTest, SavingsArithmeticOnAHandMadeTrace) {
  const json labels_easy = {{"big", {{"quality", 0.9}, {"output_tokens", 100}}},
                            {"small", {{"quality", 0.85}, {"output_tokens", 80}}}};
  const json labels_hard = {{"big", {{"quality", 0.9}, {"output_tokens", 100}}},
                            {"small", {{"quality", 0.5}, {"output_tokens", 80}}}};
  TempFile trace(
      std::vector<json>{Call(0, "what is two plus two", "big", 1000, 100, labels_easy),
                        Call(10, "what is two plus two", "big", 1000, 100, labels_easy),
                        Call(20, "prove the riemann hypothesis", "big", 1000, 100, labels_hard)});
  const catalog::Catalog catalog = TestCatalog();
  auto result = Replay(trace.path(), catalog, Options());
  ASSERT_TRUE(result.ok()) << result.status();
  const json& r = *result;
  // Baseline: 3 x (1000 * $10 + 100 * $30) / 1M = 3 x 0.013.
  EXPECT_NEAR(r["baseline_cost_usd"].get<double>(), 0.039, 1e-12);
  // Policy: call 1 on small (1000 * $1 + 80 * $2) / 1M, call 2 from the exact cache, call 3 on
  // big (small's labelled quality 0.5 is under the 0.8 threshold).
  EXPECT_NEAR(r["cost_usd"].get<double>(), 0.00116 + 0.013, 1e-12);
  EXPECT_NEAR(r["savings_by_lever"]["exact"].get<double>(), 0.013, 1e-12);
  EXPECT_NEAR(r["savings_by_lever"]["routing"].get<double>(), 0.013 - 0.00116, 1e-12);
  EXPECT_NEAR(r["savings_by_lever"]["semantic"].get<double>(), 0.0, 1e-12);
  EXPECT_NEAR(r["savings_by_lever"]["prefix_cache"].get<double>(), 0.0, 1e-12);
  EXPECT_EQ(r["exact_hits"], 1);
  EXPECT_EQ(r["routed_requests"], 1);
  // Served quality: 0.85 (small), 0.85 (the cached answer of small), 0.9 (big).
  EXPECT_NEAR(r["quality_retained"].get<double>(), (0.85 + 0.85 + 0.9) / 2.7, 1e-12);
  EXPECT_EQ(r["quality_source"], "labels");
  EXPECT_EQ(r["model_mix"]["small"]["requests"], 1);
  EXPECT_EQ(r["model_mix"]["big"]["requests"], 1);
  EXPECT_EQ(r["model_mix"]["(exact cache)"]["requests"], 1);
}

TEST(ReplayTest, RecordsEveryCallIntoTheLedgerOnTraceTime) {
  const json labels_easy = {{"big", {{"quality", 0.9}, {"output_tokens", 100}}},
                            {"small", {{"quality", 0.85}, {"output_tokens", 80}}}};
  const json labels_hard = {{"big", {{"quality", 0.9}, {"output_tokens", 100}}},
                            {"small", {{"quality", 0.5}, {"output_tokens", 80}}}};
  std::vector<json> lines = {
      Call(0, "what is two plus two", "big", 1000, 100, labels_easy),
      Call(10, "what is two plus two", "big", 1000, 100, labels_easy),
      Call(20, "prove the riemann hypothesis", "big", 1000, 100, labels_hard)};
  lines[0]["tags"] = {{"customer", "acme"}, {"feature", "search"}, {"difficulty", 0.3}};
  lines[1]["tags"] = {{"customer", "acme"}, {"feature", "search"}};
  lines[2]["tags"] = {{"customer", "zeta"}, {"feature", "chat"}};
  TempFile trace(lines);
  auto catalog = std::make_shared<const catalog::Catalog>(TestCatalog());
  auto ledger = cost::Ledger::Create(catalog);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  cost::BudgetSpec budget;
  budget.tag = "customer";
  budget.value = "zeta";
  budget.limit_usd = 0.01;
  budget.hard = true;
  ASSERT_TRUE((*ledger)->AddBudget(budget).ok());
  ReplayOptions options = Options();
  options.ledger = ledger->get();
  auto result = Replay(trace.path(), *catalog, options);
  ASSERT_TRUE(result.ok()) << result.status();
  const json snap = (*ledger)->Snapshot();
  EXPECT_EQ(snap["calls"], 3);
  EXPECT_NEAR(snap["total_cost_usd"].get<double>(), (*result)["cost_usd"].get<double>(), 1e-9);
  EXPECT_NEAR(snap["by_tag"]["customer"]["acme"]["cost_usd"].get<double>(), 0.00116, 1e-9);
  EXPECT_NEAR(snap["by_tag"]["feature"]["chat"]["cost_usd"].get<double>(), 0.013, 1e-9);
  EXPECT_FALSE(snap["by_tag"].contains("difficulty"));  // only string-valued tags
  EXPECT_EQ(snap["by_model"]["small"]["calls"], 1);
  EXPECT_EQ(snap["by_model"]["small"]["input_tokens"], 1000);
  EXPECT_EQ(snap["by_model"]["small"]["output_tokens"], 80);
  EXPECT_EQ(snap["total"]["cache"]["exact"], 1);
  EXPECT_EQ(snap["total"]["cache"]["miss"], 2);
  EXPECT_NEAR(snap["total"]["savings_usd"]["exact_cache"].get<double>(), 0.013, 1e-9);
  // zeta's one call (0.013 at ts 20) crosses its $0.01 budget: the alert is at trace time.
  const std::vector<cost::Alert> alerts = (*ledger)->Alerts();
  ASSERT_FALSE(alerts.empty());
  EXPECT_EQ(alerts.back().kind, "budget");
  EXPECT_EQ(alerts.back().value, "zeta");
  EXPECT_DOUBLE_EQ(alerts.back().threshold, 1.0);
  EXPECT_DOUBLE_EQ(alerts.back().ts, 20.0);
}

TEST(ReplayTest, ExactCacheTtlRunsOnTheTraceClock) {
  TempFile trace(std::vector<json>{Call(1000, "q", "big", 10, 10), Call(1050, "q", "big", 10, 10),
                                   Call(1200, "q", "big", 10, 10), Call(1250, "q", "big", 10, 10)});
  ReplayOptions options = Options();
  options.exact_ttl_seconds = 100;
  options.routing = RoutingMode::kKeep;
  auto result = Replay(trace.path(), TestCatalog(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  // Stored at 1000 (expires 1100): hit at 1050, miss at 1200 (stored again), hit at 1250.
  EXPECT_EQ((*result)["exact_hits"], 2);
  EXPECT_EQ((*result)["stats"]["exact_cache"]["expirations"], 1);
}

TEST(ReplayTest, PrefixCacheTtlRunsOnTheTraceClock) {
  const std::string system(8000, 'x');  // ~1,000+ tokens of static system prompt
  std::string long_system;
  for (int i = 0; i < 700; ++i) long_system += "policy rule number " + std::to_string(i) + ". ";
  TempFile trace(
      std::vector<json>{Call(0, "first question", "big", 3000, 10, nullptr, long_system),
                        Call(100, "second question", "big", 3000, 10, nullptr, long_system),
                        Call(1000, "third question", "big", 3000, 10, nullptr, long_system)});
  ReplayOptions options = Options();
  options.exact = false;
  options.routing = RoutingMode::kKeep;
  options.prefix_cache = true;
  options.prefix_rules.ttl_seconds = 300;
  auto result = Replay(trace.path(), TestCatalog(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  const json& r = *result;
  // Only the second call finds the system prompt warm (100 s after the first); the third comes
  // 900 s later, after the 300 s TTL.
  const int64_t cached = r["cached_prompt_tokens_policy"].get<int64_t>();
  EXPECT_GT(cached, 1024);
  EXPECT_LT(cached, 3000);
  EXPECT_EQ(cached % 128, 0);
  // The logged calls had no cached tokens, so the lever saves (10 - 1) $/M on them.
  EXPECT_NEAR(r["savings_by_lever"]["prefix_cache"].get<double>(), cached * 9.0 / 1e6, 1e-12);
  EXPECT_NEAR(r["savings_usd"].get<double>(), cached * 9.0 / 1e6, 1e-12);
}

TEST(ReplayTest, SemanticHitsAreAuditedAndCheckedAgainstIntents) {
  json a = Call(0, "How do I reset my password?", "big", 100, 10);
  a["tags"] = {{"intent", "reset"}};
  json b = Call(5, "how do I reset my password", "big", 100, 10);
  b["tags"] = {{"intent", "reset"}};
  json c = Call(6, "How do I reset my password?!", "big", 100, 10);
  c["tags"] = {{"intent", "other"}};
  c["request"]["temperature"] = 0;  // a different context: never answered from a or b
  json d = Call(7, "How do I reset my password please", "big", 100, 10);
  d["tags"] = {{"intent", "change"}};
  TempFile trace(std::vector<json>{a, b, c, d});
  ReplayOptions options = Options();
  options.semantic = true;
  options.semantic_threshold = 0.8;
  options.routing = RoutingMode::kKeep;
  auto result = Replay(trace.path(), TestCatalog(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  const json& r = *result;
  EXPECT_EQ(r["exact_hits"], 0);
  EXPECT_EQ(r["semantic_hits"], 2);  // b and d; c is in its own context
  EXPECT_EQ(r["semantic_false_hits"], 1);
  ASSERT_EQ(r["audit_sample"].size(), 2u);
  EXPECT_EQ(r["audit_sample"][0]["matched_query"], "How do I reset my password?");
  EXPECT_EQ(r["audit_sample"][0]["same_intent"], true);
  EXPECT_EQ(r["audit_sample"][1]["same_intent"], false);
}

// Lookups made ahead on the workers, corrected for what was inserted since, must give what
// looking up in trace order gives -- including when entries expire, are evicted or replaced in
// between (the flat index below 2,048 entries is exact, so the two runs must agree exactly).
TEST(ReplayTest, SemanticLookaheadGivesTheResultsOfLookingUpInOrder) {
  const std::vector<std::string> questions = {"how do i reset my password",
                                              "how can i reset my password",
                                              "reset my password please",
                                              "what is the refund policy",
                                              "what's your refund policy",
                                              "how do i cancel my order",
                                              "cancel my order",
                                              "where is my package",
                                              "where is my parcel",
                                              "how do i change my email address"};
  std::vector<json> lines;
  for (int i = 0; i < 3000; ++i) {
    std::string q = questions[(i * 7 + i / 13) % questions.size()];
    if (i % 5 != 0) q += " " + std::to_string(i % 41);
    lines.push_back(Call(i * 10.0, q, i % 4 ? "big" : "small", 100, 20,
                         {{"small", {{"quality", (i % 10) / 10.0}, {"output_tokens", 7}}}}));
  }
  TempFile trace(lines);
  const catalog::Catalog catalog = TestCatalog();
  for (const std::optional<size_t> max_entries :
       {std::optional<size_t>(), std::optional<size_t>(40)}) {
    for (const std::optional<double> ttl :
         {std::optional<double>(), std::optional<double>(900.0)}) {
      ReplayOptions ahead = Options();
      ahead.semantic = true;
      ahead.semantic_threshold = 0.75;
      ahead.semantic_max_entries = max_entries;
      ahead.semantic_ttl_seconds = ttl;
      ahead.batch_size = 16;  // many batches in flight: lookaheads far ahead of the simulation
      ahead.max_batches_in_flight = 12;
      ReplayOptions in_order = ahead;
      in_order.semantic_lookahead = false;
      auto a = Replay(trace.path(), catalog, ahead);
      auto b = Replay(trace.path(), catalog, in_order);
      ASSERT_TRUE(a.ok()) << a.status();
      ASSERT_TRUE(b.ok()) << b.status();
      const std::string where = "max_entries " + std::to_string(max_entries.value_or(0)) +
                                ", ttl " + std::to_string(ttl.value_or(0));
      EXPECT_GT((*a)["semantic_hits"].get<int64_t>(), 100) << where;
      for (const char* key : {"exact_hits", "semantic_hits", "cost_usd", "savings_by_lever",
                              "model_mix", "quality_retained", "audit_sample"}) {
        EXPECT_EQ((*a)[key], (*b)[key]) << key << " with " << where;
      }
      EXPECT_GT((*a)["semantic_lookahead"]["used"].get<int64_t>(), 0) << where;
      EXPECT_EQ((*b)["semantic_lookahead"]["used"], 0) << where;
      for (const char* key : {"entries", "evictions", "expirations"}) {
        EXPECT_EQ((*a)["stats"]["semantic_cache"][key], (*b)["stats"]["semantic_cache"][key])
            << key << " with " << where;
      }
      if (max_entries && !ttl) {  // evictions: lookaheads made before one are redone
        EXPECT_GT((*a)["semantic_lookahead"]["redone"].get<int64_t>(), 0) << where;
        EXPECT_GT((*a)["stats"]["semantic_cache"]["evictions"].get<int64_t>(), 0) << where;
      }
      if (ttl) {
        EXPECT_GT((*a)["stats"]["semantic_cache"]["expirations"].get<int64_t>(), 0) << where;
      }
    }
  }
}

TEST(ReplayTest, PipelineSettingsDoNotChangeTheResult) {
  std::vector<json> lines;
  for (int i = 0; i < 500; ++i) {
    lines.push_back(Call(i, "question " + std::to_string(i % 37), i % 3 ? "big" : "small", 50 + i,
                         20, {{"small", {{"quality", (i % 10) / 10.0}, {"output_tokens", 7}}}}));
  }
  TempFile trace(lines);
  const catalog::Catalog catalog = TestCatalog();
  ReplayOptions wide = Options();
  wide.semantic = true;
  ReplayOptions narrow = wide;  // the smallest memory footprint: one batch of 2 in flight
  narrow.batch_size = 2;
  narrow.max_batches_in_flight = 1;
  narrow.threads = 1;
  auto a = Replay(trace.path(), catalog, wide);
  auto b = Replay(trace.path(), catalog, narrow);
  ASSERT_TRUE(a.ok() && b.ok());
  for (const char* key : {"requests", "exact_hits", "semantic_hits", "routed_requests"}) {
    EXPECT_EQ((*a)[key], (*b)[key]) << key;
  }
  EXPECT_DOUBLE_EQ((*a)["cost_usd"].get<double>(), (*b)["cost_usd"].get<double>());
  EXPECT_EQ((*a)["requests"], 500);
  EXPECT_EQ((*b)["stats"]["max_batches_in_flight"], 1);

  narrow.limit = 123;
  narrow.semantic_max_entries = 5;
  auto c = Replay(trace.path(), catalog, narrow);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)["requests"], 123);
  EXPECT_LE((*c)["stats"]["semantic_cache"]["entries"].get<int64_t>(), 5);
}

TEST(ReplayTest, BadLinesNameTheFileAndLine) {
  TempFile trace(TempFile::Raw{},
                 Call(0, "q", "big", 1, 1).dump() + "\n\n{\"ts\": 1, \"request\": {}}\n");
  auto result = Replay(trace.path(), TestCatalog(), Options());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(result), HasSubstr(trace.path() + ":3: request.model: missing"));

  ReplayOptions skip = Options();
  skip.skip_invalid = true;
  auto skipped = Replay(trace.path(), TestCatalog(), skip);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ((*skipped)["requests"], 1);
  EXPECT_EQ((*skipped)["invalid_lines"], 1);

  auto missing = Replay("/nonexistent/trace.jsonl", TestCatalog(), Options());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST(TraceRecordTest, ParsesAndChecksFields) {
  auto ok = ParseTraceRecord(
      R"({"ts": 5, "namespace": "t", "request": {"model": "claude-x", "system": "s",)"
      R"( "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},)"
      R"( "response": {"usage": {"input_tokens": 3, "output_tokens": 4}},)"
      R"( "labels": {"m": {"quality": 0.5, "output_tokens": 9, "cost_usd": 0.1}}})",
      "t.jsonl:1");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->provider, "anthropic");
  EXPECT_EQ(ok->usage->output_tokens, 4);
  EXPECT_EQ(FinalUserText(ok->request), "hi");
  ASSERT_NE(ok->Label("m"), nullptr);
  EXPECT_EQ(*ok->Label("m")->output_tokens, 9);

  EXPECT_THAT(Msg(ParseTraceRecord("{", "f:2")), HasSubstr("f:2: malformed JSON"));
  EXPECT_THAT(Msg(ParseTraceRecord("[]", "f:3")), HasSubstr("f:3: a trace line must be"));
  EXPECT_THAT(Msg(ParseTraceRecord(R"({"request": {}})", "f:4")), HasSubstr("f:4: ts: missing"));
  EXPECT_THAT(
      Msg(ParseTraceRecord(
          R"({"ts": 1, "request": {"model": "m", "messages": []}, "labels": {"m": {"quality": 2}}})",
          "f:5")),
      HasSubstr("f:5: labels.m.quality: expected a number in [0, 1], got 2"));
  EXPECT_THAT(Msg(ParseTraceRecord(R"({"ts": -1, "request": {}})", "f:6")),
              HasSubstr("f:6: ts: expected a finite number"));
}

TEST(LineReaderTest, StreamsLinesLongerThanTheBuffer) {
  const std::string longline(10000, 'a');
  TempFile file(TempFile::Raw{}, "one\r\n" + longline + "\nlast");
  auto reader = LineReader::Open(file.path(), 16);
  ASSERT_TRUE(reader.ok());
  std::string line;
  std::vector<std::string> lines;
  while (*(*reader)->Next(line)) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "one");
  EXPECT_EQ(lines[1], longline);
  EXPECT_EQ(lines[2], "last");
  EXPECT_EQ((*reader)->bytes_read(), (*reader)->file_size());
}

TEST(PrefixCacheSimTest, LongestWarmPrefixWithinTtl) {
  PrefixCacheSim sim({.min_cacheable_tokens = 1024, .block_tokens = 128, .ttl_seconds = 300});
  std::vector<PrefixPoint> a = {{1, 1500}, {2, 1700}, {3, 2000}};
  std::vector<PrefixPoint> b = {{1, 1500}, {2, 1700}, {9, 2100}};
  EXPECT_EQ(sim.CachedTokens(0, b, 0.0), 0);
  sim.Observe(0, a, 0.0);
  EXPECT_EQ(sim.CachedTokens(0, b, 10.0), 1664);  // 1700 rounded down to 128s
  EXPECT_EQ(sim.CachedTokens(1, b, 10.0), 0);     // another model
  EXPECT_EQ(sim.CachedTokens(0, b, 301.0), 0);    // expired
}

// A quality model that rates "small" good only on questions that say "easy", and counts the
// calls made on the thread that created it (Replay's simulation runs on the calling thread).
class EasyModel final : public QualityModel {
 public:
  std::string name() const override { return "easy"; }
  const std::vector<std::string>& models() const override { return models_; }
  absl::Status Predict(std::span<const json> requests, std::span<double> quality,
                       std::span<double> output_tokens) const override {
    if (std::this_thread::get_id() == creator_) calls_on_creator.fetch_add(1);
    for (size_t i = 0; i < requests.size(); ++i) {
      const bool easy = requests[i].dump().find("easy") != std::string::npos;
      quality[2 * i] = 0.95;  // big
      quality[2 * i + 1] = easy ? 0.9 : 0.1;
      output_tokens[2 * i] = output_tokens[2 * i + 1] = 10;
    }
    return absl::OkStatus();
  }
  mutable std::atomic<int> calls_on_creator{0};

 private:
  std::vector<std::string> models_ = {"big", "small"};
  std::thread::id creator_ = std::this_thread::get_id();
};

TEST(ReplayTest, ARequestTheWorkersTookForAnExactHitIsStillRoutedByTheModel) {
  // One batch of one line in flight: when a worker prepares the last line, the first one's
  // answer is in the exact cache, so the worker skips the model; at the last line's time the
  // entry has expired, so the simulation thread asks the model itself.
  TempFile trace(std::vector<json>{
      Call(0, "an easy one", "big", 100, 10), Call(1, "a hard one", "big", 100, 10),
      Call(2, "another hard one", "big", 100, 10), Call(100, "an easy one", "big", 100, 10)});
  auto model = std::make_shared<EasyModel>();
  ReplayOptions options = Options();
  options.routing = RoutingMode::kModel;
  options.model = model;
  options.exact_ttl_seconds = 50;
  options.batch_size = 1;
  options.max_batches_in_flight = 1;
  options.threads = 1;
  auto result = Replay(trace.path(), TestCatalog(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ((*result)["exact_hits"], 0);
  EXPECT_EQ((*result)["model_mix"]["small"]["requests"], 2);
  EXPECT_EQ((*result)["model_mix"]["big"]["requests"], 2);
  EXPECT_EQ(model->calls_on_creator.load(), 1);  // the last line, on the simulation thread
}

// The replay reads requests from simdjson's DOM; its canonical form must be byte for byte what
// request::CanonicalRequest writes from nlohmann's, or replay keys would not be production keys.
TEST(TraceLineTest, CanonicalRequestFromSimdjsonMatchesTheNlohmannPath) {
  const std::vector<std::string> requests = {
      R"({"model": "m", "messages": [{"role": "user", "content": "hi"}]})",
      R"({"stream": true, "user": "u", "metadata": {"a": 1}, "model": "m", "temperature": 1.0,)"
      R"( "top_p": -0, "seed": 18446744073709551615, "n": 1e2, "stop": ["\n", "\u00e9\ud83d\ude00"],)"
      R"( "messages": [{"role": "user", "content": [{"type": "text", "text": "hi",)"
      R"( "cache_control": {"type": "ephemeral"}}]}]})",
      R"({"model": "claude-x", "system": [{"type": "text", "text": "s", "cache_control": {"type": )"
      R"("ephemeral"}}, {"type": "text", "text": "t"}], "tools": [{"name": "f", "input_schema": )"
      R"({"type": "object", "z": 1, "a": [1.5, 2.25e-3]}, "cache_control": {"type": "ephemeral"}}],)"
      R"( "messages": [{"content": "q", "role": "user"}, {"role": "assistant", "content": )"
      R"([{"type": "tool_use", "id": "1", "name": "f", "input": {"b": null, "a": false}}]},)"
      R"( {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "1", "content": "r"}]}]})",
      R"({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": "x"}]}],)"
      R"( "messages": "not a list", "tools": {"not": "a list"}})",
      R"({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"},)"
      R"( {"type": "image_url", "image_url": {"url": "data:..."}}]}], "zz": {"y": [], "x": {}}})",
  };
  internal::LineParser parser;
  for (const std::string& text : requests) {
    const json nl = json::parse(text);
    auto expected = request::CanonicalRequest(nl);
    ASSERT_TRUE(expected.ok()) << text;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parser.parse(text).get(doc), simdjson::SUCCESS) << text;
    std::string got;
    ASSERT_TRUE(
        request::internal::AppendCanonicalRequest<internal::SimdjsonView>(doc, got, -1).ok());
    EXPECT_EQ(got, *expected) << text;
    EXPECT_EQ(internal::FinalUserText(doc), FinalUserText(nl)) << text;
    EXPECT_EQ(internal::ToNlohmann(doc), nl) << text;
    EXPECT_EQ(internal::ToNlohmann(doc).dump(), nl.dump()) << text;  // same number types too

    // The context key: the final message written with its content blanked.
    json blanked = nl;
    if (blanked["messages"].is_array()) blanked["messages"].back()["content"] = "";
    auto expected_context = request::CanonicalRequest(blanked);
    ASSERT_TRUE(expected_context.ok());
    std::string context;
    const int64_t last =
        nl["messages"].is_array() ? static_cast<int64_t>(nl["messages"].size()) - 1 : -1;
    ASSERT_TRUE(
        request::internal::AppendCanonicalRequest<internal::SimdjsonView>(doc, context, last).ok());
    if (last >= 0) {
      EXPECT_EQ(context, *expected_context) << text;
    }
  }

  // A key given twice: reported, so the caller can read the line as nlohmann does.
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parser
                .parse(std::string(R"({"model": "m", "messages": [{"role": "user", )"
                                   R"("content": "a", "content": "b"}]})"))
                .get(doc),
            simdjson::SUCCESS);
  std::string out;
  EXPECT_TRUE(request::internal::IsDuplicateKeyError(
      request::internal::AppendCanonicalRequest<internal::SimdjsonView>(doc, out, -1)));
}

TEST(TraceRecordTest, ReadsWhatNlohmannReadsWhereSimdjsonDiffers) {
  // An integer beyond 64 bits (nlohmann: a double) and keys given twice (the last wins).
  auto record = ParseTraceRecord(
      R"({"ts": 1, "ts": 7, "id": 12, "tags": {"b": "1", "a": "2", "b": "3", "n": 5},)"
      R"( "request": {"model": "m", "seed": 123456789012345678901234567890,)"
      R"( "messages": [{"role": "user", "content": "a", "content": "b"}]}})",
      "f:1");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->ts, 7.0);
  EXPECT_EQ(record->id, "12");
  ASSERT_EQ(record->tags.size(), 2u);  // string values only, in key order
  EXPECT_EQ(record->tags[0], std::make_pair(std::string("a"), std::string("2")));
  EXPECT_EQ(record->tags[1], std::make_pair(std::string("b"), std::string("3")));
  EXPECT_EQ(FinalUserText(record->request), "b");
  EXPECT_TRUE(record->request["seed"].is_number_float());
  EXPECT_THAT(Msg(ParseTraceRecord("{\"ts\": 1, \"request\": {\"model\": \"\xff\"}}", "f:2")),
              HasSubstr("f:2: malformed JSON"));
}

TEST(ReplayTest, DuplicateKeysInARequestKeyItAsNlohmannReadsIt) {
  // Line 2 is line 1 as nlohmann reads it (the last "content" wins): an exact hit.
  TempFile file(
      TempFile::Raw{},
      R"({"ts": 1, "request": {"model": "small", "messages": [{"role": "user", "content": "a",)"
      R"( "content": "b"}]}, "response": {"usage": {"prompt_tokens": 10, "completion_tokens": 5}}})"
      "\n"
      R"({"ts": 2, "request": {"model": "small", "messages": [{"role": "user", "content": "b"}]},)"
      R"( "response": {"usage": {"prompt_tokens": 10, "completion_tokens": 5}}})"
      "\n");
  ReplayOptions options = Options();
  options.semantic = false;
  auto result = Replay(file.path(), TestCatalog(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ((*result)["requests"], 2);
  EXPECT_EQ((*result)["exact_hits"], 1);
}

}  // namespace
}  // namespace thrifty::replay
