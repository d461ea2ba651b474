// Pricing: what a Usage costs in USD under a ModelSpec's published prices.
//
// Each bucket is tokens * price_per_mtok / 1e6, computed in double; no rounding is applied,
// so a cost is exact to the published prices up to double precision (~1e-16 relative).
//
// Thread-safety: pure functions.
#ifndef THRIFTY_COST_PRICING_H_
#define THRIFTY_COST_PRICING_H_

#include "thrifty/catalog/model_spec.h"
#include "thrifty/cost/usage.h"

namespace thrifty::cost {

struct CostBreakdown {
  double input_usd = 0.0;
  double cached_input_usd = 0.0;
  double cache_write_usd = 0.0;
  double output_usd = 0.0;

  double total_usd() const { return input_usd + cached_input_usd + cache_write_usd + output_usd; }
};

CostBreakdown PriceUsage(const catalog::ModelSpec& model, const Usage& usage);

inline double CostUsd(const catalog::ModelSpec& model, const Usage& usage) {
  return PriceUsage(model, usage).total_usd();
}

// What the same call would have cost with no prompt cache at all (every prompt token at the
// input price): the baseline that prompt-cache savings are measured against.
double UncachedCostUsd(const catalog::ModelSpec& model, const Usage& usage);

}  // namespace thrifty::cost

#endif  // THRIFTY_COST_PRICING_H_
