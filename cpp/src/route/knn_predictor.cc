#include "thrifty/route/knn_predictor.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "bytes.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/impl/AuxIndexStructures.h"  // faiss::VisitedTable
#include "faiss/impl/DistanceComputer.h"
#include "faiss/impl/HNSW.h"
#include "faiss/impl/io.h"  // faiss::VectorIOWriter / VectorIOReader
#include "faiss/index_io.h"
#include "faiss/utils/Heap.h"
#include "faiss/utils/distances.h"
#include "thrifty/base/strings.h"

namespace thrifty::route {
namespace {

using internal::GetF64;
using internal::GetStr;
using internal::GetU64;
using internal::GetVec;
using internal::PutF64;
using internal::PutStr;
using internal::PutU64;
using internal::PutVec;

// HNSW minimizes distances; inner product is a similarity, so negate it (as FAISS does inside
// IndexHNSW for METRIC_INNER_PRODUCT).
class NegatedDistance final : public faiss::DistanceComputer {
 public:
  explicit NegatedDistance(faiss::DistanceComputer* base) : base_(base) {}
  void set_query(const float* x) override { base_->set_query(x); }
  float operator()(idx_t i) override { return -(*base_)(i); }
  float symmetric_dis(idx_t i, idx_t j) override { return -base_->symmetric_dis(i, j); }

 private:
  std::unique_ptr<faiss::DistanceComputer> base_;
};

bool IsZero(std::span<const float> v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; });
}

}  // namespace

absl::Status ValidateKnnOptions(const KnnOptions& o) {
  auto bad = [](std::string_view field, std::string_view accepted, auto got) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("KnnPredictor: ", field, " must be ", accepted, ", got ", got)));
  };
  if (o.k < 1 || o.k > 1024) return bad("k", "in [1, 1024]", o.k);
  if (!(o.power >= 0 && o.power <= 64)) return bad("power", "in [0, 64]", o.power);
  if (!(o.shrinkage > 0 && std::isfinite(o.shrinkage))) {
    return bad("shrinkage", "a finite number > 0", o.shrinkage);
  }
  if (o.max_examples < 1 || o.max_examples > (size_t{1} << 31)) {
    return bad("max_examples", "in [1, 2^31]", o.max_examples);
  }
  if (o.hnsw_m < 4 || o.hnsw_m > 128) return bad("hnsw_m", "in [4, 128]", o.hnsw_m);
  if (o.hnsw_ef_construction < 8)
    return bad("hnsw_ef_construction", ">= 8", o.hnsw_ef_construction);
  if (o.hnsw_ef_search < 8) return bad("hnsw_ef_search", ">= 8", o.hnsw_ef_search);
  return absl::OkStatus();
}

KnnPredictor::KnnPredictor(Priors priors, size_t dim, KnnOptions options)
    : priors_(std::move(priors)), dim_(dim), options_(options) {
  data_.dim = dim;
  data_.models = priors_.models();
}

KnnPredictor::~KnnPredictor() = default;

absl::StatusOr<std::unique_ptr<KnnPredictor>> KnnPredictor::Create(Priors priors, size_t dim,
                                                                   KnnOptions options) {
  if (absl::Status s = ValidateKnnOptions(options); !s.ok()) return s;
  if (dim == 0) return absl::InvalidArgumentError("KnnPredictor: dim must be > 0");
  return std::unique_ptr<KnnPredictor>(new KnnPredictor(std::move(priors), dim, options));
}

const float* KnnPredictor::Vectors() const {
  if (hnsw_) return static_cast<const faiss::IndexFlat*>(hnsw_->storage)->get_xb();
  return data_.embeddings.data();
}

size_t KnnPredictor::memory_bytes() const {
  size_t bytes = data_.size() * (dim_ * sizeof(float) + 1 + data_.models * 2 * sizeof(float));
  if (hnsw_) {
    bytes += hnsw_->hnsw.neighbors.size() * sizeof(int) +
             hnsw_->hnsw.offsets.size() * sizeof(size_t) + hnsw_->hnsw.levels.size() * sizeof(int);
  }
  return bytes;
}

void KnnPredictor::Reindex() {
  if (hnsw_) {  // take the vectors back out of the index
    const float* xb = Vectors();
    data_.embeddings.assign(xb, xb + data_.size() * dim_);
    hnsw_.reset();
  }
  if (data_.size() < options_.exact_below) return;
  auto index = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(dim_), options_.hnsw_m,
                                                      faiss::METRIC_INNER_PRODUCT);
  index->hnsw.efConstruction = options_.hnsw_ef_construction;
  index->hnsw.efSearch = options_.hnsw_ef_search;
  index->add(static_cast<faiss::Index::idx_t>(data_.size()), data_.embeddings.data());
  hnsw_ = std::move(index);
  data_.embeddings.clear();
  data_.embeddings.shrink_to_fit();
}

absl::Status KnnPredictor::Fit(const LabeledSet& set) {
  priors_.Reset();
  data_ = LabeledSet{};
  data_.dim = dim_;
  data_.models = priors_.models();
  hnsw_.reset();
  return Add(set);
}

absl::Status KnnPredictor::Add(const LabeledSet& set) {
  if (set.dim != dim_ || set.models != data_.models) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("KnnPredictor: examples have dim ", set.dim, " and ", set.models,
                      " models; the predictor has dim ", dim_, " and ", data_.models)));
  }
  priors_.Accumulate(set);
  const size_t total = data_.size() + set.size();
  if (total > options_.max_examples) {
    // FIFO eviction in batches of a tenth of the bound (one re-index per batch).
    const size_t batch = std::max<size_t>(1, options_.max_examples / 10);
    size_t drop = std::min(data_.size(), total - options_.max_examples + batch);
    if (hnsw_) {
      const float* xb = Vectors();
      data_.embeddings.assign(xb, xb + data_.size() * dim_);
      hnsw_.reset();
    }
    const size_t m = data_.models;
    data_.embeddings.erase(data_.embeddings.begin(),
                           data_.embeddings.begin() + static_cast<ptrdiff_t>(drop * dim_));
    data_.categories.erase(data_.categories.begin(),
                           data_.categories.begin() + static_cast<ptrdiff_t>(drop));
    data_.quality.erase(data_.quality.begin(),
                        data_.quality.begin() + static_cast<ptrdiff_t>(drop * m));
    data_.output_tokens.erase(data_.output_tokens.begin(),
                              data_.output_tokens.begin() + static_cast<ptrdiff_t>(drop * m));
    // The new set itself may exceed the bound: keep its newest rows.
    LabeledSet tail;
    const LabeledSet* add = &set;
    if (set.size() > options_.max_examples) {
      const size_t skip = set.size() - options_.max_examples;
      tail.dim = set.dim;
      tail.models = m;
      tail.embeddings.assign(set.embeddings.begin() + static_cast<ptrdiff_t>(skip * dim_),
                             set.embeddings.end());
      tail.categories.assign(set.categories.begin() + static_cast<ptrdiff_t>(skip),
                             set.categories.end());
      tail.quality.assign(set.quality.begin() + static_cast<ptrdiff_t>(skip * m),
                          set.quality.end());
      tail.output_tokens.assign(set.output_tokens.begin() + static_cast<ptrdiff_t>(skip * m),
                                set.output_tokens.end());
      add = &tail;
    }
    data_.Append(*add);
    Reindex();
    return absl::OkStatus();
  }
  if (hnsw_) {
    data_.categories.insert(data_.categories.end(), set.categories.begin(), set.categories.end());
    data_.quality.insert(data_.quality.end(), set.quality.begin(), set.quality.end());
    data_.output_tokens.insert(data_.output_tokens.end(), set.output_tokens.begin(),
                               set.output_tokens.end());
    hnsw_->add(static_cast<faiss::Index::idx_t>(set.size()), set.embeddings.data());
    return absl::OkStatus();
  }
  data_.Append(set);
  if (data_.size() >= options_.exact_below) Reindex();
  return absl::OkStatus();
}

void KnnPredictor::SearchInto(const float* query, size_t k,
                              std::vector<std::pair<float, uint32_t>>& out) const {
  out.clear();
  const size_t n = data_.size();
  if (n == 0 || k == 0) return;
  k = std::min(k, n);
  if (!hnsw_) {
    thread_local std::vector<float> sims;
    thread_local std::vector<uint32_t> order;
    sims.resize(n);
    faiss::fvec_inner_products_ny(sims.data(), query, data_.embeddings.data(), dim_, n);
    order.resize(n);
    for (uint32_t i = 0; i < n; ++i) order[i] = i;
    auto better = [&](uint32_t a, uint32_t b) {
      return sims[a] > sims[b] || (sims[a] == sims[b] && a < b);
    };
    std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(k), order.end(),
                      better);
    for (size_t i = 0; i < k; ++i) out.emplace_back(sims[order[i]], order[i]);
    return;
  }
  thread_local std::unique_ptr<faiss::VisitedTable> visited;
  if (!visited || visited->visited.size() < n) {
    visited = std::make_unique<faiss::VisitedTable>(static_cast<int>(n + n / 4 + 1024));
  }
  NegatedDistance distance(hnsw_->storage->get_distance_computer());
  distance.set_query(query);
  thread_local std::vector<float> dist;
  thread_local std::vector<faiss::Index::idx_t> ids;
  dist.resize(k);
  ids.resize(k);
  faiss::maxheap_heapify(k, dist.data(), ids.data());
  faiss::SearchParametersHNSW params;
  params.efSearch = std::max<int>(options_.hnsw_ef_search, static_cast<int>(k));
  hnsw_->hnsw.search(distance, static_cast<int>(k), ids.data(), dist.data(), *visited, &params);
  visited->advance();
  faiss::maxheap_reorder(k, dist.data(), ids.data());
  for (size_t i = 0; i < k; ++i) {
    if (ids[i] < 0) break;
    out.emplace_back(-dist[i], static_cast<uint32_t>(ids[i]));
  }
}

std::vector<std::pair<float, uint32_t>> KnnPredictor::Neighbours(std::span<const float> embedding,
                                                                 size_t k) const {
  std::vector<std::pair<float, uint32_t>> out;
  if (embedding.size() == dim_ && !IsZero(embedding)) SearchInto(embedding.data(), k, out);
  return out;
}

void KnnPredictor::Predict(const PredictInput& input, std::span<double> quality,
                           std::span<double> output_tokens) const {
  const size_t m = data_.models;
  thread_local std::vector<std::pair<float, uint32_t>> neighbours;
  neighbours.clear();
  if (input.embedding.size() == dim_ && !IsZero(input.embedding)) {
    SearchInto(input.embedding.data(), options_.k, neighbours);
  }
  thread_local std::vector<double> weights;
  weights.resize(neighbours.size());
  for (size_t i = 0; i < neighbours.size(); ++i) {
    const double s = std::max(0.0f, neighbours[i].first);
    weights[i] = options_.power == 0 ? 1.0 : std::pow(s, options_.power);
  }
  const double shrink = options_.shrinkage;
  for (size_t j = 0; j < m; ++j) {
    double q_num = shrink * priors_.quality(j, input.category);
    double q_den = shrink;
    double t_num = shrink * priors_.output_tokens(j, input.category);
    double t_den = shrink;
    for (size_t i = 0; i < neighbours.size(); ++i) {
      const size_t row = size_t{neighbours[i].second} * m + j;
      const float q = data_.quality[row];
      if (!std::isnan(q)) {
        q_num += weights[i] * q;
        q_den += weights[i];
      }
      const float t = data_.output_tokens[row];
      if (!std::isnan(t)) {
        t_num += weights[i] * t;
        t_den += weights[i];
      }
    }
    quality[j] = std::clamp(q_num / q_den, 0.0, 1.0);
    output_tokens[j] = std::max(1.0, t_num / t_den);
  }
}

void KnnPredictor::Save(std::string& out) const {
  PutU64(out, dim_);
  PutU64(out, options_.k);
  PutF64(out, options_.power);
  PutF64(out, options_.shrinkage);
  PutU64(out, options_.max_examples);
  PutU64(out, options_.exact_below);
  PutU64(out, static_cast<uint64_t>(options_.hnsw_m));
  PutU64(out, static_cast<uint64_t>(options_.hnsw_ef_construction));
  PutU64(out, static_cast<uint64_t>(options_.hnsw_ef_search));
  priors_.Save(out);
  std::vector<uint8_t> categories(data_.categories.size());
  for (size_t i = 0; i < categories.size(); ++i) {
    categories[i] = static_cast<uint8_t>(data_.categories[i]);
  }
  PutVec(out, categories);
  PutVec(out, data_.quality);
  PutVec(out, data_.output_tokens);
  if (hnsw_) {
    faiss::VectorIOWriter writer;
    faiss::write_index(hnsw_.get(), &writer);
    PutU64(out, 1);
    PutStr(out,
           std::string_view(reinterpret_cast<const char*>(writer.data.data()), writer.data.size()));
  } else {
    PutU64(out, 0);
    PutVec(out, data_.embeddings);
  }
}

absl::Status KnnPredictor::Load(std::string_view& in) {
  uint64_t dim = 0, k = 0, max_examples = 0, exact_below = 0, m = 0, efc = 0, efs = 0, has_hnsw = 0;
  KnnOptions o;
  for (auto s : {GetU64(in, dim, "knn dim"), GetU64(in, k, "knn options"),
                 GetF64(in, o.power, "knn options"), GetF64(in, o.shrinkage, "knn options"),
                 GetU64(in, max_examples, "knn options"), GetU64(in, exact_below, "knn options"),
                 GetU64(in, m, "knn options"), GetU64(in, efc, "knn options"),
                 GetU64(in, efs, "knn options")}) {
    if (!s.ok()) return s;
  }
  if (dim != dim_) {
    return absl::InvalidArgumentError(ToAbsl(
        StrCat("router file: the kNN index holds ", dim, "-d embeddings but the embedder makes ",
               dim_, "-d ones; load it with the embedder it was saved with")));
  }
  o.k = k;
  o.max_examples = max_examples;
  o.exact_below = exact_below;
  o.hnsw_m = static_cast<int>(m);
  o.hnsw_ef_construction = static_cast<int>(efc);
  o.hnsw_ef_search = static_cast<int>(efs);
  if (absl::Status s = ValidateKnnOptions(o); !s.ok()) {
    return absl::DataLossError(ToAbsl(StrCat("router file: ", s.message())));
  }
  Priors priors = priors_;
  if (absl::Status s = priors.Load(in); !s.ok()) return s;
  LabeledSet data;
  data.dim = dim_;
  data.models = data_.models;
  std::vector<uint8_t> categories;
  for (auto s : {GetVec(in, categories, "knn categories"), GetVec(in, data.quality, "knn labels"),
                 GetVec(in, data.output_tokens, "knn labels"), GetU64(in, has_hnsw, "knn index")}) {
    if (!s.ok()) return s;
  }
  const size_t n = categories.size();
  for (uint8_t c : categories) {
    if (c >= kNumCategories) return absl::DataLossError("router file: bad category code");
    data.categories.push_back(static_cast<Category>(c));
  }
  if (data.quality.size() != n * data.models || data.output_tokens.size() != n * data.models) {
    return absl::DataLossError("router file: kNN label matrix has the wrong size");
  }
  std::unique_ptr<faiss::IndexHNSWFlat> hnsw;
  if (has_hnsw == 1) {
    std::string bytes;
    if (absl::Status s = GetStr(in, bytes, "knn HNSW index"); !s.ok()) return s;
    faiss::VectorIOReader reader;
    reader.data.assign(bytes.begin(), bytes.end());
    try {
      std::unique_ptr<faiss::Index> index(faiss::read_index(&reader));
      auto* typed = dynamic_cast<faiss::IndexHNSWFlat*>(index.get());
      if (typed == nullptr || static_cast<size_t>(typed->ntotal) != n ||
          static_cast<size_t>(typed->d) != dim_) {
        return absl::DataLossError("router file: the kNN HNSW index does not match its labels");
      }
      index.release();
      hnsw.reset(typed);
    } catch (const std::exception& e) {
      return absl::DataLossError(
          ToAbsl(StrCat("router file: cannot read the kNN HNSW index: ", e.what())));
    }
    hnsw->hnsw.efSearch = o.hnsw_ef_search;
  } else if (has_hnsw == 0) {
    if (absl::Status s = GetVec(in, data.embeddings, "knn embeddings"); !s.ok()) return s;
    if (data.embeddings.size() != n * dim_) {
      return absl::DataLossError("router file: kNN embedding matrix has the wrong size");
    }
  } else {
    return absl::DataLossError("router file: bad kNN index flag");
  }
  options_ = o;
  priors_ = std::move(priors);
  data_ = std::move(data);
  hnsw_ = std::move(hnsw);
  return absl::OkStatus();
}

}  // namespace thrifty::route
