// AgentRun: the limits of one agent run, enforced before each call is sent.
//
// Counters: steps (LLM calls), tool calls, input and output tokens, USD and wall-clock. Every LLM
// call is bracketed: BeforeCall reserves the call's worst case (input tokens, plus a margin, at
// the model's highest input-side price -- uncached or cache write -- and max_output_tokens at the
// output price) and refuses the call when a limit could break; AfterCall settles what the
// provider reported and releases the rest; Cancel releases a reservation whose call failed.
// Invariant: settled + reserved <= each limit, so as long as reported usage stays within what
// was reserved, no settled total ever exceeds its limit.
//
// Nesting: a run created with a parent reserves and settles in its parent too (and so on up), so
// a sub-agent's usage counts against every ancestor's limits. Lock order is child before parent.
//
// Termination: refusals are statuses with a payload naming the kind ("steps", "tool_calls",
// "input_tokens", "output_tokens", "cost", "deadline", "loop"); a stop (a loop's stop level, a
// deadline) marks the run stopped and every later call is refused. In finalize mode the first
// refusal of an LLM call instead grants one last call, flagged `final`, for the caller to ask the
// model for an answer without tools; it is exempt from the step limit, not from the others.
//
// Thread-safety: thread-safe.
#ifndef THRIFTY_AGENT_AGENT_RUN_H_
#define THRIFTY_AGENT_AGENT_RUN_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "thrifty/agent/loop_detector.h"
#include "thrifty/base/mutex.h"
#include "thrifty/catalog/catalog.h"
#include "thrifty/cost/usage.h"

namespace thrifty::agent {

inline constexpr std::string_view kLimitPayloadUrl = "thrifty.dev/agent-limit";

struct AgentLimits {
  std::optional<int64_t> max_steps;
  std::optional<int64_t> max_tool_calls;
  std::optional<int64_t> max_input_tokens;
  std::optional<int64_t> max_output_tokens;
  std::optional<double> max_cost_usd;
  std::optional<absl::Duration> max_duration;
  double input_margin = 0.10;  // reserve input_tokens * (1 + margin): estimates run short
  LoopPolicy loop;
  bool finalize_on_limit = false;
};

absl::Status ValidateLimits(const AgentLimits& limits);

struct Counters {
  int64_t steps = 0;
  int64_t tool_calls = 0;
  int64_t input_tokens = 0;   // settled prompt tokens (cached included)
  int64_t output_tokens = 0;  // settled
  double cost_usd = 0.0;      // settled
  int64_t reserved_input_tokens = 0;
  int64_t reserved_output_tokens = 0;
  double reserved_cost_usd = 0.0;
  int64_t open_reservations = 0;
  int64_t tool_errors = 0;
  int64_t loop_warnings = 0;
  double elapsed_seconds = 0.0;
  bool stopped = false;
  std::string stop_reason;
};

struct Reservation {
  uint64_t id = 0;
  std::string model;
  int64_t input_tokens = 0;  // reserved (margin included)
  int64_t output_tokens = 0;
  double cost_usd = 0.0;
  bool final = false;  // finalize mode: ask for an answer without tools
};

class AgentRun {
 public:
  // `catalog` may be null when no dollar limit is set. `clock` defaults to absl::Now.
  static absl::StatusOr<std::shared_ptr<AgentRun>> Create(
      AgentLimits limits, std::shared_ptr<const catalog::Catalog> catalog,
      std::shared_ptr<AgentRun> parent = nullptr, std::function<absl::Time()> clock = nullptr);

  absl::StatusOr<Reservation> BeforeCall(std::string_view model, int64_t input_tokens,
                                         int64_t max_output_tokens);
  // Settles reservation `id` with what the provider reported. Returns the call's cost.
  absl::StatusOr<double> AfterCall(uint64_t id, const cost::Usage& usage);
  // Releases a reservation whose call failed or was abandoned (the step still counts).
  absl::Status Cancel(uint64_t id);
  // The oldest open reservation for `model` (for callers that do not keep the id).
  absl::StatusOr<uint64_t> OldestReservation(std::string_view model) const;

  // Counts a tool call and runs loop detection. OK, or OK with a warning in `*warning`, or a
  // refusal (kind "tool_calls", "loop", "deadline").
  absl::Status ToolCall(std::string_view tool, std::string_view arguments,
                        std::string* warning = nullptr);
  absl::Status ToolError(std::string_view tool, std::string_view message,
                         std::string* warning = nullptr);

  // Budget-aware routing: the quality threshold to use now. Policy: with at least half of the
  // tightest budget (cost or tokens) left, `base`; from a half down to a fifth, base - 0.05;
  // below a fifth, base - 0.10; never below `floor`. `reason` says which step applied.
  double AdjustedThreshold(double base, double floor, std::string* reason) const;
  // The smallest remaining fraction over the cost and token limits (1 when none is set).
  double RemainingFraction() const;

  Counters counters() const;
  const AgentLimits& limits() const { return limits_; }
  void Stop(std::string_view reason);

 private:
  AgentRun(AgentLimits limits, std::shared_ptr<const catalog::Catalog> catalog,
           std::shared_ptr<AgentRun> parent, std::function<absl::Time()> clock);

  absl::Time Now() const { return clock_ ? clock_() : absl::Now(); }
  absl::Status Refuse(std::string_view kind, std::string message) const;
  absl::Status CheckDeadlineLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reserve / release in this run only (the public calls walk the parent chain).
  absl::Status ReserveLocal(const Reservation& r, bool count_step, bool final_call)
      ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseLocal(const Reservation& r) ABSL_LOCKS_EXCLUDED(mu_);
  void SettleLocal(const Reservation& r, const cost::Usage& usage, double cost)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CountToolLocal(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  void UncountToolLocal() ABSL_LOCKS_EXCLUDED(mu_);

  const AgentLimits limits_;
  const std::shared_ptr<const catalog::Catalog> catalog_;
  const std::shared_ptr<AgentRun> parent_;
  const std::function<absl::Time()> clock_;
  const absl::Time started_;

  mutable Mutex mu_;
  Counters counters_ ABSL_GUARDED_BY(mu_);
  bool final_granted_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Reservation> open_ ABSL_GUARDED_BY(mu_);
  LoopDetector loops_ ABSL_GUARDED_BY(mu_);
};

}  // namespace thrifty::agent

#endif  // THRIFTY_AGENT_AGENT_RUN_H_
