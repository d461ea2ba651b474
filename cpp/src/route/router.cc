#include "thrifty/route/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_format.h"
#include "thrifty/base/strings.h"
#include "thrifty/route/prior_predictor.h"

namespace thrifty::route {
namespace {

constexpr size_t kEmbedBatch = 256;

std::string Usd(double v) { return absl::StrFormat("$%.6g", v); }

}  // namespace

absl::Status ValidateThreshold(const Threshold& t, std::string_view where) {
  if (!(t.value >= 0.0 && t.value <= 1.0)) {
    return absl::InvalidArgumentError(ToAbsl(StrCat(
        where, " must be in [0, 1] (",
        t.kind == Threshold::Kind::kAbsolute ? "a predicted quality"
                                             : "a share of the best model's predicted quality",
        "), got ", t.value)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<QualityPredictor>> MakePredictor(const PredictorConfig& config,
                                                                const catalog::Catalog& catalog,
                                                                size_t dim) {
  Priors priors = Priors::FromCatalog(catalog);
  if (config.kind == "prior") return std::make_unique<PriorPredictor>(std::move(priors));
  if (config.kind == "knn") {
    absl::StatusOr<std::unique_ptr<KnnPredictor>> p =
        KnnPredictor::Create(std::move(priors), dim, config.knn);
    if (!p.ok()) return p.status();
    return std::unique_ptr<QualityPredictor>(*std::move(p));
  }
  if (config.kind == "logistic") {
    absl::StatusOr<std::unique_ptr<LogisticPredictor>> p =
        LogisticPredictor::Create(std::move(priors), dim, config.logistic);
    if (!p.ok()) return p.status();
    return std::unique_ptr<QualityPredictor>(*std::move(p));
  }
  return absl::InvalidArgumentError(
      ToAbsl(StrCat("predictor must be 'prior', 'knn' or 'logistic', got '", config.kind, "'")));
}

Router::Router(catalog::Catalog catalog, std::shared_ptr<const embed::Embedder> embedder,
               std::unique_ptr<QualityPredictor> predictor, RouterOptions options)
    : catalog_(std::move(catalog)),
      embedder_(std::move(embedder)),
      options_(options),
      predictor_(std::move(predictor)) {
  for (const catalog::ModelSpec& spec : catalog_.models()) {
    families_.push_back(request::FamilyForModel(spec.name));
  }
}

absl::StatusOr<std::unique_ptr<Router>> Router::Create(
    catalog::Catalog catalog, std::shared_ptr<const embed::Embedder> embedder,
    std::unique_ptr<QualityPredictor> predictor, RouterOptions options) {
  if (catalog.size() == 0) {
    return absl::InvalidArgumentError(
        "Router: the catalog is empty; give at least one model (thrifty.Catalog.default() or "
        "Catalog([ModelSpec(...), ...]))");
  }
  if (embedder == nullptr) return absl::InvalidArgumentError("Router: an embedder is required");
  if (absl::Status s = ValidateThreshold(options.threshold); !s.ok()) return s;
  bool any_eligible = options.include_deprecated;
  for (const auto& spec : catalog.models()) any_eligible |= !spec.deprecated;
  if (!any_eligible) {
    return absl::InvalidArgumentError(
        "Router: every catalog model is deprecated; pass include_deprecated=True to route to "
        "them anyway");
  }
  if (predictor == nullptr) {
    absl::StatusOr<std::unique_ptr<QualityPredictor>> made =
        MakePredictor(PredictorConfig{}, catalog, embedder->dim());
    if (!made.ok()) return made.status();
    predictor = *std::move(made);
  }
  return std::unique_ptr<Router>(
      new Router(std::move(catalog), std::move(embedder), std::move(predictor), options));
}

void Router::SetCachedTokensPredictor(
    std::shared_ptr<const request::CachedTokensPredictor> tracker) {
  MutexLock lock(&mu_);
  tracker_ = std::move(tracker);
}

std::string Router::predictor_kind() const {
  ReaderMutexLock lock(&mu_);
  return std::string(predictor_->kind());
}

size_t Router::examples() const {
  ReaderMutexLock lock(&mu_);
  return predictor_->size();
}

absl::StatusOr<std::vector<std::pair<float, uint32_t>>> Router::Neighbours(
    std::span<const float> embedding, size_t k) const {
  ReaderMutexLock lock(&mu_);
  const auto* knn = dynamic_cast<const KnnPredictor*>(predictor_.get());
  if (knn == nullptr) {
    return absl::FailedPreconditionError(
        ToAbsl(StrCat("Router::Neighbours needs the kNN predictor, this router uses '",
                      predictor_->kind(), "'")));
  }
  return knn->Neighbours(embedding, k);
}

absl::StatusOr<size_t> Router::ModelIndex(std::string_view name, std::string_view where) const {
  absl::StatusOr<const catalog::ModelSpec*> spec = catalog_.Get(name);
  if (!spec.ok()) {
    return absl::InvalidArgumentError(ToAbsl(StrCat(where, ": ", spec.status().message())));
  }
  return static_cast<size_t>(*spec - catalog_.models().data());
}

absl::Status Router::Embed(std::span<const std::string> texts, std::vector<float>& out) const {
  const size_t dim = embedder_->dim();
  out.assign(texts.size() * dim, 0.0f);
  std::vector<std::string_view> views;
  for (size_t start = 0; start < texts.size(); start += kEmbedBatch) {
    const size_t end = std::min(texts.size(), start + kEmbedBatch);
    views.assign(texts.begin() + static_cast<ptrdiff_t>(start),
                 texts.begin() + static_cast<ptrdiff_t>(end));
    if (absl::Status s = embedder_->EmbedBatch(
            views, std::span<float>(out.data() + start * dim, (end - start) * dim));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LabeledSet> Router::ToLabeledSet(std::span<const Example> examples,
                                                std::string_view where) const {
  const size_t m = catalog_.size();
  LabeledSet set;
  set.dim = embedder_->dim();
  set.models = m;
  set.categories.reserve(examples.size());
  set.quality.assign(examples.size() * m, std::numeric_limits<float>::quiet_NaN());
  set.output_tokens.assign(examples.size() * m, std::numeric_limits<float>::quiet_NaN());
  std::vector<std::string> texts;
  texts.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    const std::string at = StrCat(where, "[", i, "]");
    absl::StatusOr<RequestFeatures> features =
        ExtractFeatures(examples[i].input, options_.features);
    if (!features.ok()) {
      return absl::InvalidArgumentError(ToAbsl(StrCat(at, ": ", features.status().message())));
    }
    if (examples[i].labels.empty()) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat(at,
                        ": no labels; give at least one {model: quality in [0, 1]} (or {model: "
                        "output_tokens})")));
    }
    for (const Label& label : examples[i].labels) {
      const std::string lat = StrCat(at, "['", label.model, "']");
      absl::StatusOr<size_t> j = ModelIndex(label.model, lat);
      if (!j.ok()) return j.status();
      if (!label.quality && !label.output_tokens) {
        return absl::InvalidArgumentError(
            ToAbsl(StrCat(lat, ": a label needs a quality or an output-token count")));
      }
      if (label.quality) {
        const double q = *label.quality;
        if (!(q >= 0.0 && q <= 1.0)) {
          return absl::InvalidArgumentError(
              ToAbsl(StrCat(lat, ": quality must be in [0, 1], got ", q,
                            " (rescale scores first, e.g. a 1-10 judge score s -> (s-1)/9)")));
        }
        set.quality[i * m + *j] = static_cast<float>(q);
      }
      if (label.output_tokens) {
        const double t = *label.output_tokens;
        if (!(t >= 0.0 && std::isfinite(t))) {
          return absl::InvalidArgumentError(
              ToAbsl(StrCat(lat, ": output_tokens must be a finite number >= 0, got ", t)));
        }
        set.output_tokens[i * m + *j] = static_cast<float>(t);
      }
    }
    set.categories.push_back(features->category);
    texts.push_back(std::move(features->embed_text));
  }
  if (absl::Status s = Embed(texts, set.embeddings); !s.ok()) return s;
  return set;
}

absl::Status Router::Fit(std::span<const Example> examples) {
  absl::StatusOr<LabeledSet> set = ToLabeledSet(examples, "examples");
  if (!set.ok()) return set.status();
  MutexLock lock(&mu_);
  return predictor_->Fit(*set);
}

absl::Status Router::Feedback(const nlohmann::json& input, std::string_view model,
                              std::optional<double> quality, std::optional<double> output_tokens) {
  Example example{input, {Label{std::string(model), quality, output_tokens}}};
  absl::StatusOr<LabeledSet> set = ToLabeledSet(std::span<const Example>(&example, 1), "feedback");
  if (!set.ok()) return set.status();
  MutexLock lock(&mu_);
  return predictor_->Add(*set);
}

void Router::Estimate(const RequestFeatures& features, std::span<const float> embedding,
                      Decision& d) const {
  const size_t m = catalog_.size();
  d.predicted_quality.resize(m);
  d.output_tokens.resize(m);
  d.expected_cost_usd.resize(m);
  d.input_tokens.resize(m);
  d.cached_tokens.assign(m, 0);
  d.eligible.resize(m);
  d.category = features.category;
  std::shared_ptr<const request::CachedTokensPredictor> tracker;
  {
    ReaderMutexLock lock(&mu_);
    predictor_->Predict(PredictInput{features.category, embedding, features.input_tokens},
                        d.predicted_quality, d.output_tokens);
    tracker = tracker_;
  }
  // Input tokens per tokenizer family, each estimated once.
  std::array<int64_t, 5> by_family;
  by_family.fill(-1);
  by_family[static_cast<size_t>(request::TokenizerFamily::kO200k)] = features.input_tokens;
  for (size_t j = 0; j < m; ++j) {
    const catalog::ModelSpec& spec = catalog_.models()[j];
    int64_t& in = by_family[static_cast<size_t>(families_[j])];
    if (in < 0) in = request::RequestTokens(features.token_features, families_[j]);
    d.input_tokens[j] = in;
    if (tracker) {
      d.cached_tokens[j] = std::clamp<int64_t>(
          tracker->PredictCachedTokens(spec, features.request()), 0, d.input_tokens[j]);
    }
    const double uncached = static_cast<double>(d.input_tokens[j] - d.cached_tokens[j]);
    d.expected_cost_usd[j] = (uncached * spec.input_per_mtok +
                              static_cast<double>(d.cached_tokens[j]) * spec.CachedInputPrice() +
                              d.output_tokens[j] * spec.output_per_mtok) /
                             1e6;
    d.eligible[j] = options_.include_deprecated || !spec.deprecated;
  }
}

Decision Router::Decide(const RequestFeatures& features, std::span<const float> embedding,
                        const Threshold& threshold) const {
  Decision d;
  Estimate(features, embedding, d);
  const size_t m = catalog_.size();
  double best_q = -1;
  size_t best = m;
  for (size_t j = 0; j < m; ++j) {
    if (!d.eligible[j]) continue;
    const double q = d.predicted_quality[j];
    if (best == m || q > best_q ||
        (q == best_q && d.expected_cost_usd[j] < d.expected_cost_usd[best])) {
      best = j;
      best_q = q;
    }
  }
  d.threshold =
      threshold.kind == Threshold::Kind::kAbsolute ? threshold.value : threshold.value * best_q;
  size_t chosen = m;
  size_t meeting = 0;
  for (size_t j = 0; j < m; ++j) {
    if (!d.eligible[j] || d.predicted_quality[j] < d.threshold - 1e-12) continue;
    ++meeting;
    if (chosen == m || d.expected_cost_usd[j] < d.expected_cost_usd[chosen] ||
        (d.expected_cost_usd[j] == d.expected_cost_usd[chosen] &&
         d.predicted_quality[j] > d.predicted_quality[chosen])) {
      chosen = j;
    }
  }
  const std::string threshold_text =
      threshold.kind == Threshold::Kind::kAbsolute
          ? absl::StrFormat("%.3g", d.threshold)
          : absl::StrFormat("%.3g (%.3g of the best, %.3g)", d.threshold, threshold.value, best_q);
  if (chosen != m) {
    d.met_threshold = true;
    d.model_index = chosen;
    d.reason = absl::StrFormat(
        "cheapest of %d model(s) predicted >= %s for this %s request: %s (quality %.3f, %s)",
        meeting, threshold_text, CategoryName(d.category), catalog_.models()[chosen].name,
        d.predicted_quality[chosen], Usd(d.expected_cost_usd[chosen]));
    if (d.cached_tokens[chosen] > 0) {
      StrAppend(&d.reason, "; ", d.cached_tokens[chosen], " of ", d.input_tokens[chosen],
                " input tokens predicted cached");
    }
  } else {
    d.met_threshold = false;
    d.model_index = best;
    d.reason = absl::StrFormat(
        "no model is predicted >= %s for this %s request; chose the highest predicted quality: "
        "%s (quality %.3f, %s)",
        threshold_text, CategoryName(d.category), catalog_.models()[best].name, best_q,
        Usd(d.expected_cost_usd[best]));
  }
  d.model = catalog_.models()[d.model_index].name;
  return d;
}

absl::StatusOr<Decision> Router::Route(const nlohmann::json& input,
                                       std::optional<Threshold> threshold) const {
  const Threshold t = threshold.value_or(options_.threshold);
  if (absl::Status s = ValidateThreshold(t); !s.ok()) return s;
  absl::StatusOr<RequestFeatures> features = ExtractFeatures(input, options_.features);
  if (!features.ok()) return features.status();
  std::vector<float> embedding(embedder_->dim());
  if (absl::Status s = embedder_->Embed(features->embed_text, embedding); !s.ok()) return s;
  return Decide(*features, embedding, t);
}

absl::StatusOr<Decision> Router::RouteEmbedded(const nlohmann::json& input,
                                               std::span<const float> embedding,
                                               std::optional<Threshold> threshold) const {
  const Threshold t = threshold.value_or(options_.threshold);
  if (absl::Status s = ValidateThreshold(t); !s.ok()) return s;
  if (embedding.size() != embedder_->dim()) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("embedding must have ", embedder_->dim(),
                      " floats (the embedder's dim), got ", embedding.size())));
  }
  absl::StatusOr<RequestFeatures> features = ExtractFeatures(input, options_.features);
  if (!features.ok()) return features.status();
  return Decide(*features, embedding, t);
}

absl::Status Router::Predict(std::span<const nlohmann::json> inputs, std::span<double> quality,
                             std::span<double> output_tokens,
                             std::span<double> expected_cost) const {
  const size_t m = catalog_.size();
  const size_t n = inputs.size();
  if (quality.size() != n * m || output_tokens.size() != n * m ||
      (!expected_cost.empty() && expected_cost.size() != n * m)) {
    return absl::InvalidArgumentError("Router::Predict: output spans must hold n * m values");
  }
  std::vector<RequestFeatures> features;
  features.reserve(n);
  std::vector<std::string> texts;
  texts.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<RequestFeatures> f = ExtractFeatures(inputs[i], options_.features);
    if (!f.ok()) {
      return absl::InvalidArgumentError(ToAbsl(StrCat("prompts[", i, "]: ", f.status().message())));
    }
    texts.push_back(f->embed_text);
    features.push_back(*std::move(f));
  }
  std::vector<float> embeddings;
  if (absl::Status s = Embed(texts, embeddings); !s.ok()) return s;
  const size_t dim = embedder_->dim();
  Decision d;
  for (size_t i = 0; i < n; ++i) {
    Estimate(features[i], std::span<const float>(embeddings.data() + i * dim, dim), d);
    std::copy(d.predicted_quality.begin(), d.predicted_quality.end(), quality.begin() + i * m);
    std::copy(d.output_tokens.begin(), d.output_tokens.end(), output_tokens.begin() + i * m);
    if (!expected_cost.empty()) {
      std::copy(d.expected_cost_usd.begin(), d.expected_cost_usd.end(),
                expected_cost.begin() + i * m);
    }
  }
  return absl::OkStatus();
}

}  // namespace thrifty::route
