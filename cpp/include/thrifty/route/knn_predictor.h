// KnnPredictor: per-model quality and output tokens from the nearest labeled prompts.
//
// For a request with embedding x and category c, the k nearest labeled examples by inner
// product (cosine: embeddings are L2-normalized) vote. Neighbour i with similarity s_i weighs
// w_i = max(s_i, 0)^power, so far neighbours count little. For model j,
//
//   quality_j = (sum_i w_i * y_ij + shrinkage * prior_j(c)) / (sum_i w_i + shrinkage)
//
// over the neighbours labeled for j: with few or far neighbours the estimate stays at the
// prior (Priors, already blended with the labels' per-category means); with many close ones it
// follows them. Output tokens are estimated the same way from the labeled output tokens.
//
// Index: exact (SIMD flat scan) below `exact_below` examples; from there a FAISS HNSW graph
// (IndexHNSWFlat, inner product) searched single-threaded per query, so route() latency stays
// flat as the store grows (benchmarks/bench_router.py).
//
// Memory bound and eviction: at most `max_examples` examples (about dim*4 + hnsw_m*8 +
// models*8 bytes each). Adding past the bound evicts the OLDEST examples first (FIFO: the most
// recent feedback describes current traffic best), in batches of a tenth of the bound so the
// index is rebuilt rarely. Evicted labels still count in the priors (Priors::Accumulate).
//
// Thread-safety: thread-compatible (see QualityPredictor); Predict may run concurrently.
#ifndef THRIFTY_ROUTE_KNN_PREDICTOR_H_
#define THRIFTY_ROUTE_KNN_PREDICTOR_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "thrifty/route/predictor.h"

namespace faiss {
struct IndexHNSWFlat;
}  // namespace faiss

namespace thrifty::route {

struct KnnOptions {
  size_t k = 32;
  double power = 4.0;      // neighbour weight = similarity^power
  double shrinkage = 1.0;  // weight of the prior, in units of one identical neighbour
  size_t max_examples = 200000;
  size_t exact_below = 4096;  // flat scan below this many examples, HNSW from there
  int hnsw_m = 32;
  int hnsw_ef_construction = 80;
  int hnsw_ef_search = 64;
};

// InvalidArgument naming the option when one is out of range.
absl::Status ValidateKnnOptions(const KnnOptions& options);

class KnnPredictor final : public QualityPredictor {
 public:
  static absl::StatusOr<std::unique_ptr<KnnPredictor>> Create(Priors priors, size_t dim,
                                                              KnnOptions options = {});
  ~KnnPredictor() override;

  std::string_view kind() const override { return "knn"; }
  void Predict(const PredictInput& input, std::span<double> quality,
               std::span<double> output_tokens) const override;
  absl::Status Fit(const LabeledSet& set) override;
  absl::Status Add(const LabeledSet& set) override;
  size_t size() const override { return data_.size(); }
  size_t memory_bytes() const override;
  void Save(std::string& out) const override;
  absl::Status Load(std::string_view& in) override;

  // The k nearest stored examples to `embedding`: (similarity, example index), best first.
  std::vector<std::pair<float, uint32_t>> Neighbours(std::span<const float> embedding,
                                                     size_t k) const;
  bool uses_hnsw() const { return hnsw_ != nullptr; }
  const KnnOptions& options() const { return options_; }
  const Priors& priors() const { return priors_; }

 private:
  KnnPredictor(Priors priors, size_t dim, KnnOptions options);

  const float* Vectors() const;
  // Re-indexes data_ (HNSW when large enough); moves the vectors into the index.
  void Reindex();
  void SearchInto(const float* query, size_t k, std::vector<std::pair<float, uint32_t>>& out) const;

  Priors priors_;
  const size_t dim_;
  KnnOptions options_;
  // In insertion order. data_.embeddings is empty while hnsw_ holds the vectors.
  LabeledSet data_;
  std::unique_ptr<faiss::IndexHNSWFlat> hnsw_;
};

}  // namespace thrifty::route

#endif  // THRIFTY_ROUTE_KNN_PREDICTOR_H_
