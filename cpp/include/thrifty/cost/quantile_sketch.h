// QuantileSketch: a bounded, mergeable histogram of non-negative values (latencies, costs) that
// answers quantiles with a guaranteed relative error, in the manner of DDSketch.
//
// Values are counted in logarithmic bins: bin i holds (gamma^(i-1), gamma^i] with
// gamma = (1 + a) / (1 - a), a = kRelativeAccuracy = 1%. A quantile returns its bin's midpoint
// 2 * gamma^i / (gamma + 1), which is within a relative error `a` of every value in the bin, so
// Quantile(q) is within 1% of the exact q-quantile of the added values (rank taken as
// floor(q * (count - 1))), clamped to [min, max]. Values below kMinValue (1e-9) count in a
// zero bin and read as 0.
//
// Memory: bins are one contiguous array spanning the smallest to the largest bin seen (a range
// of 10x needs ~116 bins; 1 ms..100 s ~580 bins, 8 bytes each). It never exceeds kMaxBins:
// beyond that the lowest bins are folded into the lowest kept one, so only quantiles that fall
// in the folded range lose their error bound (they read high). Two sketches merge exactly.
//
// Thread-safety: thread-compatible (a value type; callers lock).
#ifndef THRIFTY_COST_QUANTILE_SKETCH_H_
#define THRIFTY_COST_QUANTILE_SKETCH_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"

namespace thrifty::cost {

class QuantileSketch {
 public:
  static constexpr double kRelativeAccuracy = 0.01;
  static constexpr double kMinValue = 1e-9;
  static constexpr int kMaxBins = 2048;

  // Negative and NaN values are ignored (callers validate first).
  void Add(double value);
  void Merge(const QuantileSketch& other);

  // The q-quantile (q in [0, 1]) within kRelativeAccuracy; NaN when empty.
  double Quantile(double q) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  double min() const { return min_; }
  double max() const { return max_; }

  // Lossless round trip (persistence): {"offset", "bins", "zero", "count", "sum", "min", "max"}.
  nlohmann::json ToJson() const;
  static absl::StatusOr<QuantileSketch> FromJson(const nlohmann::json& j);

 private:
  static int BinOf(double value);
  static double ValueOf(int bin);

  int offset_ = 0;              // bin index of bins_[0]
  std::vector<uint64_t> bins_;  // counts of bins offset_ .. offset_ + size - 1
  uint64_t zero_ = 0;           // values < kMinValue
  uint64_t count_ = 0;
  double sum_ = 0.0;
  double min_ = 0.0;
  double max_ = 0.0;
};

}  // namespace thrifty::cost

#endif  // THRIFTY_COST_QUANTILE_SKETCH_H_
