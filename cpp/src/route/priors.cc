#include <cmath>

#include "bytes.h"
#include "thrifty/route/predictor.h"

namespace thrifty::route {

using internal::GetF64;
using internal::GetU64;
using internal::GetVec;
using internal::PutF64;
using internal::PutU64;
using internal::PutVec;

Priors Priors::FromCatalog(const catalog::Catalog& catalog) {
  Priors p;
  const size_t m = catalog.size();
  p.models_ = m;
  p.policy_quality_.assign(m * kNumCategories, 0.5);
  p.from_policy_.assign(m * kNumCategories, 0);
  // Rule 3: per category, the mean over models with a prior.
  std::vector<double> cat_sum(kNumCategories, 0.0), cat_count(kNumCategories, 0.0);
  for (size_t j = 0; j < m; ++j) {
    const auto& q = catalog.models()[j].quality;
    for (size_t c = 0; c < kNumCategories; ++c) {
      auto it = q.find(CategoryName(kAllCategories[c]));
      if (it != q.end()) {
        cat_sum[c] += it->second;
        cat_count[c] += 1;
      }
    }
  }
  for (size_t j = 0; j < m; ++j) {
    const auto& q = catalog.models()[j].quality;
    double own_sum = 0, own_count = 0;
    for (size_t c = 0; c < kNumCategories; ++c) {
      auto it = q.find(CategoryName(kAllCategories[c]));
      if (it != q.end()) {
        p.policy_quality_[j * kNumCategories + c] = it->second;
        p.from_policy_[j * kNumCategories + c] = 1;
        own_sum += it->second;
        own_count += 1;
      }
    }
    for (size_t c = 0; c < kNumCategories; ++c) {
      if (p.from_policy_[j * kNumCategories + c]) continue;
      double v = 0.5;       // rule 4
      if (own_count > 0) {  // rule 2
        v = own_sum / own_count;
      } else if (cat_count[c] > 0) {  // rule 3
        v = cat_sum[c] / cat_count[c];
      }
      p.policy_quality_[j * kNumCategories + c] = v;
    }
  }
  p.Reset();
  return p;
}

void Priors::Reset() {
  const size_t cells = models_ * kNumCategories;
  q_sum_.assign(cells, 0.0);
  q_count_.assign(cells, 0.0);
  t_sum_.assign(cells, 0.0);
  t_count_.assign(cells, 0.0);
  Recompute();
}

void Priors::Accumulate(const LabeledSet& set) {
  const size_t m = models_;
  for (size_t i = 0; i < set.size(); ++i) {
    const size_t c = static_cast<size_t>(set.categories[i]);
    for (size_t j = 0; j < m; ++j) {
      const float q = set.quality[i * m + j];
      if (!std::isnan(q)) {
        q_sum_[j * kNumCategories + c] += q;
        q_count_[j * kNumCategories + c] += 1;
      }
      const float t = set.output_tokens[i * m + j];
      if (!std::isnan(t)) {
        t_sum_[j * kNumCategories + c] += t;
        t_count_[j * kNumCategories + c] += 1;
      }
    }
  }
  Recompute();
}

void Priors::Recompute() {
  const size_t m = models_;
  quality_.assign(m * kNumCategories, 0.0);
  output_tokens_.assign(m * kNumCategories, kDefaultOutputTokens);
  for (size_t j = 0; j < m; ++j) {
    const size_t row = j * kNumCategories;
    double qs = 0, qn = 0, ts = 0, tn = 0, policy_mean = 0;
    for (size_t c = 0; c < kNumCategories; ++c) {
      qs += q_sum_[row + c];
      qn += q_count_[row + c];
      ts += t_sum_[row + c];
      tn += t_count_[row + c];
      policy_mean += policy_quality_[row + c];
    }
    policy_mean /= kNumCategories;
    const double model_mean = (qs + strength_ * policy_mean) / (qn + strength_);
    for (size_t c = 0; c < kNumCategories; ++c) {
      const double base = from_policy_[row + c] ? policy_quality_[row + c]
                          : qn > 0              ? model_mean
                                                : policy_quality_[row + c];
      quality_[row + c] = (q_sum_[row + c] + strength_ * base) / (q_count_[row + c] + strength_);
      if (t_count_[row + c] > 0) {
        output_tokens_[row + c] = t_sum_[row + c] / t_count_[row + c];
      } else if (tn > 0) {
        output_tokens_[row + c] = ts / tn;
      }
    }
  }
}

void Priors::Save(std::string& out) const {
  PutU64(out, models_);
  PutF64(out, strength_);
  PutVec(out, policy_quality_);
  PutVec(out, from_policy_);
  PutVec(out, q_sum_);
  PutVec(out, q_count_);
  PutVec(out, t_sum_);
  PutVec(out, t_count_);
}

absl::Status Priors::Load(std::string_view& in) {
  uint64_t m = 0;
  if (auto s = GetU64(in, m, "priors"); !s.ok()) return s;
  if (m != models_) {
    return absl::DataLossError(
        ToAbsl(StrCat("router file: priors hold ", m, " models, expected ", models_)));
  }
  Priors p = *this;
  for (auto s : {GetF64(in, p.strength_, "priors"), GetVec(in, p.policy_quality_, "priors"),
                 GetVec(in, p.from_policy_, "priors"), GetVec(in, p.q_sum_, "priors"),
                 GetVec(in, p.q_count_, "priors"), GetVec(in, p.t_sum_, "priors"),
                 GetVec(in, p.t_count_, "priors")}) {
    if (!s.ok()) return s;
  }
  const size_t cells = models_ * kNumCategories;
  for (size_t n : {p.policy_quality_.size(), p.from_policy_.size(), p.q_sum_.size(),
                   p.q_count_.size(), p.t_sum_.size(), p.t_count_.size()}) {
    if (n != cells) return absl::DataLossError("router file: priors table has the wrong size");
  }
  p.Recompute();
  *this = std::move(p);
  return absl::OkStatus();
}

void LabeledSet::Append(const LabeledSet& other) {
  embeddings.insert(embeddings.end(), other.embeddings.begin(), other.embeddings.end());
  categories.insert(categories.end(), other.categories.begin(), other.categories.end());
  quality.insert(quality.end(), other.quality.begin(), other.quality.end());
  output_tokens.insert(output_tokens.end(), other.output_tokens.begin(), other.output_tokens.end());
}

}  // namespace thrifty::route
