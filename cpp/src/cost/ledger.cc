#include "thrifty/cost/ledger.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>  // std::strerror
#include <limits>
#include <thread>  // std::thread::hardware_concurrency

#include "absl/container/inlined_vector.h"
#include "absl/strings/cord.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ledger_state.h"
#include "thrifty/base/strings.h"
#include "thrifty/cost/pricing.h"

namespace thrifty::cost {
namespace {

constexpr size_t kStripes = 64;
constexpr size_t kMaxLevers = 32;
constexpr size_t kMaxTagKeyBytes = 128;
constexpr size_t kMaxTagValueBytes = 512;

int64_t ToNano(double usd) { return std::llround(usd * 1e9); }

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

std::string Composite(std::string_view key, std::string_view value) {
  std::string out;
  out.reserve(key.size() + value.size() + 1);
  out.append(key);
  out.push_back(kSep);
  out.append(value);
  return out;
}

absl::Status BudgetRefusal(std::string message) {
  absl::Status status = absl::ResourceExhaustedError(message);
  status.SetPayload(ToAbsl(kBudgetPayloadUrl), absl::Cord("budget"));
  return status;
}

std::string Usd(double usd) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "$%.6g", usd);
  return buf;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(mid), v.end());
  double m = v[mid];
  if (v.size() % 2 == 0) {
    m = (m + *std::max_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(mid))) / 2.0;
  }
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Small value types.

std::string_view CacheOutcomeName(CacheOutcome outcome) {
  switch (outcome) {
    case CacheOutcome::kMiss:
      return "miss";
    case CacheOutcome::kExactHit:
      return "exact";
    case CacheOutcome::kSemanticHit:
      return "semantic";
    case CacheOutcome::kNone:
      break;
  }
  return "none";
}

absl::StatusOr<CacheOutcome> ParseCacheOutcome(std::string_view name) {
  if (name.empty() || name == "none") return CacheOutcome::kNone;
  if (name == "miss") return CacheOutcome::kMiss;
  if (name == "exact") return CacheOutcome::kExactHit;
  if (name == "semantic") return CacheOutcome::kSemanticHit;
  return absl::InvalidArgumentError(
      StrCat("cache: unknown outcome '", name, "' (accepted: None, 'miss', 'exact', 'semantic')"));
}

void Aggregate::Merge(const Aggregate& other) {
  calls += other.calls;
  cost_nano += other.cost_nano;
  tokens += other.tokens;
  for (int i = 0; i < kCacheOutcomes; ++i) cache[i] += other.cache[i];
  for (const auto& [lever, nano] : other.savings_nano) savings_nano[lever] += nano;
  latency_s.Merge(other.latency_s);
}

int64_t Period::IndexOf(double ts) const {
  switch (kind) {
    case Kind::kDay:
      return static_cast<int64_t>(std::floor(ts / 86400.0));
    case Kind::kMonth: {
      const absl::CivilSecond cs = absl::ToCivilSecond(
          absl::FromUnixSeconds(static_cast<int64_t>(std::floor(ts))), absl::UTCTimeZone());
      return cs.year() * 12 + (cs.month() - 1);
    }
    case Kind::kSeconds:
      return static_cast<int64_t>(std::floor(ts / seconds));
  }
  return 0;
}

double Period::Start(int64_t index) const {
  switch (kind) {
    case Kind::kDay:
      return static_cast<double>(index) * 86400.0;
    case Kind::kMonth: {
      const int64_t year = index >= 0 ? index / 12 : (index - 11) / 12;
      const int month = static_cast<int>(index - year * 12) + 1;
      return static_cast<double>(
          absl::ToUnixSeconds(absl::FromCivil(absl::CivilMonth(year, month), absl::UTCTimeZone())));
    }
    case Kind::kSeconds:
      return static_cast<double>(index) * seconds;
  }
  return 0.0;
}

double Period::End(int64_t index) const { return Start(index + 1); }

std::string Period::Name() const {
  switch (kind) {
    case Kind::kDay:
      return "day";
    case Kind::kMonth:
      return "month";
    case Kind::kSeconds:
      break;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%gs", seconds);
  return buf;
}

absl::StatusOr<Period> PeriodOfSeconds(double seconds) {
  if (!(seconds > 0) || std::isinf(seconds)) {
    return absl::InvalidArgumentError(
        StrCat("period: ", seconds,
               " seconds is not a positive finite number (accepted: 'day', 'month', or seconds "
               "> 0)"));
  }
  Period p;
  p.kind = Period::Kind::kSeconds;
  p.seconds = seconds;
  return p;
}

absl::StatusOr<Period> ParsePeriod(std::string_view text) {
  Period p;
  if (text == "day" || text == "daily") return p;
  if (text == "month" || text == "monthly") {
    p.kind = Period::Kind::kMonth;
    return p;
  }
  std::string s(text);
  if (!s.empty() && s.back() == 's') s.pop_back();
  char* end = nullptr;
  const double seconds = s.empty() ? 0.0 : std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) {
    return absl::InvalidArgumentError(
        StrCat("period: unknown period '", text, "' (accepted: 'day', 'month', or seconds > 0)"));
  }
  return PeriodOfSeconds(seconds);
}

absl::Status ValidateLedgerOptions(const LedgerOptions& o) {
  if (!(o.bucket_seconds > 0) || std::isinf(o.bucket_seconds)) {
    return absl::InvalidArgumentError(
        StrCat("bucket_seconds: ", o.bucket_seconds, " (accepted: a positive number)"));
  }
  if (o.max_time_buckets < 2 || o.max_time_buckets > 100000) {
    return absl::InvalidArgumentError(
        StrCat("max_time_buckets: ", o.max_time_buckets, " (accepted: 2..100000)"));
  }
  if (o.max_tag_keys < 1 || o.max_tag_values < 1 || o.max_models < 1) {
    return absl::InvalidArgumentError("max_tag_keys, max_tag_values and max_models must be >= 1");
  }
  if (o.shards < 0 || o.shards > 256) {
    return absl::InvalidArgumentError(StrCat("shards: ", o.shards, " (accepted: 0..256)"));
  }
  const AnomalyOptions& a = o.anomaly;
  if (a.baseline_buckets < 2 || a.baseline_buckets >= o.max_time_buckets) {
    return absl::InvalidArgumentError(
        StrCat("anomaly baseline_buckets: ", a.baseline_buckets,
               " (accepted: 2..max_time_buckets-1 = ", o.max_time_buckets - 1, ")"));
  }
  if (a.min_history < 1 || a.min_history > a.baseline_buckets) {
    return absl::InvalidArgumentError(
        StrCat("anomaly min_history: ", a.min_history, " (accepted: 1..baseline_buckets)"));
  }
  if (!(a.k > 0) || !(a.min_relative >= 0) || !(a.min_usd >= 0)) {
    return absl::InvalidArgumentError("anomaly k must be > 0, min_relative and min_usd >= 0");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Construction.

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::Create(
    std::shared_ptr<const catalog::Catalog> catalog, LedgerOptions options) {
  if (absl::Status s = ValidateLedgerOptions(options); !s.ok()) return s;
  return std::unique_ptr<Ledger>(new Ledger(std::move(catalog), std::move(options)));
}

Ledger::Ledger(std::shared_ptr<const catalog::Catalog> catalog, LedgerOptions options)
    : catalog_(std::move(catalog)),
      options_(std::move(options)),
      latest_bucket_(kNoBucket),
      evaluated_bucket_(kNoBucket),
      hooks_(std::make_shared<const std::vector<RecordHook>>()) {
  int shards = options_.shards;
  if (shards == 0) {
    shards = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 16);
  }
  for (int i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
  for (size_t i = 0; i < kStripes; ++i) stripes_.push_back(std::make_unique<SeriesStripe>());
}

Ledger::~Ledger() {
  MutexLock l(&log_mu_);
  if (log_ != nullptr) std::fclose(log_);
}

double Ledger::Now() const {
  if (options_.clock) return options_.clock();
  return static_cast<double>(absl::ToUnixMicros(absl::Now())) * 1e-6;
}

Ledger::Shard& Ledger::MyShard() {
  static std::atomic<size_t> next{0};
  thread_local const size_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return *shards_[mine % shards_.size()];
}

int64_t Ledger::BucketOf(double ts) const {
  return static_cast<int64_t>(std::floor(ts / options_.bucket_seconds));
}

// ---------------------------------------------------------------------------------------------
// Recording.

void Ledger::TouchSeries(std::string_view key, std::string_view value, int64_t bucket,
                         int64_t cost_nano, std::string* composite) {
  const bool is_model = key.empty();
  *composite = is_model ? StrCat(std::string(1, kModelMark), value) : Composite(key, value);
  for (int attempt = 0; attempt < 2; ++attempt) {
    SeriesStripe& stripe = *stripes_[absl::HashOf(*composite) % kStripes];
    MutexLock l(&stripe.mu);
    auto it = stripe.map.find(*composite);
    if (it == stripe.map.end()) {
      bool admitted = false;
      {
        MutexLock k(&keys_mu_);
        if (is_model) {
          if (models_ < options_.max_models) {
            ++models_;
            admitted = true;
          }
        } else {
          auto kit = key_values_.find(ToAbsl(key));
          if (kit == key_values_.end()) {
            if (static_cast<int>(key_values_.size()) >= options_.max_tag_keys) {
              dropped_tags_.fetch_add(1, std::memory_order_relaxed);
              composite->clear();
              return;
            }
            kit = key_values_.emplace(std::string(key), 0).first;
          }
          if (kit->second < options_.max_tag_values) {
            ++kit->second;
            admitted = true;
          }
        }
      }
      if (!admitted && attempt == 0) {
        // Over the cap: aggregate under "__other__" (admitted unconditionally below).
        *composite = is_model ? StrCat(std::string(1, kModelMark), kOther) : Composite(key, kOther);
        if (value == kOther)
          admitted = true;
        else
          continue;
      }
      Series fresh;
      fresh.slots.assign(static_cast<size_t>(options_.max_time_buckets), {kNoBucket, 0});
      it = stripe.map.emplace(*composite, std::move(fresh)).first;
    }
    Series& s = it->second;
    const auto n = static_cast<int64_t>(s.slots.size());
    auto& slot = s.slots[static_cast<size_t>(((bucket % n) + n) % n)];
    if (slot.first == bucket) {
      slot.second += cost_nano;
    } else if (slot.first < bucket) {
      slot = {bucket, cost_nano};
    }
    if (s.first_bucket == kNoBucket || bucket < s.first_bucket) s.first_bucket = bucket;
    return;
  }
}

absl::StatusOr<double> Ledger::Record(const CallRecord& call) {
  if (call.model.empty()) return absl::InvalidArgumentError("model: empty (accepted: a name)");
  if (absl::Status s = ValidateUsage(call.usage); !s.ok()) {
    return absl::InvalidArgumentError(StrCat("usage for '", call.model, "': ", s.message()));
  }
  if (call.cost_usd && (!(*call.cost_usd >= 0) || std::isinf(*call.cost_usd))) {
    return absl::InvalidArgumentError(
        StrCat("cost_usd: ", *call.cost_usd, " (accepted: a finite number >= 0, or None)"));
  }
  if (call.latency_s && (!(*call.latency_s >= 0) || std::isinf(*call.latency_s))) {
    return absl::InvalidArgumentError(
        StrCat("latency_s: ", *call.latency_s, " (accepted: a finite number >= 0, or None)"));
  }
  if (call.ts && !std::isfinite(*call.ts)) {
    return absl::InvalidArgumentError("ts: not a finite number of seconds since the epoch");
  }
  for (size_t i = 0; i < call.tags.size(); ++i) {
    const Tag& t = call.tags[i];
    if (t.key.empty() || t.key.size() > kMaxTagKeyBytes || HasControl(t.key) ||
        t.value.size() > kMaxTagValueBytes) {
      return absl::InvalidArgumentError(StrCat(
          "tags['", t.key, "']: a tag key must be 1..", kMaxTagKeyBytes,
          " bytes without control characters, and a value at most ", kMaxTagValueBytes, " bytes"));
    }
  }
  for (const Saving& s : call.savings) {
    if (!std::isfinite(s.usd) || s.lever.empty() || HasControl(s.lever)) {
      return absl::InvalidArgumentError(
          StrCat("savings['", s.lever, "']: a lever needs a name and a finite USD amount"));
    }
  }
  const catalog::ModelSpec* spec = catalog_ ? catalog_->Find(call.model) : nullptr;
  double cost = 0.0;
  if (call.cost_usd) {
    cost = *call.cost_usd;
  } else if (spec != nullptr) {
    cost = CostUsd(*spec, call.usage);
  } else if (catalog_ == nullptr) {
    return absl::NotFoundError(
        StrCat("model '", call.model, "': this ledger has no catalog, so pass cost_usd="));
  } else {
    absl::StatusOr<const catalog::ModelSpec*> found = catalog_->Get(call.model);
    return absl::NotFoundError(
        StrCat(found.status().message(), "; pass cost_usd= for a model outside the catalog"));
  }
  if (call.reservation != 0) {
    MutexLock l(&reservations_mu_);
    if (!reservations_.contains(call.reservation)) {
      return absl::NotFoundError(
          StrCat("reservation ", call.reservation, ": unknown or already settled/released"));
    }
  }

  const std::string_view model = spec != nullptr ? std::string_view(spec->name) : call.model;
  const double ts = call.ts ? *call.ts : Now();
  const int64_t bucket = BucketOf(ts);
  const int64_t cost_nano = ToNano(cost);
  int64_t latest = latest_bucket_.load(std::memory_order_relaxed);
  while (bucket > latest &&
         !latest_bucket_.compare_exchange_weak(latest, bucket, std::memory_order_relaxed)) {
  }
  if (latest < bucket) latest = bucket;
  const bool in_window = bucket > latest - options_.max_time_buckets;

  absl::InlinedVector<std::string, 4> tag_keys(call.tags.size());
  for (size_t i = 0; i < call.tags.size(); ++i) {
    TouchSeries(call.tags[i].key, call.tags[i].value, bucket, cost_nano, &tag_keys[i]);
  }
  std::string model_key;
  TouchSeries("", model, bucket, cost_nano, &model_key);

  auto add = [&](Aggregate& a) {
    ++a.calls;
    a.cost_nano += cost_nano;
    a.tokens += call.usage;
    ++a.cache[static_cast<int>(call.cache)];
    for (const Saving& s : call.savings) {
      auto it = a.savings_nano.find(ToAbsl(s.lever));
      if (it == a.savings_nano.end()) {
        it = a.savings_nano
                 .emplace(a.savings_nano.size() < kMaxLevers ? std::string(s.lever)
                                                             : std::string(kOther),
                          0)
                 .first;
      }
      it->second += ToNano(s.usd);
    }
    if (call.latency_s) a.latency_s.Add(*call.latency_s);
  };
  {
    Shard& shard = MyShard();
    MutexLock l(&shard.mu);
    add(shard.total);
    add(shard.by_model[ToAbsl(std::string_view(model_key).substr(1))]);
    for (const std::string& k : tag_keys) {
      if (!k.empty()) add(shard.by_tag[k]);
    }
    if (in_window) {
      auto it = shard.by_time.find(bucket);
      if (it == shard.by_time.end()) {
        absl::erase_if(shard.by_time, [&](const auto& kv) {
          return kv.first <= latest - options_.max_time_buckets;
        });
        it = shard.by_time.emplace(bucket, Aggregate{}).first;
      }
      add(it->second);
    }
  }
  if (!in_window) dropped_time_records_.fetch_add(1, std::memory_order_relaxed);

  Pending pending;
  if (call.reservation != 0 || have_budgets_.load(std::memory_order_acquire)) {
    SettleBudgets(call.tags, cost_nano, ts, call.reservation, &pending);
  }
  if (have_rules_.load(std::memory_order_acquire)) RunRules(call, cost, ts, &pending);
  if (options_.anomaly.enabled) MaybeCloseBuckets(bucket, &pending);

  if (have_rules_.load(std::memory_order_acquire) || have_log_.load(std::memory_order_acquire)) {
    RecordEvent event;
    event.ts = ts;
    event.model = model;
    event.provider = spec != nullptr ? std::string_view(spec->provider) : std::string_view();
    event.usage = &call.usage;
    event.tags = call.tags;
    event.cost_usd = cost;
    event.latency_s = call.latency_s;
    event.cache = call.cache;
    event.savings = call.savings;
    if (have_log_.load(std::memory_order_acquire)) {
      const std::string line = JsonlLine(event) + "\n";
      MutexLock l(&log_mu_);
      if (log_ != nullptr) {
        std::fwrite(line.data(), 1, line.size(), log_);
        std::fflush(log_);
      }
    }
    std::shared_ptr<const std::vector<RecordHook>> hooks;
    {
      ReaderMutexLock l(&rules_mu_);
      hooks = hooks_;
    }
    for (const RecordHook& hook : *hooks) hook(event);
  }
  Deliver(&pending);
  return cost;
}

// ---------------------------------------------------------------------------------------------
// Budgets.

absl::StatusOr<uint64_t> Ledger::AddBudget(BudgetSpec spec) {
  if (spec.tag.empty() || HasControl(spec.tag)) {
    return absl::InvalidArgumentError(
        "budget tag: empty or with control characters (accepted: a tag key, or '*' for every "
        "call)");
  }
  if (!(spec.limit_usd > 0) || std::isinf(spec.limit_usd)) {
    return absl::InvalidArgumentError(StrCat("budget ", spec.tag, "=", spec.value, ": limit_usd ",
                                             spec.limit_usd, " is not a positive finite number"));
  }
  auto state = std::make_shared<BudgetState>();
  state->spec = std::move(spec);
  state->limit_nano = ToNano(state->spec.limit_usd);
  MutexLock l(&budgets_mu_);
  for (const auto& b : budgets_) {
    if (b->spec.tag == state->spec.tag && b->spec.value == state->spec.value &&
        b->spec.period.Name() == state->spec.period.Name()) {
      return absl::AlreadyExistsError(StrCat(b->Name(), " already exists (id ", b->id, ")"));
    }
  }
  state->id = next_id_++;
  if (auto it = restored_budgets_.find(state->RestoreKey()); it != restored_budgets_.end()) {
    MutexLock b(&state->mu);
    state->period = it->second.at("period_index").get<int64_t>();
    state->settled_nano = it->second.at("settled_nano").get<int64_t>();
    state->fired = it->second.at("fired").get<int>();
  }
  budgets_.push_back(state);
  have_budgets_.store(true, std::memory_order_release);
  return state->id;
}

absl::Status Ledger::RemoveBudget(uint64_t id) {
  MutexLock l(&budgets_mu_);
  auto it =
      std::find_if(budgets_.begin(), budgets_.end(), [&](const auto& b) { return b->id == id; });
  if (it == budgets_.end()) return absl::NotFoundError(StrCat("budget id ", id, ": unknown"));
  budgets_.erase(it);
  return absl::OkStatus();
}

void Ledger::MatchBudgets(absl::Span<const Tag> tags,
                          std::vector<std::shared_ptr<BudgetState>>* out) {
  for (const auto& b : budgets_) {
    bool match = b->spec.tag == "*";
    for (const Tag& t : tags) {
      if (match) break;
      match = t.key == b->spec.tag && t.value == b->spec.value;
    }
    if (match) out->push_back(b);
  }
}

// Locks every matching hard budget in id order (budgets_ is in id order), so two admissions
// never deadlock and the check-and-hold is atomic across budgets.
absl::Status Ledger::Admit(absl::Span<const Tag> tags, int64_t estimate_nano, double now,
                           uint64_t* reservation) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::vector<std::shared_ptr<BudgetState>> matched;
  {
    ReaderMutexLock l(&budgets_mu_);
    MatchBudgets(tags, &matched);
  }
  matched.erase(
      std::remove_if(matched.begin(), matched.end(), [](const auto& b) { return !b->spec.hard; }),
      matched.end());
  for (auto& b : matched) b->mu.Lock();
  absl::Status status;
  for (auto& b : matched) {
    b->Roll(b->spec.period.IndexOf(now));
    if (b->settled_nano + b->reserved_nano + estimate_nano > b->limit_nano) {
      status = BudgetRefusal(StrCat(
          b->Name(), " (hard) would be exceeded: spent ", Usd(b->settled_nano * 1e-9),
          " + reserved ", Usd(b->reserved_nano * 1e-9), " + this call's estimate ",
          Usd(estimate_nano * 1e-9), " > limit ", Usd(b->spec.limit_usd), " for the period from ",
          absl::FormatTime(
              "%Y-%m-%dT%H:%M:%SZ",
              absl::FromUnixSeconds(static_cast<int64_t>(b->spec.period.Start(b->period))),
              absl::UTCTimeZone())));
      break;
    }
  }
  if (status.ok() && reservation != nullptr) {
    for (auto& b : matched) b->reserved_nano += estimate_nano;
  }
  for (auto& b : matched) b->mu.Unlock();
  if (status.ok() && reservation != nullptr) {
    MutexLock l(&reservations_mu_);
    *reservation = next_reservation_++;
    reservations_.emplace(*reservation, std::make_pair(estimate_nano, std::move(matched)));
  }
  return status;
}

absl::Status Ledger::Check(absl::Span<const Tag> tags, double estimated_cost_usd) {
  if (!(estimated_cost_usd >= 0) || std::isinf(estimated_cost_usd)) {
    return absl::InvalidArgumentError(
        StrCat("estimated_cost_usd: ", estimated_cost_usd, " (accepted: a finite number >= 0)"));
  }
  if (!have_budgets_.load(std::memory_order_acquire)) return absl::OkStatus();
  return Admit(tags, ToNano(estimated_cost_usd), Now(), nullptr);
}

absl::StatusOr<uint64_t> Ledger::Reserve(absl::Span<const Tag> tags, double estimated_cost_usd) {
  if (!(estimated_cost_usd >= 0) || std::isinf(estimated_cost_usd)) {
    return absl::InvalidArgumentError(
        StrCat("estimated_cost_usd: ", estimated_cost_usd, " (accepted: a finite number >= 0)"));
  }
  uint64_t id = 0;
  if (absl::Status s = Admit(tags, ToNano(estimated_cost_usd), Now(), &id); !s.ok()) return s;
  return id;
}

absl::Status Ledger::Release(uint64_t reservation) {
  std::pair<int64_t, std::vector<std::shared_ptr<BudgetState>>> held;
  {
    MutexLock l(&reservations_mu_);
    auto it = reservations_.find(reservation);
    if (it == reservations_.end()) {
      return absl::NotFoundError(
          StrCat("reservation ", reservation, ": unknown or already settled/released"));
    }
    held = std::move(it->second);
    reservations_.erase(it);
  }
  for (auto& b : held.second) {
    MutexLock l(&b->mu);
    b->reserved_nano = std::max<int64_t>(0, b->reserved_nano - held.first);
  }
  return absl::OkStatus();
}

void Ledger::SettleBudgets(absl::Span<const Tag> tags, int64_t cost_nano, double now,
                           uint64_t reservation, Pending* pending) {
  if (reservation != 0) {
    // Validated in Record(); a concurrent Release of the same id makes this a no-op.
    Release(reservation).IgnoreError();
  }
  std::vector<std::shared_ptr<BudgetState>> matched;
  {
    ReaderMutexLock l(&budgets_mu_);
    MatchBudgets(tags, &matched);
  }
  static constexpr double kThresholds[] = {0.5, 0.8, 1.0};
  for (auto& b : matched) {
    MutexLock l(&b->mu);
    if (!b->Roll(b->spec.period.IndexOf(now))) continue;  // a past period: not this budget's
    b->settled_nano += cost_nano;
    for (int i = 0; i < 3; ++i) {
      if ((b->fired & (1 << i)) != 0) continue;
      if (static_cast<double>(b->settled_nano) <
          kThresholds[i] * static_cast<double>(b->limit_nano)) {
        continue;
      }
      b->fired |= 1 << i;
      Alert a;
      a.kind = "budget";
      a.tag = b->spec.tag;
      a.value = b->spec.value;
      a.threshold = kThresholds[i];
      a.observed = static_cast<double>(b->settled_nano) * 1e-9;
      a.limit = b->spec.limit_usd;
      a.ts = now;
      a.period_start = b->spec.period.Start(b->period);
      a.message = StrCat(b->Name(), ": ", static_cast<int>(kThresholds[i] * 100),
                         "% reached (spent ", Usd(a.observed), " of ", Usd(a.limit), ")");
      pending->alerts.emplace_back(b->spec.on_alert, std::move(a));
    }
  }
}

std::vector<BudgetStatus> Ledger::Budgets() {
  std::vector<std::shared_ptr<BudgetState>> all;
  {
    ReaderMutexLock l(&budgets_mu_);
    all = budgets_;
  }
  const double now = Now();
  std::vector<BudgetStatus> out;
  for (auto& b : all) {
    MutexLock l(&b->mu);
    b->Roll(b->spec.period.IndexOf(now));
    BudgetStatus s;
    s.id = b->id;
    s.tag = b->spec.tag;
    s.value = b->spec.value;
    s.limit_usd = b->spec.limit_usd;
    s.period = b->spec.period.Name();
    s.hard = b->spec.hard;
    s.spent_usd = static_cast<double>(b->settled_nano) * 1e-9;
    s.reserved_usd = static_cast<double>(b->reserved_nano) * 1e-9;
    s.period_start = b->spec.period.Start(b->period);
    s.period_end = b->spec.period.End(b->period);
    out.push_back(std::move(s));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Spike and drift rules, hooks.

absl::StatusOr<uint64_t> Ledger::AddSpikeAlert(SpikeSpec spec) {
  if (!spec.absolute_usd && !spec.k) {
    return absl::InvalidArgumentError("spike alert: give absolute_usd, k, or both");
  }
  if ((spec.absolute_usd && !(*spec.absolute_usd > 0)) || (spec.k && !(*spec.k > 1))) {
    return absl::InvalidArgumentError(
        "spike alert: absolute_usd must be > 0 and k > 1 (a multiple of the median)");
  }
  if (spec.tag.empty() || spec.min_calls < 1) {
    return absl::InvalidArgumentError(
        "spike alert: tag must be a tag key or '*', and min_calls >= 1");
  }
  auto rule = std::make_shared<SpikeRule>();
  rule->spec = std::move(spec);
  MutexLock l(&rules_mu_);
  spikes_.push_back(std::move(rule));
  have_rules_.store(true, std::memory_order_release);
  return spikes_.size();
}

absl::StatusOr<uint64_t> Ledger::AddDriftAlert(DriftSpec spec) {
  if (!(spec.window_seconds > 0) || !(spec.points > 0) || spec.points > 100 || spec.min_calls < 1) {
    return absl::InvalidArgumentError(
        "drift alert: window_seconds > 0, points in (0, 100], min_calls >= 1");
  }
  auto rule = std::make_shared<DriftRule>();
  rule->spec = std::move(spec);
  MutexLock l(&rules_mu_);
  drifts_.push_back(std::move(rule));
  have_rules_.store(true, std::memory_order_release);
  return drifts_.size();
}

void Ledger::AddRecordHook(RecordHook hook) {
  MutexLock l(&rules_mu_);
  auto next = std::make_shared<std::vector<RecordHook>>(*hooks_);
  next->push_back(std::move(hook));
  hooks_ = std::move(next);
  have_rules_.store(true, std::memory_order_release);
}

absl::Status Ledger::SetLogPath(const std::string& path) {
  std::FILE* file = nullptr;
  if (!path.empty()) {
    file = std::fopen(path.c_str(), "a");
    if (file == nullptr) {
      return absl::InvalidArgumentError(
          StrCat("log path '", path, "': cannot open for appending: ", std::strerror(errno)));
    }
  }
  MutexLock l(&log_mu_);
  if (log_ != nullptr) std::fclose(log_);
  log_ = file;
  have_log_.store(file != nullptr, std::memory_order_release);
  return absl::OkStatus();
}

void Ledger::RunRules(const CallRecord& call, double cost_usd, double ts, Pending* pending) {
  std::vector<std::shared_ptr<SpikeRule>> spikes;
  std::vector<std::shared_ptr<DriftRule>> drifts;
  {
    ReaderMutexLock l(&rules_mu_);
    spikes = spikes_;
    drifts = drifts_;
  }
  const catalog::ModelSpec* spec = catalog_ ? catalog_->Find(call.model) : nullptr;
  const std::string model(spec != nullptr ? std::string_view(spec->name) : call.model);
  for (auto& rule : spikes) {
    std::string_view value;
    bool has = rule->spec.tag == "*";
    if (has) value = "*";
    for (const Tag& t : call.tags) {
      if (!has && t.key == rule->spec.tag) {
        value = t.value;
        has = true;
      }
    }
    if (!has) continue;
    MutexLock l(&rule->mu);
    auto it = rule->costs.find(ToAbsl(value));
    if (it == rule->costs.end()) {
      const bool full = static_cast<int>(rule->costs.size()) >= options_.max_tag_values;
      it = rule->costs.try_emplace(full ? std::string(kOther) : std::string(value)).first;
    }
    QuantileSketch& sketch = it->second;
    std::optional<double> limit;
    std::string why;
    if (rule->spec.absolute_usd && cost_usd > *rule->spec.absolute_usd) {
      limit = *rule->spec.absolute_usd;
      why = StrCat("over the absolute limit ", Usd(*limit));
    } else if (rule->spec.k && static_cast<int64_t>(sketch.count()) >= rule->spec.min_calls) {
      const double median = sketch.Quantile(0.5);
      if (cost_usd > *rule->spec.k * median) {
        limit = *rule->spec.k * median;
        why =
            StrCat(*rule->spec.k, "x the median ", Usd(median), " of ", rule->spec.tag, "=", value);
      }
    }
    sketch.Add(cost_usd);
    if (!limit) continue;
    Alert a;
    a.kind = "spike";
    a.tag = rule->spec.tag;
    a.value = std::string(value);
    a.model = model;
    a.threshold = *limit;
    a.observed = cost_usd;
    a.ts = ts;
    a.message = StrCat("cost spike: a ", model, " call cost ", Usd(cost_usd), ", ", why);
    pending->alerts.emplace_back(rule->spec.on_alert, std::move(a));
  }
  for (auto& rule : drifts) {
    const auto w = static_cast<int64_t>(std::floor(ts / rule->spec.window_seconds));
    MutexLock l(&rule->mu);
    if (w < rule->window) continue;  // a past window
    if (w > rule->window) {
      if (rule->window != kNoBucket && rule->total >= rule->spec.min_calls) {
        absl::flat_hash_map<std::string, double> shares;
        for (const auto& [m, n] : rule->counts) {
          shares[m] = static_cast<double>(n) / static_cast<double>(rule->total);
        }
        if (rule->have_prev) {
          absl::flat_hash_map<std::string, double> all = shares;
          for (const auto& [m, s] : rule->prev_shares) all.try_emplace(m, 0.0);
          std::vector<std::string> names;
          for (const auto& [m, s] : all) names.push_back(m);
          std::sort(names.begin(), names.end());
          for (const std::string& m : names) {
            const double now_share = shares.contains(m) ? shares[m] : 0.0;
            const double old_share = rule->prev_shares.contains(m) ? rule->prev_shares[m] : 0.0;
            const double moved = (now_share - old_share) * 100.0;
            if (std::abs(moved) <= rule->spec.points) continue;
            Alert a;
            a.kind = "drift";
            a.tag = "model";
            a.value = m;
            a.model = m;
            a.threshold = rule->spec.points;
            a.observed = moved;
            a.limit = old_share * 100.0;
            a.ts = ts;
            a.period_start = static_cast<double>(rule->window) * rule->spec.window_seconds;
            char buf[160];
            std::snprintf(buf, sizeof(buf), "%.1f%% -> %.1f%% of calls (%+.1f points, limit %g)",
                          old_share * 100.0, now_share * 100.0, moved, rule->spec.points);
            a.message = StrCat("model drift: ", m, " went from ", buf);
            pending->alerts.emplace_back(rule->spec.on_alert, std::move(a));
          }
        }
        rule->prev_shares = std::move(shares);
        rule->have_prev = true;
      }
      rule->counts.clear();
      rule->total = 0;
      rule->window = w;
    }
    auto it = rule->counts.find(ToAbsl(model));
    if (it == rule->counts.end()) {
      const bool full = static_cast<int>(rule->counts.size()) >= options_.max_models;
      it = rule->counts.try_emplace(full ? std::string(kOther) : model, 0).first;
    }
    ++it->second;
    ++rule->total;
  }
}

// ---------------------------------------------------------------------------------------------
// Anomalies.

void Ledger::MaybeCloseBuckets(int64_t bucket, Pending* pending) {
  int64_t done = evaluated_bucket_.load(std::memory_order_acquire);
  if (done == kNoBucket) {
    // The first record: nothing before it was observed live.
    evaluated_bucket_.compare_exchange_strong(done, bucket - 1, std::memory_order_acq_rel);
    return;
  }
  if (bucket - 1 <= done) return;
  if (!evaluated_bucket_.compare_exchange_strong(done, bucket - 1, std::memory_order_acq_rel)) {
    return;  // another thread closes these buckets
  }
  std::vector<Anomaly> found;
  for (int64_t b = std::max(done + 1, bucket - options_.max_time_buckets + 1); b < bucket; ++b) {
    EvaluateBucket(b, false, &found);
  }
  for (Anomaly& an : found) {
    Alert a;
    a.kind = "anomaly";
    a.tag = an.tag;
    a.value = an.value;
    if (an.tag == "model") a.model = an.value;
    a.threshold = an.threshold_usd;
    a.observed = an.spend_usd;
    a.limit = an.baseline_median_usd;
    a.ts = an.bucket_start + options_.bucket_seconds;
    a.period_start = an.bucket_start;
    a.message =
        StrCat("spend anomaly: ", an.tag, "=", an.value, " spent ", Usd(an.spend_usd),
               " in the bucket from ",
               absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                                absl::FromUnixSeconds(static_cast<int64_t>(an.bucket_start)),
                                absl::UTCTimeZone()),
               " against a baseline median of ", Usd(an.baseline_median_usd), " (threshold ",
               Usd(an.threshold_usd), ")");
    pending->alerts.emplace_back(AlertCallback(), std::move(a));
  }
}

void Ledger::EvaluateBucket(int64_t bucket, bool partial, std::vector<Anomaly>* out) {
  const AnomalyOptions& o = options_.anomaly;
  const int64_t latest = latest_bucket_.load(std::memory_order_relaxed);
  const int64_t oldest_kept = latest - options_.max_time_buckets + 1;
  if (bucket < oldest_kept) return;
  std::vector<double> history;
  std::vector<double> deviations;
  for (auto& stripe : stripes_) {
    MutexLock l(&stripe->mu);
    for (const auto& [composite, series] : stripe->map) {
      if (series.first_bucket == kNoBucket || bucket <= series.first_bucket) continue;
      const double spend = static_cast<double>(series.At(bucket)) * 1e-9;
      if (spend <= 0) continue;
      history.clear();
      const int64_t from =
          std::max({bucket - o.baseline_buckets, series.first_bucket, oldest_kept});
      for (int64_t b = from; b < bucket; ++b) {
        history.push_back(static_cast<double>(series.At(b)) * 1e-9);
      }
      if (static_cast<int>(history.size()) < o.min_history) continue;
      const double median = Median(history);
      deviations.clear();
      for (double h : history) deviations.push_back(std::abs(h - median));
      const double mad = Median(deviations);
      const double scale = std::max(1.4826 * mad, o.min_relative * median);
      const double threshold = median + o.k * scale;
      if (spend <= threshold || spend - median < o.min_usd) continue;
      Anomaly an;
      if (!composite.empty() && composite[0] == kModelMark) {
        an.tag = "model";
        an.value = composite.substr(1);
      } else {
        const size_t sep = composite.find(kSep);
        an.tag = composite.substr(0, sep);
        an.value = composite.substr(sep + 1);
      }
      an.bucket_start = static_cast<double>(bucket) * options_.bucket_seconds;
      an.spend_usd = spend;
      an.baseline_median_usd = median;
      an.baseline_mad_usd = mad;
      an.threshold_usd = threshold;
      an.partial = partial;
      out->push_back(std::move(an));
    }
  }
}

std::vector<Anomaly> Ledger::Anomalies() {
  std::vector<Anomaly> out;
  const int64_t latest = latest_bucket_.load(std::memory_order_relaxed);
  if (latest == kNoBucket) return out;
  const int64_t open = BucketOf(Now());
  for (int64_t b = latest - options_.max_time_buckets + 1; b <= latest; ++b) {
    EvaluateBucket(b, b >= open, &out);
  }
  std::stable_sort(out.begin(), out.end(), [](const Anomaly& a, const Anomaly& b) {
    if (a.bucket_start != b.bucket_start) return a.bucket_start < b.bucket_start;
    if (a.tag != b.tag) return a.tag < b.tag;
    return a.value < b.value;
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Alerts.

void Ledger::Deliver(Pending* pending) {
  if (pending->alerts.empty()) return;
  {
    MutexLock l(&alerts_mu_);
    for (const auto& [cb, alert] : pending->alerts) {
      alerts_.push_back(alert);
      if (alerts_.size() > kMaxAlerts) alerts_.pop_front();
    }
  }
  for (const auto& [cb, alert] : pending->alerts) {
    if (cb) cb(alert);
    if (options_.on_alert) options_.on_alert(alert);
  }
}

std::vector<Alert> Ledger::Alerts() const {
  MutexLock l(&alerts_mu_);
  return {alerts_.begin(), alerts_.end()};
}

}  // namespace thrifty::cost
