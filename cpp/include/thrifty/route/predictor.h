// QualityPredictor: the pluggable part of the router that estimates, for one request, each
// catalog model's quality in [0, 1] and its output tokens.
//
// Models are addressed by their index in the router's catalog (the column order of
// Router::PredictBatch). Every predictor starts from the same Priors table and learns from a
// LabeledSet: embeddings, categories and a dense [n x m] label matrix where NaN means "not
// labeled for this model".
//
// Implementations: PriorPredictor (priors only), KnnPredictor (FAISS nearest neighbours),
// LogisticPredictor (per-model L2 logistic regression trained in C++).
//
// Thread-safety: thread-compatible. Const methods (Predict, Save) may run concurrently with
// each other; Fit / Add / Load need exclusive access. The Router provides that with its
// reader/writer lock.
#ifndef THRIFTY_ROUTE_PREDICTOR_H_
#define THRIFTY_ROUTE_PREDICTOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "thrifty/catalog/catalog.h"
#include "thrifty/route/features.h"

namespace thrifty::route {

// Default predicted output tokens for a model nothing is known about.
inline constexpr double kDefaultOutputTokens = 256.0;

// Per model and category: the prior quality and output tokens the predictors shrink toward.
//
// Prior quality of (model, category), in order of preference:
//   1. ModelSpec.quality[category] from the policy;
//   2. the mean of the model's other category priors (a model with some priors);
//   3. the mean over the catalog's models that have a prior for the category;
//   4. 0.5 (nothing known: an eval catalog built from data, before fitting).
// Fitting replaces rules 2-4 by what the labels say: see Priors::Update.
class Priors {
 public:
  static Priors FromCatalog(const catalog::Catalog& catalog);

  size_t models() const { return models_; }
  double quality(size_t model, Category c) const {
    return quality_[model * kNumCategories + static_cast<size_t>(c)];
  }
  double output_tokens(size_t model, Category c) const {
    return output_tokens_[model * kNumCategories + static_cast<size_t>(c)];
  }
  // Whether the policy gave a prior for (model, category) (rule 1).
  bool from_policy(size_t model, Category c) const {
    return from_policy_[model * kNumCategories + static_cast<size_t>(c)] != 0;
  }

  // Blends labels into the priors. For each (model, category) with labels the prior becomes
  // (sum of labels + strength * base) / (count + strength), where base is the policy prior
  // (rule 1) when there is one, else the model's label mean over all its categories (which
  // replaces rules 2-4). Output tokens become the label mean of (model, category), else of the
  // model, else kDefaultOutputTokens. Reset() forgets the labels; Accumulate() adds more.
  void Reset();
  void Accumulate(const struct LabeledSet& set);
  double strength() const { return strength_; }

  // Serialization (part of the router file).
  void Save(std::string& out) const;
  absl::Status Load(std::string_view& in);

 private:
  size_t models_ = 0;
  std::vector<double> policy_quality_;  // rules 1-4, as from the catalog
  std::vector<double> quality_;         // [m x kNumCategories]
  std::vector<double> output_tokens_;   // [m x kNumCategories]
  std::vector<uint8_t> from_policy_;
  double strength_ = 10.0;
  // Label sums per (model, category) and per model, so Accumulate is incremental.
  std::vector<double> q_sum_, q_count_, t_sum_, t_count_;

  void Recompute();
};

// Labeled examples in matrix form. Rows: examples; columns: catalog models.
struct LabeledSet {
  size_t dim = 0;                    // embedding dimension (0: predictors that ignore embeddings)
  size_t models = 0;                 // m
  std::vector<float> embeddings;     // n * dim, L2-normalized rows
  std::vector<Category> categories;  // n
  std::vector<float> quality;        // n * m, NaN = not labeled
  std::vector<float> output_tokens;  // n * m, NaN = not labeled

  size_t size() const { return categories.size(); }
  void Append(const LabeledSet& other);
};

// What a predictor needs about one request.
struct PredictInput {
  Category category = Category::kChat;
  std::span<const float> embedding;  // L2-normalized, dim() floats (may be all zeros)
  int64_t input_tokens = 0;
};

class QualityPredictor {
 public:
  virtual ~QualityPredictor() = default;

  // "prior", "knn", "logistic".
  virtual std::string_view kind() const = 0;
  // Writes one value per model into `quality` (in [0, 1]) and `output_tokens` (> 0).
  virtual void Predict(const PredictInput& input, std::span<double> quality,
                       std::span<double> output_tokens) const = 0;
  // Replaces what was learned with `set` (already validated by the Router).
  virtual absl::Status Fit(const LabeledSet& set) = 0;
  // Learns from more examples online (feedback) without forgetting the earlier ones
  // (within the predictor's memory bound).
  virtual absl::Status Add(const LabeledSet& set) = 0;
  // Labeled examples held.
  virtual size_t size() const = 0;
  // Bytes of memory held (approximate).
  virtual size_t memory_bytes() const = 0;

  // The learned state, for the router file. Load replaces the state.
  virtual void Save(std::string& out) const = 0;
  virtual absl::Status Load(std::string_view& in) = 0;
};

}  // namespace thrifty::route

#endif  // THRIFTY_ROUTE_PREDICTOR_H_
