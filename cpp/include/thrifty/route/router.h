// Router: picks, per request, the cheapest catalog model whose predicted quality meets a
// threshold.
//
// For every catalog model j the router estimates
//   quality_j  with its QualityPredictor (prior, kNN or logistic; predictor.h), and
//   cost_j     = (input_j - cached_j) * input price + cached_j * cached-input price
//                + output_j * output price                      (USD; prices per 1M tokens)
// where input_j is the request's token estimate for j's tokenizer family
// (request::EstimateRequestTokens), cached_j what an attached CachedTokensPredictor (the
// prefix tracker) says the provider will serve from its prompt cache (0 without one), and
// output_j the predictor's output-token estimate.
//
// Rule: among eligible models (not deprecated, unless include_deprecated) with
// quality_j >= threshold, the least cost_j (ties: higher quality, then catalog order). If none
// reaches the threshold, the highest predicted quality (ties: cheaper). A threshold is
// absolute (a quality in [0, 1]) or relative (a share in [0, 1] of the best eligible model's
// predicted quality for this request: "at least 95% of the best").
//
// Thread-safety: thread-safe. Route / Predict / Save take a reader lock around the predictor
// (concurrent callers run in parallel); Fit / Feedback / Load take the writer lock. Feature
// extraction and embedding run outside the lock.
#ifndef THRIFTY_ROUTE_ROUTER_H_
#define THRIFTY_ROUTE_ROUTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "thrifty/base/mutex.h"
#include "thrifty/catalog/catalog.h"
#include "thrifty/embed/embedder.h"
#include "thrifty/request/cached_tokens.h"
#include "thrifty/request/token_estimate.h"
#include "thrifty/route/features.h"
#include "thrifty/route/knn_predictor.h"
#include "thrifty/route/logistic_predictor.h"
#include "thrifty/route/predictor.h"

namespace thrifty::route {

struct Threshold {
  enum class Kind : uint8_t { kAbsolute, kRelative };
  Kind kind = Kind::kAbsolute;
  double value = 0.8;

  static Threshold Absolute(double v) { return {Kind::kAbsolute, v}; }
  static Threshold Relative(double v) { return {Kind::kRelative, v}; }
};

// InvalidArgument unless value is in [0, 1]; `where` prefixes the message.
absl::Status ValidateThreshold(const Threshold& t, std::string_view where = "quality_threshold");

struct RouterOptions {
  Threshold threshold;  // used when Route is given none
  bool include_deprecated = false;
  FeatureOptions features;
};

// A predictor by name: "prior", "knn", "logistic".
struct PredictorConfig {
  std::string kind = "knn";
  KnnOptions knn;
  LogisticOptions logistic;
};

absl::StatusOr<std::unique_ptr<QualityPredictor>> MakePredictor(const PredictorConfig& config,
                                                                const catalog::Catalog& catalog,
                                                                size_t dim);

// One labeled model outcome. A label needs a quality, an output-token count, or both.
struct Label {
  std::string model;                    // a catalog name or alias
  std::optional<double> quality;        // in [0, 1]
  std::optional<double> output_tokens;  // >= 0
};

struct Example {
  nlohmann::json input;  // a prompt (string) or a request object
  std::vector<Label> labels;
};

struct Decision {
  std::string model;
  size_t model_index = 0;
  // Per catalog model, in catalog order:
  std::vector<double> predicted_quality;
  std::vector<double> expected_cost_usd;
  std::vector<double> output_tokens;   // predicted
  std::vector<int64_t> input_tokens;   // estimated for the model's tokenizer family
  std::vector<int64_t> cached_tokens;  // predicted prompt-cache hits (0 without a tracker)
  std::vector<uint8_t> eligible;       // 0 for deprecated models (unless include_deprecated)
  Category category = Category::kChat;
  double threshold = 0.0;  // the absolute threshold applied
  bool met_threshold = false;
  std::string reason;
};

class Router {
 public:
  // `embedder` is required (the kNN and logistic predictors need vectors); `predictor` null
  // means PredictorConfig{} (kNN, which answers with the priors until it has examples).
  static absl::StatusOr<std::unique_ptr<Router>> Create(
      catalog::Catalog catalog, std::shared_ptr<const embed::Embedder> embedder,
      std::unique_ptr<QualityPredictor> predictor = nullptr, RouterOptions options = {});

  // Attaches (or, with null, detaches) the prompt-cache predictor used for cached_j.
  void SetCachedTokensPredictor(std::shared_ptr<const request::CachedTokensPredictor> tracker);

  // Replaces what the predictor learned with `examples`. Errors name the example:
  // "examples[12]: label 'gpt-9' is not a catalog model; did you mean ...".
  absl::Status Fit(std::span<const Example> examples);
  // Learns one outcome online.
  absl::Status Feedback(const nlohmann::json& input, std::string_view model,
                        std::optional<double> quality, std::optional<double> output_tokens);

  absl::StatusOr<Decision> Route(const nlohmann::json& input,
                                 std::optional<Threshold> threshold = std::nullopt) const;
  // As Route, with the embedding given (benchmarks; callers that embed themselves).
  absl::StatusOr<Decision> RouteEmbedded(const nlohmann::json& input,
                                         std::span<const float> embedding,
                                         std::optional<Threshold> threshold = std::nullopt) const;

  // Batch prediction: row i of the [n x m] outputs is inputs[i]. `expected_cost` may be empty.
  absl::Status Predict(std::span<const nlohmann::json> inputs, std::span<double> quality,
                       std::span<double> output_tokens, std::span<double> expected_cost = {}) const;

  const catalog::Catalog& catalog() const { return catalog_; }
  const embed::Embedder& embedder() const { return *embedder_; }
  const RouterOptions& options() const { return options_; }
  std::string predictor_kind() const;
  size_t examples() const;

  // Versioned, checksummed file (docs/router.md): the options, the catalog's model names, the
  // embedder's name and the predictor's learned state. Written atomically.
  absl::Status Save(const std::string& path) const;
  // Reads a file written by Save. The catalog must hold the same model names in the same order
  // and the embedder must have the same name() as when saved; errors say what differs.
  static absl::StatusOr<std::unique_ptr<Router>> Load(
      const std::string& path, catalog::Catalog catalog,
      std::shared_ptr<const embed::Embedder> embedder);

 private:
  Router(catalog::Catalog catalog, std::shared_ptr<const embed::Embedder> embedder,
         std::unique_ptr<QualityPredictor> predictor, RouterOptions options);

  absl::StatusOr<LabeledSet> ToLabeledSet(std::span<const Example> examples,
                                          std::string_view where) const;
  absl::Status Embed(std::span<const std::string> texts, std::vector<float>& out) const;
  absl::StatusOr<size_t> ModelIndex(std::string_view name, std::string_view where) const;
  // Fills predictions and costs for one request whose features and embedding are known.
  void Estimate(const RequestFeatures& features, std::span<const float> embedding,
                Decision& decision) const;
  Decision Decide(const RequestFeatures& features, std::span<const float> embedding,
                  const Threshold& threshold) const;

  const catalog::Catalog catalog_;
  const std::shared_ptr<const embed::Embedder> embedder_;
  const RouterOptions options_;
  std::vector<request::TokenizerFamily> families_;  // per model

  mutable Mutex mu_;
  std::unique_ptr<QualityPredictor> predictor_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const request::CachedTokensPredictor> tracker_ ABSL_GUARDED_BY(mu_);
};

}  // namespace thrifty::route

#endif  // THRIFTY_ROUTE_ROUTER_H_
