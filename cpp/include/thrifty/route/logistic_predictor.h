// LogisticPredictor: per-model L2-regularized logistic regression, trained in C++.
//
// Features of a request: its embedding (dim floats), a one-hot of its category (6) and a
// bias. For model j, quality_j = sigmoid(w_j . x); w_j minimizes the cross-entropy against
// the labels (soft labels in [0, 1] are fine) plus l2/2 * |w_j|^2 (bias not penalized),
// over the examples labeled for j. Training is Newton's method with the Newton step solved by
// conjugate gradients (Hessian-vector products only: O(n * dim) memory and time per product),
// with a backtracking line search; it stops when the gradient norm falls below 1e-5 of its
// start or after max_iterations.
//
// Models without labels predict their prior. Output tokens are the per-(model, category) label
// means (Priors). Feedback (Add) takes one stochastic-gradient step per labeled model
// of size learning_rate * 100 / (100 + examples labeled for the model), so it moves
// predictions at once and less as evidence accumulates; Fit retrains from
// scratch. The predictor keeps only the weights: memory is models * (dim + 7) doubles.
//
// Thread-safety: thread-compatible (see QualityPredictor).
#ifndef THRIFTY_ROUTE_LOGISTIC_PREDICTOR_H_
#define THRIFTY_ROUTE_LOGISTIC_PREDICTOR_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "thrifty/route/predictor.h"

namespace thrifty::route {

struct LogisticOptions {
  double l2 = 1.0;  // regularization strength (in units of examples)
  int max_iterations = 30;
  double learning_rate = 0.5;  // for online feedback steps
};

absl::Status ValidateLogisticOptions(const LogisticOptions& options);

class LogisticPredictor final : public QualityPredictor {
 public:
  static absl::StatusOr<std::unique_ptr<LogisticPredictor>> Create(Priors priors, size_t dim,
                                                                   LogisticOptions options = {});

  std::string_view kind() const override { return "logistic"; }
  void Predict(const PredictInput& input, std::span<double> quality,
               std::span<double> output_tokens) const override;
  absl::Status Fit(const LabeledSet& set) override;
  absl::Status Add(const LabeledSet& set) override;
  size_t size() const override { return examples_; }
  size_t memory_bytes() const override { return weights_.size() * sizeof(double); }
  void Save(std::string& out) const override;
  absl::Status Load(std::string_view& in) override;

  const LogisticOptions& options() const { return options_; }

 private:
  LogisticPredictor(Priors priors, size_t dim, LogisticOptions options);
  size_t features() const { return dim_ + kNumCategories + 1; }
  void Features(std::span<const float> embedding, Category c, std::vector<double>& x) const;

  Priors priors_;
  const size_t dim_;
  LogisticOptions options_;
  std::vector<double> weights_;   // [m x features()]
  std::vector<uint8_t> trained_;  // per model
  std::vector<double> labeled_;   // per model: examples seen (fit + feedback)
  size_t examples_ = 0;
};

}  // namespace thrifty::route

#endif  // THRIFTY_ROUTE_LOGISTIC_PREDICTOR_H_
