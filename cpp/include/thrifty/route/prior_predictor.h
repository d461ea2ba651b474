// PriorPredictor: quality = the (model, category) prior; output tokens = the prior's mean.
//
// Before Fit, the priors are the policy's (predictor.h lists the fill rules for models without
// one). Fit and Add blend the labels in per (model, category) (Priors::Accumulate), so a fitted
// PriorPredictor is a per-category mean-quality router: the baseline the other predictors must
// beat. It ignores embeddings.
//
// Thread-safety: thread-compatible (see QualityPredictor).
#ifndef THRIFTY_ROUTE_PRIOR_PREDICTOR_H_
#define THRIFTY_ROUTE_PRIOR_PREDICTOR_H_

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "thrifty/route/predictor.h"

namespace thrifty::route {

class PriorPredictor final : public QualityPredictor {
 public:
  explicit PriorPredictor(Priors priors) : priors_(std::move(priors)) {}

  std::string_view kind() const override { return "prior"; }
  void Predict(const PredictInput& input, std::span<double> quality,
               std::span<double> output_tokens) const override;
  absl::Status Fit(const LabeledSet& set) override;
  absl::Status Add(const LabeledSet& set) override;
  size_t size() const override { return examples_; }
  size_t memory_bytes() const override { return priors_.models() * kNumCategories * 64; }
  void Save(std::string& out) const override;
  absl::Status Load(std::string_view& in) override;

  const Priors& priors() const { return priors_; }

 private:
  Priors priors_;
  size_t examples_ = 0;
};

}  // namespace thrifty::route

#endif  // THRIFTY_ROUTE_PRIOR_PREDICTOR_H_
