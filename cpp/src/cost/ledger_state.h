// The Ledger's private state, shared by ledger.cc (recording, budgets, rules) and
// ledger_export.cc (snapshot, Prometheus, persistence). Not a public header.
#ifndef THRIFTY_SRC_COST_LEDGER_STATE_H_
#define THRIFTY_SRC_COST_LEDGER_STATE_H_

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "thrifty/base/mutex.h"
#include "thrifty/base/strings.h"
#include "thrifty/cost/ledger.h"

namespace thrifty::cost {
namespace ledger_internal {

constexpr int64_t kNoBucket = std::numeric_limits<int64_t>::min();
constexpr char kSep = '\x1f';        // between tag key and value in composite keys
constexpr char kModelMark = '\x1e';  // composite key of a model series

}  // namespace ledger_internal
using ledger_internal::kModelMark;
using ledger_internal::kNoBucket;
using ledger_internal::kSep;

struct Ledger::Shard {
  Mutex mu;
  Aggregate total ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, Aggregate> by_model ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, Aggregate> by_tag ABSL_GUARDED_BY(mu);  // "key\x1fvalue"
  absl::flat_hash_map<int64_t, Aggregate> by_time ABSL_GUARDED_BY(mu);
};

// The spend of one tag value (or model) per time bucket, in a ring of max_time_buckets slots.
struct Ledger::Series {
  int64_t first_bucket = kNoBucket;
  std::vector<std::pair<int64_t, int64_t>> slots;  // (bucket, nano); bucket kNoBucket: empty

  int64_t At(int64_t bucket) const {
    const auto n = static_cast<int64_t>(slots.size());
    const auto& slot = slots[static_cast<size_t>(((bucket % n) + n) % n)];
    return slot.first == bucket ? slot.second : 0;
  }
};

struct Ledger::SeriesStripe {
  Mutex mu;
  absl::flat_hash_map<std::string, Series> map ABSL_GUARDED_BY(mu);  // composite key
};

struct Ledger::BudgetState {
  uint64_t id = 0;
  BudgetSpec spec;
  int64_t limit_nano = 0;
  Mutex mu;
  int64_t period ABSL_GUARDED_BY(mu) = kNoBucket;
  int64_t settled_nano ABSL_GUARDED_BY(mu) = 0;
  int64_t reserved_nano ABSL_GUARDED_BY(mu) = 0;
  int fired ABSL_GUARDED_BY(mu) = 0;  // bit i: threshold i fired this period

  std::string RestoreKey() const {
    return StrCat(spec.tag, std::string(1, kSep), spec.value, std::string(1, kSep),
                  spec.period.Name());
  }
  // Moves to `p` when it is later than the current period; false when `p` is in the past.
  bool Roll(int64_t p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (p < period) return false;
    if (p > period) {
      period = p;
      settled_nano = 0;
      fired = 0;
    }
    return true;
  }
  std::string Name() const {
    return spec.tag == "*" ? StrCat("budget */", spec.period.Name())
                           : StrCat("budget ", spec.tag, "=", spec.value, "/", spec.period.Name());
  }
};

struct Ledger::SpikeRule {
  SpikeSpec spec;
  Mutex mu;
  absl::flat_hash_map<std::string, QuantileSketch> costs ABSL_GUARDED_BY(mu);
};

struct Ledger::DriftRule {
  DriftSpec spec;
  Mutex mu;
  int64_t window ABSL_GUARDED_BY(mu) = kNoBucket;
  absl::flat_hash_map<std::string, int64_t> counts ABSL_GUARDED_BY(mu);
  int64_t total ABSL_GUARDED_BY(mu) = 0;
  absl::flat_hash_map<std::string, double> prev_shares ABSL_GUARDED_BY(mu);
  bool have_prev ABSL_GUARDED_BY(mu) = false;
};

struct Ledger::Pending {
  std::vector<std::pair<AlertCallback, Alert>> alerts;
};

}  // namespace thrifty::cost

#endif  // THRIFTY_SRC_COST_LEDGER_STATE_H_
