#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "absl/strings/cord.h"
#include "test_util.h"
#include "thrifty/agent/agent_run.h"
#include "thrifty/agent/loop_detector.h"
#include "thrifty/base/strings.h"

namespace thrifty::agent {
namespace {

using ::testing::HasSubstr;
using ::thrifty::testing::Msg;

std::shared_ptr<const catalog::Catalog> TestCatalog() {
  catalog::ModelSpec small;
  small.name = "small";
  small.provider = "openai";
  small.input_per_mtok = 1.0;
  small.output_per_mtok = 4.0;
  small.cached_input_per_mtok = 0.1;
  catalog::ModelSpec claude;
  claude.name = "claude";
  claude.provider = "anthropic";
  claude.input_per_mtok = 3.0;
  claude.output_per_mtok = 15.0;
  claude.cache_write_5m_per_mtok = 3.75;
  claude.cache_write_1h_per_mtok = 6.0;
  return std::make_shared<const catalog::Catalog>(*catalog::Catalog::Create({small, claude}));
}

std::string Kind(const absl::Status& status) {
  auto payload = status.GetPayload(ToAbsl(kLimitPayloadUrl));
  return payload ? std::string(*payload) : "";
}

std::shared_ptr<AgentRun> MakeRun(AgentLimits limits, std::shared_ptr<AgentRun> parent = nullptr,
                                  std::function<absl::Time()> clock = nullptr) {
  auto run =
      AgentRun::Create(std::move(limits), TestCatalog(), std::move(parent), std::move(clock));
  EXPECT_TRUE(run.ok()) << run.status();
  return *run;
}

cost::Usage Used(int64_t input, int64_t output) {
  cost::Usage u;
  u.input_tokens = input;
  u.output_tokens = output;
  return u;
}

TEST(AgentRunTest, StepLimitStopsExactlyAtTheLimit) {
  AgentLimits limits;
  limits.max_steps = 3;
  auto run = MakeRun(limits);
  int sent = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = run->BeforeCall("small", 100, 50);
    if (!r.ok()) {
      EXPECT_EQ(Kind(r.status()), "steps");
      EXPECT_THAT(Msg(r), HasSubstr("max_steps=3 reached"));
      break;
    }
    ++sent;
    ASSERT_TRUE(run->AfterCall(r->id, Used(100, 50)).ok());
  }
  EXPECT_EQ(sent, 3);
  EXPECT_EQ(run->counters().steps, 3);
}

TEST(AgentRunTest, ReservesTheWorstCaseAndSettlesTheRealCost) {
  AgentLimits limits;
  limits.max_cost_usd = 0.01;
  limits.input_margin = 0.0;
  auto run = MakeRun(limits);
  // claude: worst input price is the 1h cache write ($6/M): 1000 * 6 + 200 * 15 = $0.009.
  auto r = run->BeforeCall("claude", 1000, 200);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->cost_usd, 0.009);
  EXPECT_DOUBLE_EQ(run->counters().reserved_cost_usd, 0.009);
  // A second call cannot fit while the first is open.
  auto second = run->BeforeCall("claude", 1000, 200);
  EXPECT_EQ(Kind(second.status()), "cost");
  EXPECT_THAT(Msg(second), HasSubstr("max_cost_usd=0.01 could be exceeded"));
  // Settled: 1000 uncached input + 50 output on claude = $0.00375; the rest is released.
  auto cost = run->AfterCall(r->id, Used(1000, 50));
  ASSERT_TRUE(cost.ok());
  EXPECT_DOUBLE_EQ(*cost, 0.00375);
  const Counters c = run->counters();
  EXPECT_DOUBLE_EQ(c.cost_usd, 0.00375);
  EXPECT_DOUBLE_EQ(c.reserved_cost_usd, 0.0);
  EXPECT_EQ(c.open_reservations, 0);
  EXPECT_TRUE(run->BeforeCall("claude", 100, 100).ok());
}

TEST(AgentRunTest, TokenLimitsCountReservations) {
  AgentLimits limits;
  limits.max_output_tokens = 1000;
  limits.max_input_tokens = 5000;
  limits.input_margin = 0.1;
  auto run = MakeRun(limits);
  auto a = run->BeforeCall("small", 1000, 600);  // reserves 1100 input, 600 output
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->input_tokens, 1100);
  EXPECT_EQ(Kind(run->BeforeCall("small", 10, 500).status()), "output_tokens");
  EXPECT_EQ(Kind(run->BeforeCall("small", 4000, 10).status()), "input_tokens");
  ASSERT_TRUE(run->Cancel(a->id).ok());  // a failed call releases its reservation
  EXPECT_TRUE(run->BeforeCall("small", 10, 500).ok());
  EXPECT_EQ(run->counters().steps, 2);  // the cancelled call still counted as a step
}

TEST(AgentRunTest, BadInputGetsClearErrors) {
  auto run = MakeRun({});
  EXPECT_THAT(Msg(run->BeforeCall("small", -1, 10)), HasSubstr("input_tokens must be >= 0"));
  EXPECT_THAT(Msg(run->BeforeCall("small", 1, 0)), HasSubstr("max_output_tokens must be > 0"));
  auto unknown = run->BeforeCall("no-such-model", 1, 1);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(run->AfterCall(12345, Used(1, 1))), HasSubstr("without a matching before_call"));
  EXPECT_THAT(Msg(run->OldestReservation("small")), HasSubstr("without a matching before_call"));
  AgentLimits zero;
  zero.max_steps = 0;
  EXPECT_THAT(Msg(AgentRun::Create(zero, TestCatalog())),
              HasSubstr("max_steps must be a positive"));
  AgentLimits negative;
  negative.max_cost_usd = -1;
  EXPECT_THAT(Msg(AgentRun::Create(negative, TestCatalog())), HasSubstr("max_cost_usd"));
  AgentLimits no_catalog;
  no_catalog.max_cost_usd = 1;
  EXPECT_THAT(Msg(AgentRun::Create(no_catalog, nullptr)), HasSubstr("needs a catalog"));
  AgentLimits bad_loop;
  bad_loop.loop.repeat_refuse = 2;  // below repeat_warn=3
  EXPECT_THAT(Msg(AgentRun::Create(bad_loop, TestCatalog())), HasSubstr("non-decreasing"));
}

TEST(AgentRunTest, SubAgentUsageCountsAgainstItsParent) {
  AgentLimits parent_limits;
  parent_limits.max_steps = 4;
  parent_limits.max_cost_usd = 1.0;
  auto parent = MakeRun(parent_limits);
  AgentLimits child_limits;
  child_limits.max_steps = 10;
  auto child = MakeRun(child_limits, parent);
  for (int i = 0; i < 3; ++i) {
    auto r = child->BeforeCall("small", 1000, 1000);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(child->AfterCall(r->id, Used(1000, 1000)).ok());
  }
  EXPECT_EQ(parent->counters().steps, 3);
  EXPECT_DOUBLE_EQ(parent->counters().cost_usd, 3 * 0.005);
  ASSERT_TRUE(parent->BeforeCall("small", 10, 10).ok());  // the parent's 4th step
  auto refused = child->BeforeCall("small", 10, 10);      // the child's 4th would be the 5th
  EXPECT_EQ(Kind(refused.status()), "steps");
  EXPECT_EQ(child->counters().steps, 3);  // rolled back in the child
  EXPECT_EQ(child->counters().open_reservations, 0);
  ASSERT_TRUE(child->ToolCall("search", "{}").ok());
  EXPECT_EQ(parent->counters().tool_calls, 1);
}

TEST(AgentRunTest, DeadlineStopsTheRun) {
  absl::Time now = absl::FromUnixSeconds(1000);
  AgentLimits limits;
  limits.max_duration = absl::Seconds(30);
  auto run = MakeRun(limits, nullptr, [&now] { return now; });
  ASSERT_TRUE(run->BeforeCall("small", 1, 1).ok());
  now += absl::Seconds(30);
  auto late = run->BeforeCall("small", 1, 1);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(Kind(late.status()), "deadline");
  EXPECT_EQ(Kind(run->ToolCall("t", "{}")), "deadline");
  EXPECT_TRUE(run->counters().stopped);
}

TEST(AgentRunTest, FinalizeModeGrantsOneToolFreeCall) {
  AgentLimits limits;
  limits.max_steps = 2;
  limits.finalize_on_limit = true;
  auto run = MakeRun(limits);
  for (int i = 0; i < 2; ++i) {
    auto r = run->BeforeCall("small", 10, 10);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->final);
    ASSERT_TRUE(run->AfterCall(r->id, Used(10, 10)).ok());
  }
  auto final_call = run->BeforeCall("small", 10, 10);
  ASSERT_TRUE(final_call.ok());
  EXPECT_TRUE(final_call->final);
  ASSERT_TRUE(run->AfterCall(final_call->id, Used(10, 10)).ok());
  EXPECT_EQ(Kind(run->BeforeCall("small", 10, 10).status()), "steps");
  EXPECT_EQ(run->counters().steps, 3);
}

TEST(AgentRunTest, SixteenThreadsSettleExactTotals) {
  AgentLimits limits;
  limits.max_cost_usd = 1000.0;
  auto run = MakeRun(limits);
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&run, t] {
      for (int i = 0; i < 500; ++i) {
        auto r = run->BeforeCall("small", 1000, 100);
        ASSERT_TRUE(r.ok());
        ASSERT_TRUE(run->AfterCall(r->id, Used(1000 + t, 100)).ok());
        ASSERT_TRUE(run->ToolCall("tool" + std::to_string(t), StrCat("{\"i\":", i, "}")).ok());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const Counters c = run->counters();
  EXPECT_EQ(c.steps, 16 * 500);
  EXPECT_EQ(c.tool_calls, 16 * 500);
  int64_t expected_input = 0;
  for (int t = 0; t < 16; ++t) expected_input += 500 * (1000 + t);
  EXPECT_EQ(c.input_tokens, expected_input);
  EXPECT_EQ(c.output_tokens, 16 * 500 * 100);
  EXPECT_NEAR(c.cost_usd, (expected_input * 1.0 + 16 * 500 * 100 * 4.0) / 1e6, 1e-9);
  EXPECT_EQ(c.open_reservations, 0);
  EXPECT_EQ(c.reserved_input_tokens, 0);
}

TEST(AgentRunTest, RandomizedRunsNeverSettleAboveTheCostLimit) {
  std::mt19937 rng(2026);
  for (int trial = 0; trial < 10000; ++trial) {
    AgentLimits limits;
    limits.max_cost_usd = std::uniform_real_distribution<double>(0.001, 0.05)(rng);
    limits.input_margin = 0.0;
    auto run = MakeRun(limits);
    std::vector<Reservation> open;
    for (int step = 0; step < 40; ++step) {
      const int64_t input = std::uniform_int_distribution<int64_t>(0, 4000)(rng);
      const int64_t max_out = std::uniform_int_distribution<int64_t>(1, 2000)(rng);
      auto r = run->BeforeCall(rng() % 2 ? "small" : "claude", input, max_out);
      if (r.ok()) open.push_back(*r);
      if (!open.empty() && (rng() % 3 != 0 || !r.ok())) {  // settle a random open call
        const size_t pick = rng() % open.size();
        const Reservation done = open[pick];
        open.erase(open.begin() + static_cast<ptrdiff_t>(pick));
        // Reported usage within the reservation: some input cached or written to a cache.
        cost::Usage u;
        const int64_t in = std::uniform_int_distribution<int64_t>(0, done.input_tokens)(rng);
        u.cached_input_tokens = in / 3;
        u.cache_write_1h_tokens = in / 3;
        u.input_tokens = in - 2 * (in / 3);
        u.output_tokens = std::uniform_int_distribution<int64_t>(0, done.output_tokens)(rng);
        ASSERT_TRUE(run->AfterCall(done.id, u).ok());
      }
      ASSERT_LE(run->counters().cost_usd, *limits.max_cost_usd + 1e-12) << "trial " << trial;
    }
  }
}

TEST(LoopDetectorTest, RepeatedCallsEscalateWarnRefuseStop) {
  LoopDetector detector({});
  std::vector<LoopAction> actions;
  for (int i = 0; i < 8; ++i) {
    // Same arguments, different key order and number spelling.
    actions.push_back(detector
                          .OnToolCall("search", i % 2 ? R"({"q": "tents", "n": 5})"
                                                      : R"({"n": 5.0, "q": "tents"})")
                          .action);
  }
  EXPECT_EQ(actions,
            (std::vector<LoopAction>{LoopAction::kOk, LoopAction::kOk, LoopAction::kWarn,
                                     LoopAction::kWarn, LoopAction::kRefuse, LoopAction::kRefuse,
                                     LoopAction::kRefuse, LoopAction::kStop}));
}

TEST(LoopDetectorTest, DifferentArgumentsAreNotALoop) {
  LoopDetector detector({});
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(detector.OnToolCall("search", StrCat("{\"page\": ", i, "}")).action, LoopAction::kOk);
  }
}

TEST(LoopDetectorTest, OscillationAndRepeatedErrors) {
  LoopPolicy policy;
  policy.repeat_warn = 10;  // isolate the oscillation signal
  policy.repeat_refuse = 10;
  policy.repeat_stop = 10;
  LoopDetector detector(policy);
  std::vector<LoopAction> actions;
  for (int i = 0; i < 10; ++i) {
    actions.push_back(detector.OnToolCall(i % 2 ? "open" : "close", "{}").action);
  }
  EXPECT_EQ(actions[4], LoopAction::kOk);      // 2.5 cycles
  EXPECT_EQ(actions[5], LoopAction::kRefuse);  // 3 cycles
  EXPECT_EQ(actions[9], LoopAction::kStop);    // 5 cycles
  LoopDetector errors({});
  EXPECT_EQ(errors.OnToolError("fetch", "timeout after 3.2s (req 0x1f3a)").action, LoopAction::kOk);
  EXPECT_EQ(errors.OnToolError("fetch", "Timeout after 4.9s  (req 0x77aa)").action,
            LoopAction::kWarn);
  EXPECT_EQ(errors.OnToolError("fetch", "permission denied").action, LoopAction::kOk);
  errors.OnToolError("fetch", "timeout after 1s (req 0x1)");
  EXPECT_EQ(errors.OnToolError("fetch", "timeout after 9s (req 0x2)").action, LoopAction::kStop);
}

TEST(AgentRunTest, LoopStopEndsTheRun) {
  auto run = MakeRun({});
  std::string warning;
  for (int i = 0; i < 7; ++i) {
    const absl::Status status = run->ToolCall("search", "{\"q\": \"x\"}", &warning);
    if (i == 2) EXPECT_THAT(warning, HasSubstr("called with the same arguments 3 times"));
    if (i >= 4) EXPECT_EQ(Kind(status), "loop");
  }
  const absl::Status stop = run->ToolCall("search", "{\"q\": \"x\"}");
  EXPECT_THAT(Msg(stop), HasSubstr("stopping"));
  EXPECT_TRUE(run->counters().stopped);
  EXPECT_EQ(Kind(run->BeforeCall("small", 1, 1).status()), "loop");
  EXPECT_EQ(run->counters().tool_calls, 4);  // refused calls never ran
}

TEST(AgentRunTest, BudgetAwareThresholdStepsDown) {
  AgentLimits limits;
  limits.max_cost_usd = 1.0;
  limits.input_margin = 0.0;
  auto run = MakeRun(limits);
  std::string reason;
  EXPECT_DOUBLE_EQ(run->AdjustedThreshold(0.8, 0.5, &reason), 0.8);
  auto r = run->BeforeCall("small", 0, 150'000);  // $0.60 reserved -> 40% left
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(run->AdjustedThreshold(0.8, 0.5, &reason), 0.75);
  EXPECT_THAT(reason, HasSubstr("< 50%"));
  ASSERT_TRUE(run->AfterCall(r->id, Used(0, 225'000)).ok());  // $0.90 spent -> 10% left
  EXPECT_DOUBLE_EQ(run->AdjustedThreshold(0.8, 0.5, &reason), 0.7);
  EXPECT_DOUBLE_EQ(run->AdjustedThreshold(0.55, 0.5, &reason), 0.5);
  EXPECT_THAT(reason, HasSubstr("floor"));
}

}  // namespace
}  // namespace thrifty::agent
