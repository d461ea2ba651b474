#include "thrifty/cost/quantile_sketch.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace thrifty::cost {
namespace {

const double kGamma =
    (1.0 + QuantileSketch::kRelativeAccuracy) / (1.0 - QuantileSketch::kRelativeAccuracy);
const double kLogGamma = std::log(kGamma);

}  // namespace

int QuantileSketch::BinOf(double value) {
  return static_cast<int>(std::ceil(std::log(value) / kLogGamma));
}

double QuantileSketch::ValueOf(int bin) { return 2.0 * std::pow(kGamma, bin) / (kGamma + 1.0); }

void QuantileSketch::Add(double value) {
  if (!(value >= 0.0) || std::isinf(value)) return;
  if (count_ == 0) {
    min_ = max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  ++count_;
  sum_ += value;
  if (value < kMinValue) {
    ++zero_;
    return;
  }
  int bin = BinOf(value);
  if (bins_.empty()) {
    offset_ = bin;
    bins_.assign(1, 0);
  } else if (bin < offset_) {
    const int top = offset_ + static_cast<int>(bins_.size()) - 1;
    if (top - bin + 1 > kMaxBins) {
      bin = offset_;  // below the kept range: fold into the lowest kept bin
    } else {
      bins_.insert(bins_.begin(), static_cast<size_t>(offset_ - bin), 0);
      offset_ = bin;
    }
  } else if (bin >= offset_ + static_cast<int>(bins_.size())) {
    const size_t size = static_cast<size_t>(bin - offset_ + 1);
    if (size > static_cast<size_t>(kMaxBins)) {
      // Fold the lowest bins so the new top fits.
      const size_t drop = size - kMaxBins;
      uint64_t folded = 0;
      for (size_t i = 0; i < drop && i < bins_.size(); ++i) folded += bins_[i];
      bins_.erase(bins_.begin(),
                  bins_.begin() + static_cast<ptrdiff_t>(std::min(drop, bins_.size())));
      offset_ += static_cast<int>(drop);
      if (bins_.empty()) bins_.assign(1, 0);
      bins_[0] += folded;
      bins_.resize(static_cast<size_t>(bin - offset_ + 1), 0);
    } else {
      bins_.resize(size, 0);
    }
  }
  ++bins_[static_cast<size_t>(bin - offset_)];
}

void QuantileSketch::Merge(const QuantileSketch& other) {
  if (other.count_ == 0) return;
  if (count_ == 0) {
    *this = other;
    return;
  }
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
  zero_ += other.zero_;
  if (other.bins_.empty()) return;
  if (bins_.empty()) {
    offset_ = other.offset_;
    bins_ = other.bins_;
    return;
  }
  const int lo = std::min(offset_, other.offset_);
  const int hi = std::max(offset_ + static_cast<int>(bins_.size()),
                          other.offset_ + static_cast<int>(other.bins_.size()));
  std::vector<uint64_t> merged(static_cast<size_t>(hi - lo), 0);
  for (size_t i = 0; i < bins_.size(); ++i) merged[offset_ - lo + i] += bins_[i];
  for (size_t i = 0; i < other.bins_.size(); ++i) merged[other.offset_ - lo + i] += other.bins_[i];
  int new_offset = lo;
  if (merged.size() > static_cast<size_t>(kMaxBins)) {
    const size_t drop = merged.size() - kMaxBins;
    uint64_t folded = 0;
    for (size_t i = 0; i < drop; ++i) folded += merged[i];
    merged.erase(merged.begin(), merged.begin() + static_cast<ptrdiff_t>(drop));
    merged[0] += folded;
    new_offset += static_cast<int>(drop);
  }
  bins_ = std::move(merged);
  offset_ = new_offset;
}

double QuantileSketch::Quantile(double q) const {
  if (count_ == 0) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = static_cast<uint64_t>(std::floor(q * static_cast<double>(count_ - 1)));
  if (rank < zero_) return std::max(0.0, min_);
  uint64_t seen = zero_;
  for (size_t i = 0; i < bins_.size(); ++i) {
    seen += bins_[i];
    if (seen > rank) {
      return std::clamp(ValueOf(offset_ + static_cast<int>(i)), min_, max_);
    }
  }
  return max_;
}

nlohmann::json QuantileSketch::ToJson() const {
  return {{"offset", offset_}, {"bins", bins_}, {"zero", zero_}, {"count", count_},
          {"sum", sum_},       {"min", min_},   {"max", max_}};
}

absl::StatusOr<QuantileSketch> QuantileSketch::FromJson(const nlohmann::json& j) {
  QuantileSketch s;
  try {
    s.offset_ = j.at("offset").get<int>();
    s.bins_ = j.at("bins").get<std::vector<uint64_t>>();
    s.zero_ = j.at("zero").get<uint64_t>();
    s.count_ = j.at("count").get<uint64_t>();
    s.sum_ = j.at("sum").get<double>();
    s.min_ = j.at("min").get<double>();
    s.max_ = j.at("max").get<double>();
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(std::string("latency sketch: ") + e.what());
  }
  uint64_t total = s.zero_;
  for (uint64_t c : s.bins_) total += c;
  if (total != s.count_ || s.bins_.size() > static_cast<size_t>(kMaxBins)) {
    return absl::DataLossError("latency sketch: bin counts do not add up to its count");
  }
  return s;
}

}  // namespace thrifty::cost
