#include "thrifty/route/prior_predictor.h"

#include "bytes.h"

namespace thrifty::route {

void PriorPredictor::Predict(const PredictInput& input, std::span<double> quality,
                             std::span<double> output_tokens) const {
  for (size_t j = 0; j < priors_.models(); ++j) {
    quality[j] = priors_.quality(j, input.category);
    output_tokens[j] = priors_.output_tokens(j, input.category);
  }
}

absl::Status PriorPredictor::Fit(const LabeledSet& set) {
  priors_.Reset();
  examples_ = 0;
  return Add(set);
}

absl::Status PriorPredictor::Add(const LabeledSet& set) {
  priors_.Accumulate(set);
  examples_ += set.size();
  return absl::OkStatus();
}

void PriorPredictor::Save(std::string& out) const {
  internal::PutU64(out, examples_);
  priors_.Save(out);
}

absl::Status PriorPredictor::Load(std::string_view& in) {
  uint64_t n = 0;
  if (auto s = internal::GetU64(in, n, "prior predictor"); !s.ok()) return s;
  if (auto s = priors_.Load(in); !s.ok()) return s;
  examples_ = n;
  return absl::OkStatus();
}

}  // namespace thrifty::route
