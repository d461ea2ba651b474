#include "thrifty/route/logistic_predictor.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "bytes.h"
#include "thrifty/base/strings.h"

namespace thrifty::route {
namespace {

using internal::GetF64;
using internal::GetU64;
using internal::GetVec;
using internal::PutF64;
using internal::PutU64;
using internal::PutVec;

double Sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

// log(1 + exp(z)) without overflow.
double Softplus(double z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The rows labeled for one model, viewed as the design matrix [embedding, one-hot, 1].
class Design {
 public:
  Design(const LabeledSet& set, size_t model, size_t dim)
      : set_(set), dim_(dim), features_(dim + kNumCategories + 1) {
    for (size_t i = 0; i < set.size(); ++i) {
      const float q = set.quality[i * set.models + model];
      if (!std::isnan(q)) {
        rows_.push_back(i);
        y_.push_back(q);
      }
    }
  }

  size_t n() const { return rows_.size(); }
  size_t features() const { return features_; }
  const std::vector<double>& y() const { return y_; }

  double RowDot(size_t r, const std::vector<double>& v) const {
    const size_t i = rows_[r];
    const float* e = set_.embeddings.data() + i * dim_;
    double s = 0;
    for (size_t k = 0; k < dim_; ++k) s += e[k] * v[k];
    return s + v[dim_ + static_cast<size_t>(set_.categories[i])] + v[features_ - 1];
  }
  // out += a * x_r
  void AddRow(size_t r, double a, std::vector<double>& out) const {
    const size_t i = rows_[r];
    const float* e = set_.embeddings.data() + i * dim_;
    for (size_t k = 0; k < dim_; ++k) out[k] += a * e[k];
    out[dim_ + static_cast<size_t>(set_.categories[i])] += a;
    out[features_ - 1] += a;
  }

 private:
  const LabeledSet& set_;
  const size_t dim_;
  const size_t features_;
  std::vector<size_t> rows_;
  std::vector<double> y_;
};

// Regularized loss; `z` receives the margins.
double Loss(const Design& X, const std::vector<double>& w, double l2, std::vector<double>& z) {
  double loss = 0;
  z.resize(X.n());
  for (size_t r = 0; r < X.n(); ++r) {
    z[r] = X.RowDot(r, w);
    loss += Softplus(z[r]) - X.y()[r] * z[r];
  }
  for (size_t k = 0; k + 1 < w.size(); ++k) loss += 0.5 * l2 * w[k] * w[k];
  return loss;
}

void Train(const Design& X, double l2, int max_iterations, std::vector<double>& w) {
  const size_t d = X.features();
  std::vector<double> z, p(X.n()), D(X.n()), g(d), s(d), r(d), dir(d), Hd(d), trial(d), zt;
  double loss = Loss(X, w, l2, z);
  double g0 = -1;
  for (int iter = 0; iter < max_iterations; ++iter) {
    std::fill(g.begin(), g.end(), 0.0);
    for (size_t i = 0; i < X.n(); ++i) {
      p[i] = Sigmoid(z[i]);
      D[i] = std::max(p[i] * (1 - p[i]), 1e-10);
      X.AddRow(i, p[i] - X.y()[i], g);
    }
    for (size_t k = 0; k + 1 < d; ++k) g[k] += l2 * w[k];
    const double gnorm = std::sqrt(Dot(g, g));
    if (g0 < 0) g0 = gnorm;
    if (gnorm <= 1e-5 * std::max(g0, 1.0)) break;
    // Conjugate gradients on H s = -g.
    std::fill(s.begin(), s.end(), 0.0);
    for (size_t k = 0; k < d; ++k) r[k] = -g[k];
    dir = r;
    double rr = Dot(r, r);
    const double tol = std::min(0.5, std::sqrt(gnorm)) * gnorm;
    for (int cg = 0; cg < 50 && std::sqrt(rr) > tol; ++cg) {
      std::fill(Hd.begin(), Hd.end(), 0.0);
      for (size_t i = 0; i < X.n(); ++i) X.AddRow(i, D[i] * X.RowDot(i, dir), Hd);
      for (size_t k = 0; k + 1 < d; ++k) Hd[k] += l2 * dir[k];
      Hd[d - 1] += 1e-8 * dir[d - 1];
      const double dHd = Dot(dir, Hd);
      if (dHd <= 0) break;
      const double alpha = rr / dHd;
      for (size_t k = 0; k < d; ++k) {
        s[k] += alpha * dir[k];
        r[k] -= alpha * Hd[k];
      }
      const double rr_new = Dot(r, r);
      for (size_t k = 0; k < d; ++k) dir[k] = r[k] + (rr_new / rr) * dir[k];
      rr = rr_new;
    }
    // Backtracking line search (Armijo).
    const double slope = Dot(g, s);
    if (!(slope < 0)) break;
    double t = 1.0;
    bool moved = false;
    for (int ls = 0; ls < 30; ++ls, t *= 0.5) {
      for (size_t k = 0; k < d; ++k) trial[k] = w[k] + t * s[k];
      const double trial_loss = Loss(X, trial, l2, zt);
      if (trial_loss <= loss + 1e-4 * t * slope) {
        w.swap(trial);
        z.swap(zt);
        loss = trial_loss;
        moved = true;
        break;
      }
    }
    if (!moved) break;
  }
}

}  // namespace

absl::Status ValidateLogisticOptions(const LogisticOptions& o) {
  if (!(o.l2 > 0 && std::isfinite(o.l2))) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("LogisticPredictor: l2 must be a finite number > 0, got ", o.l2)));
  }
  if (o.max_iterations < 1 || o.max_iterations > 1000) {
    return absl::InvalidArgumentError(ToAbsl(
        StrCat("LogisticPredictor: max_iterations must be in [1, 1000], got ", o.max_iterations)));
  }
  if (!(o.learning_rate >= 0 && o.learning_rate <= 10)) {
    return absl::InvalidArgumentError(ToAbsl(
        StrCat("LogisticPredictor: learning_rate must be in [0, 10], got ", o.learning_rate)));
  }
  return absl::OkStatus();
}

LogisticPredictor::LogisticPredictor(Priors priors, size_t dim, LogisticOptions options)
    : priors_(std::move(priors)), dim_(dim), options_(options) {
  weights_.assign(priors_.models() * features(), 0.0);
  trained_.assign(priors_.models(), 0);
  labeled_.assign(priors_.models(), 0.0);
}

absl::StatusOr<std::unique_ptr<LogisticPredictor>> LogisticPredictor::Create(
    Priors priors, size_t dim, LogisticOptions options) {
  if (absl::Status s = ValidateLogisticOptions(options); !s.ok()) return s;
  if (dim == 0) return absl::InvalidArgumentError("LogisticPredictor: dim must be > 0");
  return std::unique_ptr<LogisticPredictor>(new LogisticPredictor(std::move(priors), dim, options));
}

void LogisticPredictor::Features(std::span<const float> embedding, Category c,
                                 std::vector<double>& x) const {
  x.assign(features(), 0.0);
  if (embedding.size() == dim_) {
    for (size_t k = 0; k < dim_; ++k) x[k] = embedding[k];
  }
  x[dim_ + static_cast<size_t>(c)] = 1.0;
  x[features() - 1] = 1.0;
}

void LogisticPredictor::Predict(const PredictInput& input, std::span<double> quality,
                                std::span<double> output_tokens) const {
  thread_local std::vector<double> x;
  Features(input.embedding, input.category, x);
  const size_t d = features();
  for (size_t j = 0; j < priors_.models(); ++j) {
    output_tokens[j] = priors_.output_tokens(j, input.category);
    if (!trained_[j]) {
      quality[j] = priors_.quality(j, input.category);
      continue;
    }
    const double* w = weights_.data() + j * d;
    double z = 0;
    for (size_t k = 0; k < d; ++k) z += w[k] * x[k];
    quality[j] = Sigmoid(z);
  }
}

absl::Status LogisticPredictor::Fit(const LabeledSet& set) {
  if (set.dim != dim_ || set.models != priors_.models()) {
    return absl::InvalidArgumentError("LogisticPredictor: examples do not match the predictor");
  }
  priors_.Reset();
  priors_.Accumulate(set);
  const size_t d = features();
  std::fill(weights_.begin(), weights_.end(), 0.0);
  std::fill(trained_.begin(), trained_.end(), 0);
  std::fill(labeled_.begin(), labeled_.end(), 0.0);
  for (size_t j = 0; j < priors_.models(); ++j) {
    Design X(set, j, dim_);
    if (X.n() == 0) continue;
    std::vector<double> w(d, 0.0);
    double mean = 0;
    for (double y : X.y()) mean += y;
    mean = std::clamp(mean / static_cast<double>(X.n()), 1e-3, 1 - 1e-3);
    w[d - 1] = std::log(mean / (1 - mean));
    Train(X, options_.l2, options_.max_iterations, w);
    std::copy(w.begin(), w.end(), weights_.begin() + static_cast<ptrdiff_t>(j * d));
    trained_[j] = 1;
    labeled_[j] = static_cast<double>(X.n());
  }
  examples_ = set.size();
  return absl::OkStatus();
}

absl::Status LogisticPredictor::Add(const LabeledSet& set) {
  if (set.dim != dim_ || set.models != priors_.models()) {
    return absl::InvalidArgumentError("LogisticPredictor: examples do not match the predictor");
  }
  priors_.Accumulate(set);
  const size_t m = priors_.models();
  const size_t d = features();
  std::vector<double> x;
  for (size_t i = 0; i < set.size(); ++i) {
    Features(std::span<const float>(set.embeddings.data() + i * dim_, dim_), set.categories[i], x);
    for (size_t j = 0; j < m; ++j) {
      const float y = set.quality[i * m + j];
      if (std::isnan(y)) continue;
      double* w = weights_.data() + j * d;
      if (!trained_[j]) {  // start from the prior
        const double prior = std::clamp(priors_.quality(j, set.categories[i]), 1e-3, 1 - 1e-3);
        std::fill(w, w + d, 0.0);
        w[d - 1] = std::log(prior / (1 - prior));
        trained_[j] = 1;
      }
      double z = 0;
      for (size_t k = 0; k < d; ++k) z += w[k] * x[k];
      const double eta = options_.learning_rate * 100.0 / (100.0 + labeled_[j]);
      const double err = Sigmoid(z) - y;
      const double n = std::max(1.0, labeled_[j]);
      for (size_t k = 0; k < d; ++k) {
        const double reg = k + 1 < d ? options_.l2 / n * w[k] : 0.0;
        w[k] -= eta * (err * x[k] + reg);
      }
      labeled_[j] += 1;
    }
  }
  examples_ += set.size();
  return absl::OkStatus();
}

void LogisticPredictor::Save(std::string& out) const {
  PutU64(out, dim_);
  PutF64(out, options_.l2);
  PutU64(out, static_cast<uint64_t>(options_.max_iterations));
  PutF64(out, options_.learning_rate);
  PutU64(out, examples_);
  priors_.Save(out);
  PutVec(out, weights_);
  PutVec(out, trained_);
  PutVec(out, labeled_);
}

absl::Status LogisticPredictor::Load(std::string_view& in) {
  uint64_t dim = 0, iterations = 0, examples = 0;
  LogisticOptions o;
  for (auto s :
       {GetU64(in, dim, "logistic dim"), GetF64(in, o.l2, "logistic options"),
        GetU64(in, iterations, "logistic options"), GetF64(in, o.learning_rate, "logistic options"),
        GetU64(in, examples, "logistic options")}) {
    if (!s.ok()) return s;
  }
  if (dim != dim_) {
    return absl::InvalidArgumentError(ToAbsl(StrCat(
        "router file: the logistic weights are for ", dim, "-d embeddings but the embedder makes ",
        dim_, "-d ones; load it with the embedder it was saved with")));
  }
  o.max_iterations = static_cast<int>(std::min<uint64_t>(iterations, 100000));
  if (absl::Status s = ValidateLogisticOptions(o); !s.ok()) {
    return absl::DataLossError(ToAbsl(StrCat("router file: ", s.message())));
  }
  Priors priors = priors_;
  std::vector<double> weights, labeled;
  std::vector<uint8_t> trained;
  for (auto s :
       {priors.Load(in), GetVec(in, weights, "logistic weights"),
        GetVec(in, trained, "logistic weights"), GetVec(in, labeled, "logistic weights")}) {
    if (!s.ok()) return s;
  }
  if (weights.size() != weights_.size() || trained.size() != trained_.size() ||
      labeled.size() != labeled_.size()) {
    return absl::DataLossError("router file: logistic weights have the wrong size");
  }
  options_ = o;
  priors_ = std::move(priors);
  weights_ = std::move(weights);
  trained_ = std::move(trained);
  labeled_ = std::move(labeled);
  examples_ = examples;
  return absl::OkStatus();
}

}  // namespace thrifty::route
