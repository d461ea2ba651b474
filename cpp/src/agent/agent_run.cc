#include "thrifty/agent/agent_run.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/cord.h"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"
#include "thrifty/cost/pricing.h"

namespace thrifty::agent {
namespace {

constexpr double kCostEpsilon = 1e-12;  // float slack when comparing USD sums to a limit

absl::Status Positive(std::string_view field, const std::optional<int64_t>& value) {
  if (value && *value <= 0) {
    return absl::InvalidArgumentError(
        StrCat("AgentBudget.", field, " must be a positive integer (or None), got ", *value));
  }
  return absl::OkStatus();
}

// The highest price an input token can carry on `spec`: uncached, or written to a cache.
double WorstInputPrice(const catalog::ModelSpec& spec) {
  return std::max({spec.input_per_mtok, spec.CacheWrite5mPrice(), spec.CacheWrite1hPrice()});
}

}  // namespace

absl::Status ValidateLimits(const AgentLimits& limits) {
  THRIFTY_RETURN_IF_ERROR(Positive("max_steps", limits.max_steps));
  THRIFTY_RETURN_IF_ERROR(Positive("max_tool_calls", limits.max_tool_calls));
  THRIFTY_RETURN_IF_ERROR(Positive("max_input_tokens", limits.max_input_tokens));
  THRIFTY_RETURN_IF_ERROR(Positive("max_output_tokens", limits.max_output_tokens));
  if (limits.max_cost_usd && !(std::isfinite(*limits.max_cost_usd) && *limits.max_cost_usd > 0)) {
    return absl::InvalidArgumentError(
        StrCat("AgentBudget.max_cost_usd must be a positive number of USD (or None), got ",
               *limits.max_cost_usd));
  }
  if (limits.max_duration && *limits.max_duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("AgentBudget.max_seconds must be > 0 (or None)");
  }
  if (!(limits.input_margin >= 0 && limits.input_margin <= 10)) {
    return absl::InvalidArgumentError(
        StrCat("AgentBudget.input_margin must be in [0, 10], got ", limits.input_margin));
  }
  return ValidateLoopPolicy(limits.loop);
}

absl::StatusOr<std::shared_ptr<AgentRun>> AgentRun::Create(
    AgentLimits limits, std::shared_ptr<const catalog::Catalog> catalog,
    std::shared_ptr<AgentRun> parent, std::function<absl::Time()> clock) {
  THRIFTY_RETURN_IF_ERROR(ValidateLimits(limits));
  if (!catalog && parent) catalog = parent->catalog_;
  if (!catalog && limits.max_cost_usd) {
    return absl::FailedPreconditionError(
        "AgentBudget.max_cost_usd needs a catalog to price calls; pass catalog=");
  }
  if (!clock && parent) clock = parent->clock_;
  return std::shared_ptr<AgentRun>(
      new AgentRun(std::move(limits), std::move(catalog), std::move(parent), std::move(clock)));
}

AgentRun::AgentRun(AgentLimits limits, std::shared_ptr<const catalog::Catalog> catalog,
                   std::shared_ptr<AgentRun> parent, std::function<absl::Time()> clock)
    : limits_(std::move(limits)),
      catalog_(std::move(catalog)),
      parent_(std::move(parent)),
      clock_(std::move(clock)),
      started_(clock_ ? clock_() : absl::Now()),
      loops_(limits_.loop) {}

absl::Status AgentRun::Refuse(std::string_view kind, std::string message) const {
  absl::Status status;
  if (kind == "deadline") {
    status = absl::DeadlineExceededError(message);
  } else if (kind == "loop") {
    status = absl::AbortedError(message);
  } else {
    status = absl::ResourceExhaustedError(message);
  }
  status.SetPayload(ToAbsl(kLimitPayloadUrl), absl::Cord(ToAbsl(kind)));
  return status;
}

absl::Status AgentRun::CheckDeadlineLocked(absl::Time now) {
  if (counters_.stopped) {
    return Refuse(counters_.stop_reason.rfind("deadline", 0) == 0 ? "deadline" : "loop",
                  StrCat("the run was stopped: ", counters_.stop_reason));
  }
  if (limits_.max_duration && now - started_ >= *limits_.max_duration) {
    counters_.stopped = true;
    counters_.stop_reason =
        StrCat("deadline: max_seconds=", absl::ToDoubleSeconds(*limits_.max_duration), " passed");
    return Refuse("deadline", counters_.stop_reason);
  }
  return absl::OkStatus();
}

absl::Status AgentRun::ReserveLocal(const Reservation& r, bool count_step, bool final_call) {
  const absl::Time now = Now();
  MutexLock lock(&mu_);
  THRIFTY_RETURN_IF_ERROR(CheckDeadlineLocked(now));
  Counters& c = counters_;
  if (final_granted_) {
    return Refuse("steps", "the final call of this run (finalize mode) was already granted");
  }
  if (count_step && !final_call && limits_.max_steps && c.steps + 1 > *limits_.max_steps) {
    return Refuse("steps", StrCat("max_steps=", *limits_.max_steps, " reached (", c.steps,
                                  " LLM calls made)"));
  }
  if (limits_.max_input_tokens &&
      c.input_tokens + c.reserved_input_tokens + r.input_tokens > *limits_.max_input_tokens) {
    return Refuse("input_tokens",
                  StrCat("max_input_tokens=", *limits_.max_input_tokens,
                         " could be exceeded: ", c.input_tokens, " used, ", c.reserved_input_tokens,
                         " reserved, this call needs up to ", r.input_tokens));
  }
  if (limits_.max_output_tokens &&
      c.output_tokens + c.reserved_output_tokens + r.output_tokens > *limits_.max_output_tokens) {
    return Refuse("output_tokens",
                  StrCat("max_output_tokens=", *limits_.max_output_tokens, " could be exceeded: ",
                         c.output_tokens, " used, ", c.reserved_output_tokens,
                         " reserved, this call may write up to ", r.output_tokens));
  }
  if (limits_.max_cost_usd &&
      c.cost_usd + c.reserved_cost_usd + r.cost_usd > *limits_.max_cost_usd + kCostEpsilon) {
    return Refuse(
        "cost", StrCat("max_cost_usd=", *limits_.max_cost_usd, " could be exceeded: $", c.cost_usd,
                       " spent, $", c.reserved_cost_usd, " reserved, this call on ", r.model,
                       " may cost up to $", r.cost_usd));
  }
  if (count_step) ++c.steps;
  if (final_call) final_granted_ = true;
  c.reserved_input_tokens += r.input_tokens;
  c.reserved_output_tokens += r.output_tokens;
  c.reserved_cost_usd += r.cost_usd;
  ++c.open_reservations;
  return absl::OkStatus();
}

void AgentRun::ReleaseLocal(const Reservation& r) {
  MutexLock lock(&mu_);
  counters_.reserved_input_tokens -= r.input_tokens;
  counters_.reserved_output_tokens -= r.output_tokens;
  counters_.reserved_cost_usd = std::max(0.0, counters_.reserved_cost_usd - r.cost_usd);
  --counters_.open_reservations;
}

void AgentRun::SettleLocal(const Reservation& r, const cost::Usage& usage, double cost) {
  MutexLock lock(&mu_);
  counters_.reserved_input_tokens -= r.input_tokens;
  counters_.reserved_output_tokens -= r.output_tokens;
  counters_.reserved_cost_usd = std::max(0.0, counters_.reserved_cost_usd - r.cost_usd);
  --counters_.open_reservations;
  counters_.input_tokens += usage.prompt_tokens();
  counters_.output_tokens += usage.output_tokens;
  counters_.cost_usd += cost;
}

absl::StatusOr<Reservation> AgentRun::BeforeCall(std::string_view model, int64_t input_tokens,
                                                 int64_t max_output_tokens) {
  if (input_tokens < 0) {
    return absl::InvalidArgumentError(
        StrCat("before_call: input_tokens must be >= 0, got ", input_tokens));
  }
  if (max_output_tokens <= 0) {
    return absl::InvalidArgumentError(
        StrCat("before_call: max_output_tokens must be > 0 (the call's max_tokens), got ",
               max_output_tokens));
  }
  Reservation r;
  r.model = std::string(model);
  r.input_tokens = static_cast<int64_t>(
      std::ceil(static_cast<double>(input_tokens) * (1.0 + limits_.input_margin)));
  r.output_tokens = max_output_tokens;
  if (catalog_) {
    THRIFTY_ASSIGN_OR_RETURN(const catalog::ModelSpec* spec, catalog_->Get(model));
    r.cost_usd = (static_cast<double>(r.input_tokens) * WorstInputPrice(*spec) +
                  static_cast<double>(r.output_tokens) * spec->output_per_mtok) /
                 1e6;
  }
  // This run first (finalize mode may turn a refusal into the final call), then each ancestor;
  // an ancestor's refusal rolls back what was reserved below it.
  absl::Status status = ReserveLocal(r, /*count_step=*/true, /*final_call=*/false);
  if (!status.ok() && limits_.finalize_on_limit &&
      status.code() == absl::StatusCode::kResourceExhausted) {
    const absl::Status final_status = ReserveLocal(r, /*count_step=*/true, /*final_call=*/true);
    if (final_status.ok()) {
      r.final = true;
      status = absl::OkStatus();
    }
  }
  THRIFTY_RETURN_IF_ERROR(status);
  std::vector<AgentRun*> reserved = {this};
  for (AgentRun* ancestor = parent_.get(); ancestor != nullptr;
       ancestor = ancestor->parent_.get()) {
    absl::Status ancestor_status = ancestor->ReserveLocal(r, true, false);
    if (!ancestor_status.ok()) {
      for (AgentRun* run : reserved) {
        run->ReleaseLocal(r);
        MutexLock lock(&run->mu_);
        --run->counters_.steps;
        if (r.final && run == this) final_granted_ = false;
      }
      return ancestor_status;
    }
    reserved.push_back(ancestor);
  }
  MutexLock lock(&mu_);
  r.id = next_id_++;
  open_.emplace(r.id, r);
  return r;
}

absl::StatusOr<uint64_t> AgentRun::OldestReservation(std::string_view model) const {
  ReaderMutexLock lock(&mu_);
  uint64_t oldest = 0;
  for (const auto& [id, r] : open_) {
    if (r.model == model && (oldest == 0 || id < oldest)) oldest = id;
  }
  if (oldest == 0) {
    return absl::FailedPreconditionError(
        StrCat("after_call for '", model, "' without a matching before_call: no open reservation",
               " for that model (", open_.size(), " open in this run)"));
  }
  return oldest;
}

absl::StatusOr<double> AgentRun::AfterCall(uint64_t id, const cost::Usage& usage) {
  THRIFTY_RETURN_IF_ERROR(cost::ValidateUsage(usage));
  Reservation r;
  {
    MutexLock lock(&mu_);
    auto it = open_.find(id);
    if (it == open_.end()) {
      return absl::FailedPreconditionError(
          StrCat("after_call without a matching before_call: reservation ", id,
                 " is not open in this run (already settled or cancelled?)"));
    }
    r = it->second;
    open_.erase(it);
  }
  double cost = 0.0;
  if (catalog_) {
    THRIFTY_ASSIGN_OR_RETURN(const catalog::ModelSpec* spec, catalog_->Get(r.model));
    cost = cost::CostUsd(*spec, usage);
  }
  for (AgentRun* run = this; run != nullptr; run = run->parent_.get()) {
    run->SettleLocal(r, usage, cost);
  }
  return cost;
}

absl::Status AgentRun::Cancel(uint64_t id) {
  Reservation r;
  {
    MutexLock lock(&mu_);
    auto it = open_.find(id);
    if (it == open_.end()) {
      return absl::FailedPreconditionError(
          StrCat("cancel: reservation ", id, " is not open in this run"));
    }
    r = it->second;
    open_.erase(it);
  }
  for (AgentRun* run = this; run != nullptr; run = run->parent_.get()) run->ReleaseLocal(r);
  return absl::OkStatus();
}

absl::Status AgentRun::CountToolLocal(absl::Time now) {
  MutexLock lock(&mu_);
  THRIFTY_RETURN_IF_ERROR(CheckDeadlineLocked(now));
  if (limits_.max_tool_calls && counters_.tool_calls + 1 > *limits_.max_tool_calls) {
    return Refuse("tool_calls", StrCat("max_tool_calls=", *limits_.max_tool_calls, " reached"));
  }
  ++counters_.tool_calls;
  return absl::OkStatus();
}

void AgentRun::UncountToolLocal() {
  MutexLock lock(&mu_);
  --counters_.tool_calls;
}

absl::Status AgentRun::ToolCall(std::string_view tool, std::string_view arguments,
                                std::string* warning) {
  const absl::Time now = Now();
  std::vector<AgentRun*> counted;
  for (AgentRun* run = this; run != nullptr; run = run->parent_.get()) {
    absl::Status status = run->CountToolLocal(now);
    if (!status.ok()) {
      for (AgentRun* done : counted) done->UncountToolLocal();
      return status;
    }
    counted.push_back(run);
  }
  LoopVerdict verdict;
  {
    MutexLock lock(&mu_);
    verdict = loops_.OnToolCall(tool, arguments);
    if (verdict.action == LoopAction::kWarn) ++counters_.loop_warnings;
    if (verdict.action == LoopAction::kStop) {
      counters_.stopped = true;
      counters_.stop_reason = StrCat("loop: ", verdict.reason);
    }
  }
  if (verdict.action == LoopAction::kRefuse || verdict.action == LoopAction::kStop) {
    for (AgentRun* done : counted) done->UncountToolLocal();  // the refused call never ran
    return Refuse("loop", verdict.reason);
  }
  if (verdict.action == LoopAction::kWarn && warning != nullptr) *warning = verdict.reason;
  return absl::OkStatus();
}

absl::Status AgentRun::ToolError(std::string_view tool, std::string_view message,
                                 std::string* warning) {
  LoopVerdict verdict;
  {
    MutexLock lock(&mu_);
    ++counters_.tool_errors;
    verdict = loops_.OnToolError(tool, message);
    if (verdict.action == LoopAction::kWarn) ++counters_.loop_warnings;
    if (verdict.action == LoopAction::kStop) {
      counters_.stopped = true;
      counters_.stop_reason = StrCat("loop: ", verdict.reason);
    }
  }
  if (verdict.action == LoopAction::kStop) return Refuse("loop", verdict.reason);
  if (verdict.action == LoopAction::kWarn && warning != nullptr) *warning = verdict.reason;
  return absl::OkStatus();
}

double AgentRun::RemainingFraction() const {
  ReaderMutexLock lock(&mu_);
  const Counters& c = counters_;
  double remaining = 1.0;
  if (limits_.max_cost_usd) {
    remaining =
        std::min(remaining, 1.0 - (c.cost_usd + c.reserved_cost_usd) / *limits_.max_cost_usd);
  }
  if (limits_.max_input_tokens) {
    remaining =
        std::min(remaining, 1.0 - static_cast<double>(c.input_tokens + c.reserved_input_tokens) /
                                      static_cast<double>(*limits_.max_input_tokens));
  }
  if (limits_.max_output_tokens) {
    remaining =
        std::min(remaining, 1.0 - static_cast<double>(c.output_tokens + c.reserved_output_tokens) /
                                      static_cast<double>(*limits_.max_output_tokens));
  }
  return std::max(0.0, remaining);
}

double AgentRun::AdjustedThreshold(double base, double floor, std::string* reason) const {
  const double remaining = RemainingFraction();
  double threshold = base;
  std::string why = StrCat("budget ", static_cast<int>(remaining * 100), "% left: threshold kept");
  if (remaining < 0.2) {
    threshold = base - 0.10;
    why = StrCat("budget ", static_cast<int>(remaining * 100),
                 "% left (< 20%): threshold lowered by 0.10");
  } else if (remaining < 0.5) {
    threshold = base - 0.05;
    why = StrCat("budget ", static_cast<int>(remaining * 100),
                 "% left (< 50%): threshold lowered by 0.05");
  }
  if (threshold < floor) {
    threshold = floor;
    StrAppend(&why, ", held at the floor ", floor);
  }
  if (reason != nullptr) *reason = why;
  return std::max(threshold, std::min(base, floor));
}

void AgentRun::Stop(std::string_view reason) {
  MutexLock lock(&mu_);
  counters_.stopped = true;
  counters_.stop_reason = std::string(reason);
}

Counters AgentRun::counters() const {
  const absl::Time now = Now();
  ReaderMutexLock lock(&mu_);
  Counters c = counters_;
  c.elapsed_seconds = absl::ToDoubleSeconds(now - started_);
  return c;
}

}  // namespace thrifty::agent
