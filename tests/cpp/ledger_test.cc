#include "thrifty/cost/ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "test_util.h"
#include "thrifty/base/strings.h"
#include "thrifty/cost/pricing.h"
#include "thrifty/cost/quantile_sketch.h"

namespace thrifty::cost {
namespace {

using ::testing::HasSubstr;
using ::thrifty::testing::Msg;

std::shared_ptr<const catalog::Catalog> TestCatalog() {
  catalog::ModelSpec small;
  small.name = "small";
  small.provider = "openai";
  small.input_per_mtok = 1.0;
  small.output_per_mtok = 4.0;
  small.cached_input_per_mtok = 0.25;
  small.aliases = {"small-latest"};
  catalog::ModelSpec big;
  big.name = "big";
  big.provider = "anthropic";
  big.input_per_mtok = 10.0;
  big.output_per_mtok = 40.0;
  return std::make_shared<const catalog::Catalog>(*catalog::Catalog::Create({small, big}));
}

// Call() keeps a span of `tags`: pass a named vector unless the record is used in the same
// full expression.
// A settable clock, so tests control time.
struct FakeClock {
  std::shared_ptr<std::atomic<double>> now = std::make_shared<std::atomic<double>>(1.7e9);
  std::function<double()> Fn() const {
    auto n = now;
    return [n] { return n->load(); };
  }
  void Set(double t) const { now->store(t); }
};

std::unique_ptr<Ledger> MakeLedger(LedgerOptions options = {},
                                   std::shared_ptr<const catalog::Catalog> c = TestCatalog()) {
  auto ledger = Ledger::Create(std::move(c), std::move(options));
  EXPECT_TRUE(ledger.ok()) << ledger.status();
  return *std::move(ledger);
}

CallRecord Call(std::string_view model, const std::vector<Tag>& tags, double cost,
                std::optional<double> ts = std::nullopt) {
  CallRecord c;
  c.model = model;
  c.usage = Usage{100, 0, 0, 0, 10, 0};
  c.tags = tags;
  c.cost_usd = cost;
  c.ts = ts;
  return c;
}

// ---------------------------------------------------------------------------------------------
// QuantileSketch.

TEST(QuantileSketchTest, QuantilesWithinRelativeAccuracy) {
  std::mt19937 rng(7);
  std::lognormal_distribution<double> dist(0.0, 1.5);
  QuantileSketch sketch;
  std::vector<double> values;
  for (int i = 0; i < 100000; ++i) {
    values.push_back(dist(rng));
    sketch.Add(values.back());
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999}) {
    const double exact = values[static_cast<size_t>(q * (values.size() - 1))];
    EXPECT_NEAR(sketch.Quantile(q), exact, exact * QuantileSketch::kRelativeAccuracy * 1.0001)
        << "q=" << q;
  }
  EXPECT_EQ(sketch.count(), values.size());
  EXPECT_DOUBLE_EQ(sketch.min(), values.front());
  EXPECT_DOUBLE_EQ(sketch.max(), values.back());
}

TEST(QuantileSketchTest, MergeEqualsAddingEverything) {
  QuantileSketch a, b, all;
  for (int i = 1; i <= 1000; ++i) {
    const double v = i * 0.003;
    (i % 3 == 0 ? a : b).Add(v);
    all.Add(v);
  }
  a.Merge(b);
  for (double q : {0.1, 0.5, 0.99}) EXPECT_DOUBLE_EQ(a.Quantile(q), all.Quantile(q));
  EXPECT_EQ(a.count(), all.count());
}

TEST(QuantileSketchTest, BoundedBinsAndRoundTrip) {
  QuantileSketch s;
  for (int e = -9; e <= 300; e += 3) s.Add(std::pow(10.0, e));  // an absurd range
  s.Add(0.0);
  EXPECT_TRUE(std::isnan(QuantileSketch().Quantile(0.5)));
  auto back = QuantileSketch::FromJson(s.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->count(), s.count());
  EXPECT_LE(s.ToJson()["bins"].size(), static_cast<size_t>(QuantileSketch::kMaxBins));
  EXPECT_DOUBLE_EQ(back->Quantile(0.99), s.Quantile(0.99));
  EXPECT_DOUBLE_EQ(s.Quantile(0.0), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Recording.

TEST(LedgerTest, AggregatesByModelTagAndTime) {
  FakeClock clock;
  LedgerOptions o;
  o.clock = clock.Fn();
  auto ledger = MakeLedger(o);
  const std::vector<Tag> tags = {{"feature", "search"}, {"customer", "acme"}};
  CallRecord c;
  c.model = "small-latest";  // an alias aggregates under the model's name
  c.usage = Usage{1000, 2000, 0, 0, 500, 100};
  c.tags = tags;
  c.latency_s = 0.8;
  c.cache = CacheOutcome::kMiss;
  const std::vector<Saving> savings = {{"prompt_cache", 0.0015}};
  c.savings = savings;
  auto cost = ledger->Record(c);
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_DOUBLE_EQ(*cost, (1000 * 1.0 + 2000 * 0.25 + 500 * 4.0) / 1e6);
  ASSERT_TRUE(ledger->Record(Call("big", {{"feature", "chat"}}, 0.5)).ok());

  const nlohmann::json s = ledger->Snapshot();
  EXPECT_EQ(s["calls"], 2);
  EXPECT_NEAR(s["total_cost_usd"].get<double>(), 0.5 + *cost, 1e-9);
  const auto& small = s["by_model"]["small"];
  EXPECT_EQ(small["calls"], 1);
  EXPECT_EQ(small["input_tokens"], 1000);
  EXPECT_EQ(small["cached_input_tokens"], 2000);
  EXPECT_EQ(small["output_tokens"], 500);
  EXPECT_EQ(small["reasoning_tokens"], 100);
  EXPECT_EQ(small["cache"]["miss"], 1);
  EXPECT_NEAR(small["savings_usd"]["prompt_cache"].get<double>(), 0.0015, 1e-12);
  EXPECT_NEAR(small["latency_s"]["p50"].get<double>(), 0.8, 0.8 * 0.01);
  EXPECT_EQ(s["by_tag"]["feature"]["search"]["calls"], 1);
  EXPECT_EQ(s["by_tag"]["feature"]["chat"]["calls"], 1);
  EXPECT_EQ(s["by_tag"]["customer"]["acme"]["calls"], 1);
  ASSERT_EQ(s["by_time"].size(), 1u);
  EXPECT_EQ(s["by_time"][0]["calls"], 2);
  EXPECT_LE(s["by_time"][0]["start"].get<double>(), 1.7e9);
}

TEST(LedgerTest, SixteenThreadsGiveExactTotals) {
  auto ledger = MakeLedger();
  constexpr int kThreads = 16;
  constexpr int kCalls = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string customer = "c" + std::to_string(t % 4);
      const std::vector<Tag> tags = {{"customer", customer}, {"feature", "f"}};
      for (int i = 0; i < kCalls; ++i) {
        CallRecord c;
        c.model = (i % 2 == 0) ? "small" : "big";
        c.usage = Usage{10 + i % 7, 3, 0, 2, 5, 1};
        c.tags = tags;
        c.latency_s = 0.1 * (1 + i % 10);
        ASSERT_TRUE(ledger->Record(c).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  // The expected totals, computed serially with the same per-call nano-dollar rounding.
  auto catalog = TestCatalog();
  int64_t expected_nano = 0, expected_input = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kCalls; ++i) {
      const Usage u{10 + i % 7, 3, 0, 2, 5, 1};
      expected_nano +=
          std::llround(CostUsd(**catalog->Get((i % 2 == 0) ? "small" : "big"), u) * 1e9);
      expected_input += u.input_tokens;
    }
  }
  const nlohmann::json s = ledger->Snapshot();
  EXPECT_EQ(s["calls"].get<int64_t>(), kThreads * kCalls);
  EXPECT_EQ(s["total"]["input_tokens"].get<int64_t>(), expected_input);
  EXPECT_EQ(s["total"]["cache_write_tokens"].get<int64_t>(), 2LL * kThreads * kCalls);
  EXPECT_EQ(std::llround(s["total_cost_usd"].get<double>() * 1e9), expected_nano);
  EXPECT_EQ(s["by_tag"]["feature"]["f"]["calls"].get<int64_t>(), kThreads * kCalls);
  EXPECT_EQ(s["by_tag"]["customer"]["c0"]["calls"].get<int64_t>(), 4 * kCalls);
  EXPECT_EQ(s["by_model"]["small"]["calls"].get<int64_t>(), kThreads * kCalls / 2);
  EXPECT_EQ(s["total"]["latency_s"]["count"].get<int64_t>(), kThreads * kCalls);
}

TEST(LedgerTest, BadInputIsRejectedWithClearErrors) {
  auto ledger = MakeLedger();
  CallRecord c = Call("nope-model", {}, 0.0);
  c.cost_usd.reset();
  auto r = ledger->Record(c);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(r), HasSubstr("nope-model"));
  EXPECT_THAT(Msg(r), HasSubstr("cost_usd"));
  c.cost_usd = 0.01;  // an explicit cost makes an unknown model fine
  EXPECT_TRUE(ledger->Record(c).ok());

  CallRecord neg = Call("small", {}, 0.1);
  neg.usage.output_tokens = -3;
  r = ledger->Record(neg);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r), HasSubstr("output_tokens"));
  EXPECT_EQ(ledger->Record(Call("small", {}, -1.0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  CallRecord lat = Call("small", {}, 0.1);
  lat.latency_s = -0.5;
  EXPECT_THAT(Msg(ledger->Record(lat)), HasSubstr("latency_s"));
  EXPECT_THAT(Msg(ledger->Record(Call("small", {{"", "x"}}, 0.1))), HasSubstr("tag key"));

  auto no_catalog = MakeLedger({}, nullptr);
  CallRecord priced = Call("small", {}, 0.0);
  priced.cost_usd.reset();
  EXPECT_THAT(Msg(no_catalog->Record(priced)), HasSubstr("no catalog"));

  BudgetSpec b;
  b.tag = "customer";
  b.value = "acme";
  b.limit_usd = 0.0;
  auto added = ledger->AddBudget(b);
  EXPECT_EQ(added.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(added), HasSubstr("limit_usd"));
  b.limit_usd = -5;
  EXPECT_FALSE(ledger->AddBudget(b).ok());
  auto period = ParsePeriod("fortnight");
  EXPECT_EQ(period.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(period), HasSubstr("'day', 'month'"));
  EXPECT_FALSE(ParsePeriod("-5").ok());
  EXPECT_FALSE(PeriodOfSeconds(0).ok());
  EXPECT_EQ(ParsePeriod("3600")->seconds, 3600.0);
  EXPECT_FALSE(ParseCacheOutcome("hit").ok());
  // Nothing of the refused records was counted.
  EXPECT_EQ(ledger->Snapshot()["calls"], 1);
}

TEST(LedgerTest, TagValuesOverTheCapAggregateAsOther) {
  LedgerOptions o;
  o.max_tag_values = 2;
  o.max_tag_keys = 1;
  auto ledger = MakeLedger(o);
  for (const char* v : {"a", "b", "c", "d"}) {
    ASSERT_TRUE(ledger->Record(Call("small", {{"customer", v}, {"team", "x"}}, 0.01)).ok());
  }
  const nlohmann::json s = ledger->Snapshot();
  EXPECT_EQ(s["by_tag"]["customer"].size(), 3u);
  EXPECT_EQ(s["by_tag"]["customer"]["__other__"]["calls"], 2);
  EXPECT_FALSE(s["by_tag"].contains("team"));
  EXPECT_EQ(s["dropped"]["tags"], 4);
  EXPECT_EQ(s["calls"], 4);
}

TEST(LedgerTest, TimeBucketsAreBounded) {
  LedgerOptions o;
  o.max_time_buckets = 5;
  o.anomaly.baseline_buckets = 3;
  o.anomaly.min_history = 2;
  auto ledger = MakeLedger(o);
  for (int h = 0; h < 20; ++h)
    ASSERT_TRUE(ledger->Record(Call("small", {}, 0.01, h * 3600.0)).ok());
  ASSERT_TRUE(ledger->Record(Call("small", {}, 0.01, 0.0)).ok());  // far too old for buckets
  const nlohmann::json s = ledger->Snapshot();
  EXPECT_EQ(s["by_time"].size(), 5u);
  EXPECT_EQ(s["by_time"][0]["start"].get<double>(), 15 * 3600.0);
  EXPECT_EQ(s["dropped"]["time_records"], 1);
  EXPECT_EQ(s["calls"], 21);
}

// ---------------------------------------------------------------------------------------------
// Budgets.

TEST(LedgerBudgetTest, AlertsAtFiftyEightyHundredOncePerPeriod) {
  FakeClock clock;
  clock.Set(86400.0 * 100 + 10);
  LedgerOptions o;
  o.clock = clock.Fn();
  std::vector<Alert> global;
  o.on_alert = [&](const Alert& a) { global.push_back(a); };
  auto ledger = MakeLedger(o);
  std::vector<double> fired;
  BudgetSpec b;
  b.tag = "customer";
  b.value = "acme";
  b.limit_usd = 1.0;
  b.on_alert = [&](const Alert& a) { fired.push_back(a.threshold); };
  ASSERT_TRUE(ledger->AddBudget(b).ok());
  const std::vector<Tag> acme = {{"customer", "acme"}};
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(ledger->Record(Call("small", acme, 0.1)).ok());
  ASSERT_TRUE(ledger->Record(Call("small", {{"customer", "other"}}, 5.0)).ok());
  EXPECT_THAT(fired, ::testing::ElementsAre(0.5, 0.8, 1.0));
  EXPECT_EQ(global.size(), 3u);
  EXPECT_EQ(global[2].kind, "budget");
  EXPECT_THAT(global[2].message, HasSubstr("100%"));
  auto status = ledger->Budgets();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_NEAR(status[0].spent_usd, 1.2, 1e-9);
  EXPECT_EQ(status[0].period_start, 86400.0 * 100);
  // The next day starts a new period: spend resets, alerts fire again.
  clock.Set(86400.0 * 101 + 5);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(ledger->Record(Call("small", acme, 0.1)).ok());
  EXPECT_THAT(fired, ::testing::ElementsAre(0.5, 0.8, 1.0, 0.5));
  EXPECT_NEAR(ledger->Budgets()[0].spent_usd, 0.6, 1e-9);
}

TEST(LedgerBudgetTest, PeriodsAreCalendarAligned) {
  auto month = ParsePeriod("month");
  ASSERT_TRUE(month.ok());
  // 2026-02-15T12:00:00Z is in February 2026, which starts 2026-02-01T00:00:00Z.
  const int64_t idx = month->IndexOf(1771156800.0);
  EXPECT_EQ(month->Start(idx), 1769904000.0);
  EXPECT_EQ(month->End(idx), 1772323200.0);  // 2026-03-01
  auto hour = ParsePeriod("3600");
  EXPECT_EQ(hour->Start(hour->IndexOf(7250.0)), 7200.0);
}

TEST(LedgerBudgetTest, HardBudgetRefusesBeforeTheCall) {
  FakeClock clock;
  LedgerOptions o;
  o.clock = clock.Fn();
  auto ledger = MakeLedger(o);
  BudgetSpec b;
  b.tag = "team";
  b.value = "ml";
  b.limit_usd = 1.0;
  b.hard = true;
  ASSERT_TRUE(ledger->AddBudget(b).ok());
  const std::vector<Tag> ml = {{"team", "ml"}};
  EXPECT_TRUE(ledger->Check(ml, 0.9).ok());
  ASSERT_TRUE(ledger->Record(Call("small", ml, 0.7)).ok());
  absl::Status refused = ledger->Check(ml, 0.5);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(refused.GetPayload(ToAbsl(kBudgetPayloadUrl)).has_value());
  EXPECT_THAT(Msg(refused), HasSubstr("team=ml"));
  EXPECT_TRUE(ledger->Check({{"team", "other"}}, 100.0).ok());
  // Reservations count against the limit until settled or released.
  auto r1 = ledger->Reserve(ml, 0.25);
  ASSERT_TRUE(r1.ok());
  EXPECT_FALSE(ledger->Reserve(ml, 0.1).ok());
  EXPECT_TRUE(ledger->Release(*r1).ok());
  EXPECT_EQ(ledger->Release(*r1).code(), absl::StatusCode::kNotFound);
  auto r2 = ledger->Reserve(ml, 0.3);
  ASSERT_TRUE(r2.ok());
  CallRecord settle = Call("small", ml, 0.2);
  settle.reservation = *r2;
  ASSERT_TRUE(ledger->Record(settle).ok());
  EXPECT_NEAR(ledger->Budgets()[0].spent_usd, 0.9, 1e-9);
  EXPECT_EQ(ledger->Budgets()[0].reserved_usd, 0.0);
  settle.reservation = *r2;  // settled already
  EXPECT_EQ(ledger->Record(settle).status().code(), absl::StatusCode::kNotFound);
}

// The target: many threads racing reserve -> settle never push settled spend over a hard limit.
TEST(LedgerBudgetTest, RandomizedHardBudgetNeverOvershoots) {
  for (int round = 0; round < 5; ++round) {
    auto ledger = MakeLedger();
    BudgetSpec b;
    b.tag = "*";
    b.limit_usd = 3.0 + round;
    b.hard = true;
    ASSERT_TRUE(ledger->AddBudget(b).ok());
    BudgetSpec per;
    per.tag = "customer";
    per.value = "c1";
    per.limit_usd = 1.0;
    per.hard = true;
    ASSERT_TRUE(ledger->AddBudget(per).ok());
    std::atomic<int> refused{0}, settled{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(static_cast<unsigned>(round * 100 + t));
        std::uniform_real_distribution<double> est(0.001, 0.08), frac(0.0, 1.0);
        const std::string customer = "c" + std::to_string(t % 3);
        const std::vector<Tag> tags = {{"customer", customer}};
        for (int i = 0; i < 400; ++i) {
          const double e = est(rng);
          auto r = ledger->Reserve(tags, e);
          if (!r.ok()) {
            ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
            ++refused;
            continue;
          }
          if (frac(rng) < 0.1) {
            ASSERT_TRUE(ledger->Release(*r).ok());  // the call failed
            continue;
          }
          CallRecord c = Call("small", tags, e * frac(rng));
          c.reservation = *r;
          ASSERT_TRUE(ledger->Record(c).ok());
          ++settled;
        }
      });
    }
    for (auto& th : threads) th.join();
    for (const BudgetStatus& s : ledger->Budgets()) {
      EXPECT_LE(s.spent_usd, s.limit_usd + 1e-9) << s.tag << "=" << s.value;
      EXPECT_EQ(s.reserved_usd, 0.0);
    }
    EXPECT_GT(refused.load(), 0);
    EXPECT_GT(settled.load(), 0);
    EXPECT_GT(ledger->Budgets()[0].spent_usd, 0.8 * (3.0 + round) - 1.0);
  }
}

// ---------------------------------------------------------------------------------------------
// Spike and drift alerts.

TEST(LedgerAlertTest, SpikeOverAbsoluteAndOverKTimesTheMedian) {
  auto ledger = MakeLedger();
  std::vector<Alert> alerts;
  SpikeSpec abs;
  abs.absolute_usd = 2.0;
  abs.on_alert = [&](const Alert& a) { alerts.push_back(a); };
  ASSERT_TRUE(ledger->AddSpikeAlert(abs).ok());
  SpikeSpec rel;
  rel.tag = "feature";
  rel.k = 5.0;
  rel.min_calls = 10;
  rel.on_alert = [&](const Alert& a) { alerts.push_back(a); };
  ASSERT_TRUE(ledger->AddSpikeAlert(rel).ok());
  const std::vector<Tag> search = {{"feature", "search"}};
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(ledger->Record(Call("small", search, 0.01)).ok());
  EXPECT_TRUE(alerts.empty());
  ASSERT_TRUE(ledger->Record(Call("small", search, 0.04)).ok());  // 4x: below k
  EXPECT_TRUE(alerts.empty());
  ASSERT_TRUE(ledger->Record(Call("small", search, 0.2)).ok());  // 20x the median
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].kind, "spike");
  EXPECT_EQ(alerts[0].value, "search");
  EXPECT_NEAR(alerts[0].threshold, 0.05, 0.05 * 0.011);
  ASSERT_TRUE(ledger->Record(Call("big", {}, 3.0)).ok());  // absolute
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[1].model, "big");
  EXPECT_EQ(ledger->Alerts().size(), 2u);
  EXPECT_FALSE(ledger->AddSpikeAlert(SpikeSpec{}).ok());
}

TEST(LedgerAlertTest, DriftWhenAModelShareMoves) {
  auto ledger = MakeLedger();
  std::vector<Alert> alerts;
  DriftSpec d;
  d.window_seconds = 3600;
  d.points = 20;
  d.min_calls = 10;
  d.on_alert = [&](const Alert& a) { alerts.push_back(a); };
  ASSERT_TRUE(ledger->AddDriftAlert(d).ok());
  auto window = [&](int w, int small, int big) {
    for (int i = 0; i < small; ++i)
      ASSERT_TRUE(ledger->Record(Call("small", {}, 0.01, w * 3600.0 + i)).ok());
    for (int i = 0; i < big; ++i)
      ASSERT_TRUE(ledger->Record(Call("big", {}, 0.01, w * 3600.0 + 100 + i)).ok());
  };
  window(0, 80, 20);
  window(1, 75, 25);  // closes window 0
  window(2, 40, 60);  // closes window 1: 5 points, no alert
  EXPECT_TRUE(alerts.empty());
  window(3, 40, 60);  // closes window 2: small 75% -> 40%
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0].kind, "drift");
  EXPECT_EQ(alerts[0].model, "big");
  EXPECT_NEAR(alerts[0].observed, 35.0, 1e-9);
  EXPECT_EQ(alerts[1].model, "small");
  EXPECT_NEAR(alerts[1].observed, -35.0, 1e-9);
}

// ---------------------------------------------------------------------------------------------
// Anomalies.

TEST(LedgerAnomalyTest, HourlySpikeAgainstTrailingBaseline) {
  std::vector<Alert> alerts;
  FakeClock clock;
  LedgerOptions o;
  o.clock = clock.Fn();
  o.on_alert = [&](const Alert& a) {
    if (a.kind == "anomaly") alerts.push_back(a);
  };
  auto ledger = MakeLedger(o);
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(1.0, 0.1);
  const double t0 = 1000 * 3600.0;
  const std::vector<Tag> search = {{"feature", "search"}};
  const std::vector<Tag> chat = {{"feature", "chat"}};
  for (int h = 0; h < 48; ++h) {
    const double spend = (h == 40) ? 6.0 : std::max(0.5, noise(rng));
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(ledger->Record(Call("small", search, spend / 10, t0 + h * 3600.0 + i)).ok());
      ASSERT_TRUE(ledger->Record(Call("big", chat, 0.2, t0 + h * 3600.0 + 60 + i)).ok());
    }
  }
  clock.Set(t0 + 48 * 3600.0 - 1);
  // Live: the alert fired when hour 41 began.
  ASSERT_GE(alerts.size(), 1u);
  std::set<std::string> live;
  for (const Alert& a : alerts) {
    live.insert(a.tag + "=" + a.value);
    EXPECT_EQ(a.period_start, t0 + 40 * 3600.0);
  }
  EXPECT_THAT(live, ::testing::UnorderedElementsAre("feature=search", "model=small"));
  // Queryable: the same anomaly and nothing else.
  const std::vector<Anomaly> found = ledger->Anomalies();
  ASSERT_EQ(found.size(), 2u);
  for (const Anomaly& a : found) {
    EXPECT_EQ(a.bucket_start, t0 + 40 * 3600.0);
    EXPECT_NEAR(a.spend_usd, 6.0, 1e-6);
    EXPECT_NEAR(a.baseline_median_usd, 1.0, 0.15);
    EXPECT_FALSE(a.partial);
  }
}

TEST(LedgerAnomalyTest, NoAnomalyOnASteadySeriesOrWithoutHistory) {
  auto ledger = MakeLedger();
  for (int h = 0; h < 30; ++h) {
    ASSERT_TRUE(ledger->Record(Call("small", {{"f", "x"}}, 1.0 + 0.01 * (h % 3), h * 3600.0)).ok());
  }
  // A big first hour of a new value (on a new model) has no baseline.
  ASSERT_TRUE(ledger->Record(Call("big", {{"f", "new"}}, 50.0, 29 * 3600.0)).ok());
  for (const Anomaly& a : ledger->Anomalies()) {
    ADD_FAILURE() << a.tag << "=" << a.value << " at " << a.bucket_start;
  }
}

// ---------------------------------------------------------------------------------------------
// Exports.

TEST(LedgerExportTest, PrometheusTextParses) {
  auto ledger = MakeLedger();
  const std::vector<Tag> tags = {{"customer", "a\"b\\c\nd"}};
  CallRecord c = Call("small", tags, 0.25);
  c.latency_s = 1.5;
  const std::vector<Saving> savings = {{"exact_cache", 0.5}};
  c.savings = savings;
  ASSERT_TRUE(ledger->Record(c).ok());
  BudgetSpec b;
  b.tag = "*";
  b.limit_usd = 10;
  ASSERT_TRUE(ledger->AddBudget(b).ok());
  const std::string text = ledger->Prometheus();
  // Grammar of the text format: comments, then samples `name{label="escaped",...} value`.
  const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary)$)");
  const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? ([-+]?[0-9.eE+-]+|NaN|[+-]Inf)$)");
  std::istringstream in(text);
  std::string line, family;
  std::set<std::string> typed;
  int samples = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, help)) {
      family = m[1];
    } else if (std::regex_match(line, m, type)) {
      EXPECT_EQ(m[1], family) << "TYPE must follow its HELP";
      EXPECT_TRUE(typed.insert(family).second) << "family declared twice: " << family;
    } else {
      ASSERT_TRUE(std::regex_match(line, m, sample)) << "not a valid sample line: " << line;
      const std::string name = m[1];
      EXPECT_EQ(name.rfind(family, 0), 0u) << name << " outside its family " << family;
      ++samples;
    }
  }
  EXPECT_GT(samples, 10);
  EXPECT_THAT(
      text, HasSubstr(R"(thrifty_llm_tag_cost_usd_total{tag="customer",value="a\"b\\c\nd"} 0.25)"));
  EXPECT_THAT(text, HasSubstr(R"(thrifty_llm_savings_usd_total{lever="exact_cache"} 0.5)"));
  EXPECT_THAT(text, HasSubstr("thrifty_llm_latency_seconds_count{model=\"small\"} 1"));
  EXPECT_THAT(text, HasSubstr(R"(thrifty_llm_budget_limit_usd{tag="*",value="",period="day"} 10)"));
}

TEST(LedgerExportTest, OtelAttributesUseGenAiNames) {
  auto ledger = MakeLedger();
  nlohmann::json seen;
  ledger->AddRecordHook([&](const RecordEvent& e) { seen = OtelAttributes(e); });
  CallRecord c;
  c.model = "small";
  c.usage = Usage{100, 50, 10, 0, 20, 5};
  const std::vector<Tag> tags = {{"feature", "search"}};
  c.tags = tags;
  c.cache = CacheOutcome::kSemanticHit;
  ASSERT_TRUE(ledger->Record(c).ok());
  EXPECT_EQ(seen["gen_ai.request.model"], "small");
  EXPECT_EQ(seen["gen_ai.provider.name"], "openai");
  EXPECT_EQ(seen["gen_ai.usage.input_tokens"], 160);
  EXPECT_EQ(seen["gen_ai.usage.cache_read.input_tokens"], 50);
  EXPECT_EQ(seen["gen_ai.usage.cache_creation.input_tokens"], 10);
  EXPECT_EQ(seen["gen_ai.usage.output_tokens"], 20);
  EXPECT_EQ(seen["thrifty.tag.feature"], "search");
  EXPECT_EQ(seen["thrifty.cache"], "semantic");
}

TEST(LedgerExportTest, JsonlLog) {
  const std::string path = ::testing::TempDir() + "/ledger_log.jsonl";
  std::filesystem::remove(path);
  auto ledger = MakeLedger();
  ASSERT_TRUE(ledger->SetLogPath(path).ok());
  ASSERT_TRUE(ledger->Record(Call("small", {{"customer", "acme"}}, 0.5, 100.0)).ok());
  ASSERT_TRUE(ledger->Record(Call("big", {}, 0.25, 101.0)).ok());
  ASSERT_TRUE(ledger->SetLogPath("").ok());
  std::ifstream in(path);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["tags"]["customer"], "acme");
  EXPECT_EQ(lines[0]["cost_usd"], 0.5);
  EXPECT_EQ(lines[1]["model"], "big");
  EXPECT_FALSE(ledger->SetLogPath("/nonexistent-dir/x.jsonl").ok());
}

TEST(LedgerExportTest, SaveLoadRoundTripAndCorruptFiles) {
  const std::string path = ::testing::TempDir() + "/ledger_state.json";
  std::filesystem::remove(path);
  FakeClock clock;
  clock.Set(86400.0 * 200 + 100);
  LedgerOptions o;
  o.clock = clock.Fn();
  auto ledger = MakeLedger(o);
  BudgetSpec b;
  b.tag = "customer";
  b.value = "acme";
  b.limit_usd = 2.0;
  b.hard = true;
  ASSERT_TRUE(ledger->AddBudget(b).ok());
  const std::vector<Tag> acme = {{"customer", "acme"}};
  for (int i = 0; i < 10; ++i) {
    CallRecord c = Call("small", acme, 0.125);
    c.latency_s = 0.1 * (i + 1);
    ASSERT_TRUE(ledger->Record(c).ok());
  }
  ASSERT_TRUE(ledger->Save(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const nlohmann::json before = ledger->Snapshot();

  // A restarted process: same options, budget added again, then the state loaded.
  auto restarted = MakeLedger(o);
  ASSERT_TRUE(restarted->AddBudget(b).ok());
  ASSERT_TRUE(restarted->Load(path).ok());
  const nlohmann::json after = restarted->Snapshot();
  EXPECT_EQ(after["by_model"], before["by_model"]);
  EXPECT_EQ(after["by_tag"], before["by_tag"]);
  EXPECT_EQ(after["by_time"], before["by_time"]);
  EXPECT_NEAR(restarted->Budgets()[0].spent_usd, 1.25, 1e-12);
  EXPECT_FALSE(restarted->Check({{"customer", "acme"}}, 1.0).ok());

  // Corrupt and truncated files are DataLoss and leave the ledger as it was.
  std::string good;
  {
    std::ifstream in(path);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string bad_path = ::testing::TempDir() + "/ledger_bad.json";
  for (const std::string& bad :
       {good.substr(0, good.size() / 2), std::string("not json"),
        std::string(R"({"format":"thrifty.ledger","version":99})"),
        std::string(R"({"format":"thrifty.ledger","version":1,"bucket_seconds":3600})")}) {
    std::ofstream(bad_path, std::ios::trunc) << bad;
    absl::Status s = restarted->Load(bad_path);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_EQ(restarted->Snapshot()["by_model"], before["by_model"]);
  }
  EXPECT_EQ(restarted->Load(::testing::TempDir() + "/missing.json").code(),
            absl::StatusCode::kNotFound);
  // Saving over an existing file replaces it whole.
  ASSERT_TRUE(ledger->Record(Call("big", {}, 1.0)).ok());
  ASSERT_TRUE(ledger->Save(path).ok());
  auto third = MakeLedger(o);
  ASSERT_TRUE(third->Load(path).ok());
  EXPECT_EQ(third->Snapshot()["calls"], 11);
}

}  // namespace
}  // namespace thrifty::cost
