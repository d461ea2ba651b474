#include "thrifty/cost/pricing.h"

namespace thrifty::cost {
namespace {

constexpr double kPerMillion = 1e6;

double Bucket(int64_t tokens, double price_per_mtok) {
  return static_cast<double>(tokens) * price_per_mtok / kPerMillion;
}

}  // namespace

CostBreakdown PriceUsage(const catalog::ModelSpec& model, const Usage& usage) {
  CostBreakdown out;
  out.input_usd = Bucket(usage.input_tokens, model.input_per_mtok);
  out.cached_input_usd = Bucket(usage.cached_input_tokens, model.CachedInputPrice());
  out.cache_write_usd = Bucket(usage.cache_write_5m_tokens, model.CacheWrite5mPrice()) +
                        Bucket(usage.cache_write_1h_tokens, model.CacheWrite1hPrice());
  out.output_usd = Bucket(usage.output_tokens, model.output_per_mtok);
  return out;
}

double UncachedCostUsd(const catalog::ModelSpec& model, const Usage& usage) {
  return Bucket(usage.prompt_tokens(), model.input_per_mtok) +
         Bucket(usage.output_tokens, model.output_per_mtok);
}

}  // namespace thrifty::cost
