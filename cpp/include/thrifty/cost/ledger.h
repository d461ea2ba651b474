// Ledger: in-process cost accounting and attribution for every LLM call, with budgets, alerts,
// anomaly detection and exports (Prometheus text, JSONL log, OpenTelemetry-style attributes,
// versioned snapshots on disk).
//
// What it aggregates. Each Record() adds one call's cost, tokens (uncached input, cached input,
// cache writes, output, reasoning), a call count, its cache outcome, what each cost lever saved,
// and its latency (into a QuantileSketch: p50/p95/p99 within 1%) to four views: the total, its
// model, each of its tag values (tags are key -> value, e.g. feature=search, customer=acme), and
// its time bucket (bucket_seconds wide, one hour by default). Dollars are summed as integer
// nano-dollars (each call's cost rounded to 1e-9 USD), so totals are exact and independent of
// the order threads record in; budgets compare the same integers.
//
// Bounded memory (documented overflow):
//   - at most max_tag_keys distinct tag keys; tags under further keys are not aggregated
//     (counted in dropped_tags);
//   - at most max_tag_values values per key; further values aggregate under "__other__";
//   - at most max_models models; further models aggregate under "__other__";
//   - time buckets older than max_time_buckets behind the newest are dropped (records that old
//     still count in the total, model and tag views, and in dropped_time_records).
//
// Budgets (AddBudget): a limit in USD per period ("day" and "month" are UTC calendar periods,
// or N seconds: fixed windows aligned to the epoch) on every call carrying tag=value (tag "*":
// every call). Alerts fire once per period at 50%, 80% and 100% of the limit. A hard budget
// refuses calls: Check() says whether a call of an estimated cost fits; Reserve() atomically
// holds the estimate against every matching hard budget (settled + reserved + estimate <= limit
// or ResourceExhausted with the budget payload, a BudgetExceededError in Python) and
// Record(..., reservation) settles it (releasing the hold, counting the actual cost);
// Release() drops a hold whose call failed. As long as a call's actual cost does not exceed its
// reservation, settled spend never exceeds a hard limit, however many threads race. A call
// recorded without a reservation is counted as it is (spend is truthful), so it can overshoot.
//
// Alerts: budget thresholds; per-call cost spikes (AddSpikeAlert: over an absolute cost, or k
// times the median cost of the call's tag value); model drift (AddDriftAlert: a model's share of
// calls moves by more than N percentage points between consecutive windows); spend anomalies
// (hourly spend of each tag value and model against the median and MAD of its trailing
// baseline, see AnomalyOptions). Callbacks run on the recording thread after every ledger lock
// is released; the last kMaxAlerts alerts are kept for Alerts().
//
// Time comes from `clock` (seconds since the epoch, default the wall clock) or a per-record
// timestamp, so replay can simulate time.
//
// Thread-safety: thread-safe. Record() takes the recording thread's shard lock (shards are
// per-thread stripes, so threads rarely contend), one striped lock per tag, and the locks of
// the budgets and rules the call matches. Snapshot/export merge the shards under their locks.
#ifndef THRIFTY_COST_LEDGER_H_
#define THRIFTY_COST_LEDGER_H_

#include <atomic>
#include <cstdint>
#include <cstdio>  // std::FILE
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "thrifty/base/mutex.h"
#include "thrifty/catalog/catalog.h"
#include "thrifty/cost/quantile_sketch.h"
#include "thrifty/cost/usage.h"

namespace thrifty::cost {

// The payload (kind "budget") on a hard budget's refusal; the bindings raise BudgetExceededError.
inline constexpr std::string_view kBudgetPayloadUrl = "thrifty.dev/budget";

// How a call met the response caches.
enum class CacheOutcome { kNone = 0, kMiss = 1, kExactHit = 2, kSemanticHit = 3 };
inline constexpr int kCacheOutcomes = 4;
// "none", "miss", "exact", "semantic".
std::string_view CacheOutcomeName(CacheOutcome outcome);
// Accepts the names above (and "" for none); InvalidArgument otherwise.
absl::StatusOr<CacheOutcome> ParseCacheOutcome(std::string_view name);

struct Tag {
  std::string_view key;
  std::string_view value;
};

struct Saving {
  std::string_view lever;  // e.g. "exact_cache", "semantic_cache", "routing", "prompt_cache"
  double usd = 0.0;
};

// One call to record. Views must outlive the Record() call only.
struct CallRecord {
  std::string_view model;
  Usage usage;
  absl::Span<const Tag> tags;
  std::optional<double> cost_usd;  // absent: priced from the catalog
  std::optional<double> latency_s;
  CacheOutcome cache = CacheOutcome::kNone;
  absl::Span<const Saving> savings;
  std::optional<double> ts;  // seconds since the epoch; absent: the ledger's clock
  uint64_t reservation = 0;  // from Reserve(); 0: none
};

// Sums over a set of calls.
struct Aggregate {
  int64_t calls = 0;
  int64_t cost_nano = 0;  // USD * 1e9
  Usage tokens;
  int64_t cache[kCacheOutcomes] = {0, 0, 0, 0};
  absl::flat_hash_map<std::string, int64_t> savings_nano;  // lever -> USD * 1e9
  QuantileSketch latency_s;

  double cost_usd() const { return static_cast<double>(cost_nano) * 1e-9; }
  void Merge(const Aggregate& other);
};

struct Period {
  enum class Kind { kDay, kMonth, kSeconds };
  Kind kind = Kind::kDay;
  double seconds = 86400.0;  // kSeconds only

  // The index of the period holding `ts` and its [start, end) in epoch seconds.
  int64_t IndexOf(double ts) const;
  double Start(int64_t index) const;
  double End(int64_t index) const;
  std::string Name() const;  // "day", "month" or the seconds
};
// "day", "month", or a positive number of seconds written as a number ("3600").
absl::StatusOr<Period> ParsePeriod(std::string_view text);
absl::StatusOr<Period> PeriodOfSeconds(double seconds);

struct Alert {
  std::string kind;  // "budget", "spike", "drift", "anomaly"
  std::string message;
  std::string tag;         // tag key ("*" for every call, "model" for a model series)
  std::string value;       // tag value or model name
  std::string model;       // the call's model (spike, drift)
  double threshold = 0.0;  // budget: 0.5/0.8/1.0; spike: USD limit; drift: points; anomaly: USD
  double observed = 0.0;   // budget: USD spent; spike: call USD; drift: points moved; anomaly: USD
  double limit = 0.0;      // budget: limit USD; anomaly: baseline median USD; drift: old share
  double ts = 0.0;
  double period_start = 0.0;  // budget period / anomaly bucket / drift window start
};
using AlertCallback = std::function<void(const Alert&)>;

struct BudgetSpec {
  std::string tag;  // "*": every call
  std::string value;
  double limit_usd = 0.0;
  Period period;
  bool hard = false;
  AlertCallback on_alert;  // may be empty; the ledger-wide callback also fires
};

struct BudgetStatus {
  uint64_t id = 0;
  std::string tag, value;
  double limit_usd = 0.0;
  std::string period;
  bool hard = false;
  double spent_usd = 0.0;     // settled in the current period
  double reserved_usd = 0.0;  // open reservations
  double period_start = 0.0;
  double period_end = 0.0;
};

// Per-call spike: cost > absolute_usd, or cost > k * median cost of the call's value of `tag`
// (after min_calls calls of that value). At least one of absolute_usd, k.
struct SpikeSpec {
  std::string tag = "*";
  std::optional<double> absolute_usd;
  std::optional<double> k;
  int64_t min_calls = 20;
  AlertCallback on_alert;
};

// A model's share of calls moves more than `points` percentage points from one window to the
// next (both with at least min_calls calls).
struct DriftSpec {
  double window_seconds = 3600.0;
  double points = 10.0;
  int64_t min_calls = 50;
  AlertCallback on_alert;
};

// Spend anomalies: for every tag value and every model, a time bucket's spend is anomalous when
// it exceeds median + k * max(1.4826 * MAD, min_relative * median) of the previous
// baseline_buckets buckets (buckets since the series' first call, empty ones count as 0; at
// least min_history of them) and exceeds the median by at least min_usd. Only rises alert.
struct AnomalyOptions {
  bool enabled = true;
  int baseline_buckets = 24;
  int min_history = 6;
  double k = 4.0;
  double min_relative = 0.1;
  double min_usd = 0.01;
};

struct Anomaly {
  std::string tag;  // tag key, or "model"
  std::string value;
  double bucket_start = 0.0;
  double spend_usd = 0.0;
  double baseline_median_usd = 0.0;
  double baseline_mad_usd = 0.0;
  double threshold_usd = 0.0;
  bool partial = false;  // the bucket is still open
};

struct LedgerOptions {
  double bucket_seconds = 3600.0;
  int max_time_buckets = 168;  // also the length of each anomaly series
  int max_tag_keys = 32;
  int max_tag_values = 1000;  // per key
  int max_models = 256;
  int shards = 0;  // 0: hardware threads, clamped to [1, 16]
  AnomalyOptions anomaly;
  std::function<double()> clock;  // seconds since the epoch; default the wall clock
  AlertCallback on_alert;         // every alert, after any rule-specific callback
};
absl::Status ValidateLedgerOptions(const LedgerOptions& options);

// What Record() hands to record hooks (the OpenTelemetry callback, the JSONL log).
struct RecordEvent {
  double ts = 0.0;
  std::string_view model;
  std::string_view provider;  // from the catalog, "" when unknown
  const Usage* usage = nullptr;
  absl::Span<const Tag> tags;
  double cost_usd = 0.0;
  std::optional<double> latency_s;
  CacheOutcome cache = CacheOutcome::kNone;
  absl::Span<const Saving> savings;
};
using RecordHook = std::function<void(const RecordEvent&)>;

// Flat attributes for an OpenTelemetry span or metric: GenAI semantic-convention names where
// they exist (gen_ai.request.model, gen_ai.provider.name, gen_ai.usage.input_tokens with cached
// included, gen_ai.usage.output_tokens, gen_ai.usage.cache_read.input_tokens,
// gen_ai.usage.cache_creation.input_tokens, gen_ai.usage.reasoning.output_tokens), thrifty.*
// otherwise (thrifty.cost_usd, thrifty.latency_s, thrifty.cache, thrifty.tag.<key>,
// thrifty.savings_usd.<lever>).
nlohmann::json OtelAttributes(const RecordEvent& event);
// One JSONL log line (no trailing newline).
std::string JsonlLine(const RecordEvent& event);

class Ledger {
 public:
  static constexpr size_t kMaxAlerts = 1000;
  static constexpr std::string_view kOther = "__other__";

  // `catalog` may be null: then every Record() needs cost_usd.
  static absl::StatusOr<std::unique_ptr<Ledger>> Create(
      std::shared_ptr<const catalog::Catalog> catalog, LedgerOptions options = {});
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Records one call; returns its cost in USD. Errors (nothing recorded): InvalidArgument for
  // negative usage, cost, latency or a malformed tag; NotFound for a model absent from the
  // catalog when cost_usd is not given; NotFound for an unknown reservation.
  absl::StatusOr<double> Record(const CallRecord& call);

  // Budgets.
  absl::StatusOr<uint64_t> AddBudget(BudgetSpec spec);
  absl::Status RemoveBudget(uint64_t id);
  // OK when a call of `estimated_cost_usd` with `tags` fits every matching hard budget now.
  absl::Status Check(absl::Span<const Tag> tags, double estimated_cost_usd);
  // Holds the estimate against every matching hard budget; settle with Record(reservation=id).
  absl::StatusOr<uint64_t> Reserve(absl::Span<const Tag> tags, double estimated_cost_usd);
  absl::Status Release(uint64_t reservation);
  std::vector<BudgetStatus> Budgets();

  // Alert rules; each returns an id (rules stay for the ledger's life).
  absl::StatusOr<uint64_t> AddSpikeAlert(SpikeSpec spec);
  absl::StatusOr<uint64_t> AddDriftAlert(DriftSpec spec);
  std::vector<Alert> Alerts() const;

  // Anomalies over every retained bucket (the open one flagged partial), oldest first.
  std::vector<Anomaly> Anomalies();

  // Hooks run after each successful Record(), outside ledger locks.
  void AddRecordHook(RecordHook hook);
  // Appends one JSON line per record to `path` ("" stops). The file is flushed per line.
  absl::Status SetLogPath(const std::string& path);

  // {"total_cost_usd", "calls", "total": agg, "by_model": {m: agg}, "by_tag": {k: {v: agg}},
  //  "by_time": [{"start", "end", ...agg}], "budgets": [...], "dropped": {...}} where agg =
  //  {calls, cost_usd, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,
  //   reasoning_tokens, cache: {none, miss, exact, semantic}, savings_usd: {lever: usd},
  //   latency_s: {count, mean, p50, p95, p99}}.
  nlohmann::json Snapshot();
  // Prometheus text exposition format (version 0.0.4).
  std::string Prometheus();

  // Persistence: a versioned JSON file written to path + ".tmp" then renamed over `path`, so a
  // crash never leaves a torn file. Load replaces this ledger's aggregates, series and budget
  // spend (matched to budgets by tag, value and period; budgets added later pick it up too).
  // A corrupt, truncated or foreign file is DataLoss and leaves the ledger unchanged.
  absl::Status Save(const std::string& path);
  absl::Status Load(const std::string& path);

  double Now() const;
  const LedgerOptions& options() const { return options_; }

 private:
  struct Shard;
  struct SeriesStripe;
  struct Series;
  struct BudgetState;
  struct SpikeRule;
  struct DriftRule;
  struct Pending;

  Ledger(std::shared_ptr<const catalog::Catalog> catalog, LedgerOptions options);

  Shard& MyShard();
  int64_t BucketOf(double ts) const;
  // Resolves `key`/`value` (admitting new values under the caps) and adds `cost_nano` to the
  // series of `bucket`. Sets `*composite` to the aggregation key, or empty when dropped.
  void TouchSeries(std::string_view key, std::string_view value, int64_t bucket, int64_t cost_nano,
                   std::string* composite);
  void MatchBudgets(absl::Span<const Tag> tags, std::vector<std::shared_ptr<BudgetState>>* out)
      ABSL_SHARED_LOCKS_REQUIRED(budgets_mu_);
  absl::Status Admit(absl::Span<const Tag> tags, int64_t estimate_nano, double now,
                     uint64_t* reservation);
  void SettleBudgets(absl::Span<const Tag> tags, int64_t cost_nano, double now,
                     uint64_t reservation, Pending* pending);
  void RunRules(const CallRecord& call, double cost_usd, double ts, Pending* pending);
  void MaybeCloseBuckets(int64_t bucket, Pending* pending);
  void EvaluateBucket(int64_t bucket, bool partial, std::vector<Anomaly>* out);
  void Deliver(Pending* pending);
  Aggregate MergedTotal();

  const std::shared_ptr<const catalog::Catalog> catalog_;
  const LedgerOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::unique_ptr<SeriesStripe>> stripes_;
  std::atomic<int64_t> latest_bucket_;
  std::atomic<int64_t> evaluated_bucket_;
  std::atomic<int64_t> dropped_tags_{0};
  std::atomic<int64_t> dropped_time_records_{0};

  Mutex keys_mu_;  // tag key registry (caps)
  absl::flat_hash_map<std::string, int64_t> key_values_ ABSL_GUARDED_BY(keys_mu_);
  int64_t models_ ABSL_GUARDED_BY(keys_mu_) = 0;

  Mutex budgets_mu_;
  std::vector<std::shared_ptr<BudgetState>> budgets_ ABSL_GUARDED_BY(budgets_mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(budgets_mu_) = 1;
  absl::flat_hash_map<std::string, nlohmann::json> restored_budgets_ ABSL_GUARDED_BY(budgets_mu_);
  std::atomic<bool> have_budgets_{false};

  Mutex reservations_mu_;
  absl::flat_hash_map<uint64_t, std::pair<int64_t, std::vector<std::shared_ptr<BudgetState>>>>
      reservations_ ABSL_GUARDED_BY(reservations_mu_);
  uint64_t next_reservation_ ABSL_GUARDED_BY(reservations_mu_) = 1;

  Mutex rules_mu_;
  std::vector<std::shared_ptr<SpikeRule>> spikes_ ABSL_GUARDED_BY(rules_mu_);
  std::vector<std::shared_ptr<DriftRule>> drifts_ ABSL_GUARDED_BY(rules_mu_);
  std::shared_ptr<const std::vector<RecordHook>> hooks_ ABSL_GUARDED_BY(rules_mu_);
  std::atomic<bool> have_rules_{false};

  mutable Mutex alerts_mu_;
  std::deque<Alert> alerts_ ABSL_GUARDED_BY(alerts_mu_);

  Mutex log_mu_;
  std::FILE* log_ ABSL_GUARDED_BY(log_mu_) = nullptr;
  std::atomic<bool> have_log_{false};
};

}  // namespace thrifty::cost

#endif  // THRIFTY_COST_LEDGER_H_
