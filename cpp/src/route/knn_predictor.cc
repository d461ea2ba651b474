#include "thrifty/route/knn_predictor.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "bytes.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/impl/DistanceComputer.h"
#include "faiss/impl/HNSW.h"
#include "faiss/impl/io.h"  // faiss::VectorIOWriter / VectorIOReader
#include "faiss/index_io.h"
#include "faiss/utils/distances.h"
#include "simd.h"
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

// Inner products over flat float storage with thrifty's SIMD kernels (simd.h) instead of
// the baseline-x86 ones Debian's FAISS was built with.
class SimdInnerProduct final : public faiss::FlatCodesDistanceComputer {
 public:
  SimdInnerProduct(const uint8_t* codes, size_t dim)
      : FlatCodesDistanceComputer(codes, dim * sizeof(float)), dim_(dim) {}
  void set_query(const float* x) override { query_ = x; }
  float distance_to_code(const uint8_t* code) override {
    return internal::Dot(query_, reinterpret_cast<const float*>(code), dim_);
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    const float* xb = reinterpret_cast<const float*>(codes);
    return internal::Dot(xb + i * dim_, xb + j * dim_, dim_);
  }

 private:
  const size_t dim_;
  const float* query_ = nullptr;
};

// The HNSW graph's vector storage: FAISS's flat inner-product index with SIMD distances.
// Serialized as a plain IndexFlatIP (faiss::write_index); AdoptStorage swaps it back in.
struct SimdFlatIP final : faiss::IndexFlatIP {
  explicit SimdFlatIP(idx_t d) : faiss::IndexFlatIP(d) {}
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override {
    return new SimdInnerProduct(codes.data(), static_cast<size_t>(d));
  }
};

// Replaces `index`'s storage by a SimdFlatIP holding the same vectors.
void AdoptStorage(faiss::IndexHNSWFlat& index) {
  auto* old = dynamic_cast<faiss::IndexFlat*>(index.storage);
  auto storage = std::make_unique<SimdFlatIP>(index.d);
  if (old != nullptr) {
    storage->codes.swap(old->codes);
    storage->ntotal = old->ntotal;
  }
  if (index.own_fields) delete index.storage;
  index.storage = storage.release();
  index.own_fields = true;
}

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
    bytes += sq_codes_.size() + hnsw_->hnsw.neighbors.size() * sizeof(int) +
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
  sq_codes_.clear();
  sq_codes_.shrink_to_fit();
  if (data_.size() < options_.exact_below) return;
  auto index = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(dim_), options_.hnsw_m,
                                                      faiss::METRIC_INNER_PRODUCT);
  AdoptStorage(*index);
  index->hnsw.efConstruction = options_.hnsw_ef_construction;
  index->hnsw.efSearch = options_.hnsw_ef_search;
  index->add(static_cast<faiss::Index::idx_t>(data_.size()), data_.embeddings.data());
  TrainSq8(data_.embeddings.data(), data_.size());
  EncodeSq8(data_.embeddings.data(), data_.size());
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
      sq_codes_.clear();
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
    EncodeSq8(set.embeddings.data(), set.size());
    hnsw_->add(static_cast<faiss::Index::idx_t>(set.size()), set.embeddings.data());
    return absl::OkStatus();
  }
  data_.Append(set);
  if (data_.size() >= options_.exact_below) Reindex();
  return absl::OkStatus();
}

void KnnPredictor::TrainSq8(const float* x, size_t n) {
  sq_min_.assign(dim_, 0.0f);
  sq_step_.assign(dim_, 0.0f);
  std::vector<float> max(dim_, 0.0f);
  for (size_t d = 0; d < dim_; ++d) sq_min_[d] = max[d] = n > 0 ? x[d] : 0.0f;
  for (size_t i = 1; i < n; ++i) {
    for (size_t d = 0; d < dim_; ++d) {
      sq_min_[d] = std::min(sq_min_[d], x[i * dim_ + d]);
      max[d] = std::max(max[d], x[i * dim_ + d]);
    }
  }
  for (size_t d = 0; d < dim_; ++d) sq_step_[d] = std::max((max[d] - sq_min_[d]) / 255.0f, 1e-12f);
}

void KnnPredictor::EncodeSq8(const float* x, size_t n) {
  const size_t start = sq_codes_.size();
  sq_codes_.resize(start + n * dim_);
  for (size_t i = 0; i < n * dim_; ++i) {
    const size_t d = i % dim_;
    const float c = std::round((x[i] - sq_min_[d]) / sq_step_[d]);
    sq_codes_[start + i] = static_cast<uint8_t>(std::clamp(c, 0.0f, 255.0f));
  }
}

namespace {

// Rows are scattered, so the hardware prefetcher cannot guess them: prefetch every cache line
// of a row a few rows before it is read.
inline void PrefetchRow(const void* row, size_t bytes) {
  const char* p = static_cast<const char*>(row);
  for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(p + offset);
}
constexpr size_t kRerankPrefetch = 4;  // float rows (1 KiB at 256-d) ahead in re-ranking
constexpr size_t kCodePrefetch = 8;    // 8-bit code rows ahead in the walk

struct Scored {
  float similarity;
  int32_t id;
};
// Heap orders: candidates pop the most similar first, results the least similar first.
// (Function objects, not functions: std::push_heap inlines them.)
struct LessSimilar {
  bool operator()(const Scored& a, const Scored& b) const { return a.similarity < b.similarity; }
};
struct MoreSimilar {
  bool operator()(const Scored& a, const Scored& b) const { return a.similarity > b.similarity; }
};

// Per-thread scratch of the walk: nothing is allocated per query once warm.
struct WalkScratch {
  std::vector<uint64_t> visited;  // one bit per node; cleared after each query via `touched`
  std::vector<int32_t> touched;
  std::vector<Scored> candidates, results;
  std::vector<int32_t> fresh;
  std::vector<float> weights;
  std::vector<int16_t> weights16;
  std::vector<int32_t> ids;                            // the walk's candidates
  std::vector<float> sims;                             // the exact scan's similarities
  std::vector<std::pair<float, uint32_t>> neighbours;  // Predict's
  std::vector<double> sums;                            // Predict's per-model sums
};

// The calling thread's scratch. Reached once per call and passed by reference: each access to
// a thread_local from a shared library costs a __tls_get_addr call (~5% of a route()).
__attribute__((noinline)) WalkScratch& ThreadScratch() {
  thread_local WalkScratch scratch;
  return scratch;
}

}  // namespace

// The HNSW search over 8-bit codes, written here instead of faiss::HNSW::search: Debian's
// FAISS reads each neighbour through a virtual call without prefetching and is compiled for
// baseline x86-64; with 100k examples the codes (25 MB at 256-d) do not fit in cache, so the
// walk is bound by memory latency and prefetching the neighbours' codes is most of the win.
// Same algorithm: greedy descent through the upper levels, then a best-first beam of width
// `ef` on level 0. `ids` gets the `count` most similar nodes (by quantized similarity).
void KnnPredictor::WalkSq8(const float* query, size_t ef, size_t count,
                           std::vector<int32_t>& ids) const {
  WalkScratch& s = ThreadScratch();
  const faiss::HNSW& g = hnsw_->hnsw;
  const size_t n = data_.size();
  const uint8_t* codes = sq_codes_.data();
  const size_t dim = dim_;
  // <q, x> = sum q_i min_i + sum (q_i step_i) c_i. The first term is the same for every node,
  // so the walk ranks by the second, with the weights q_i step_i rounded to 16-bit integers
  // (scaled so that the largest is as large as the int32 sum allows): ranking error ~1e-4 of
  // the weights' scale, below the 8-bit codes' own; the candidates are re-ranked exactly.
  s.weights.resize(dim);
  s.weights16.resize(dim);
  float* weights = s.weights.data();
  float largest = 0.0f;
  for (size_t d = 0; d < dim; ++d) {
    weights[d] = query[d] * sq_step_[d];
    largest = std::max(largest, std::abs(weights[d]));
  }
  const double limit =
      std::min(32767.0, std::floor(2147483647.0 / (255.0 * static_cast<double>(dim))));
  const float scale = largest > 0.0f ? static_cast<float>(limit / largest) : 0.0f;
  int16_t* weights16 = s.weights16.data();
  for (size_t d = 0; d < dim; ++d) {
    weights16[d] = static_cast<int16_t>(std::lround(weights[d] * scale));
  }
  auto similarity = [&](int32_t v) {
    return static_cast<float>(
        internal::CodeDot(weights16, codes + size_t(static_cast<uint32_t>(v)) * dim, dim));
  };
  const int32_t* links = g.neighbors.data();
  const size_t* offsets = g.offsets.data();
  const int* level_start = g.cum_nneighbor_per_level.data();
  ids.clear();
  if (g.entry_point < 0) return;

  int32_t entry = g.entry_point;
  float entry_similarity = similarity(entry);
  for (int level = g.max_level; level >= 1; --level) {
    for (bool moved = true; moved;) {
      moved = false;
      const int32_t* begin = links + offsets[entry] + level_start[level];
      const int32_t* end = links + offsets[entry] + level_start[level + 1];
      for (const int32_t* p = begin; p != end && *p >= 0; ++p) {
        PrefetchRow(codes + size_t(static_cast<uint32_t>(*p)) * dim, dim);
      }
      for (const int32_t* p = begin; p != end && *p >= 0; ++p) {
        const float sim = similarity(*p);
        if (sim > entry_similarity) {
          entry_similarity = sim;
          entry = *p;
          moved = true;
        }
      }
    }
  }

  if (s.visited.size() * 64 < n) s.visited.resize((n + 63) / 64, 0);
  uint64_t* visited = s.visited.data();
  std::vector<int32_t>& touched = s.touched;
  auto seen = [visited, &touched](int32_t v) {  // marks v; true if it was marked already
    uint64_t& word = visited[static_cast<uint32_t>(v) >> 6];
    const uint64_t bit = uint64_t{1} << (static_cast<uint32_t>(v) & 63);
    if (word & bit) return true;
    word |= bit;
    touched.push_back(v);
    return false;
  };
  const size_t degree = static_cast<size_t>(level_start[1] - level_start[0]);
  s.fresh.resize(degree);
  int32_t* fresh = s.fresh.data();
  std::vector<Scored>& candidates = s.candidates;
  std::vector<Scored>& results = s.results;
  candidates.clear();
  results.clear();
  candidates.push_back({entry_similarity, entry});
  results.push_back({entry_similarity, entry});
  seen(entry);
  while (!candidates.empty()) {
    const Scored current = candidates.front();
    if (results.size() >= ef && current.similarity < results.front().similarity) break;
    std::pop_heap(candidates.begin(), candidates.end(), LessSimilar{});
    candidates.pop_back();
    if (!candidates.empty()) __builtin_prefetch(links + offsets[candidates.front().id]);
    const int32_t* neighbours = links + offsets[current.id] + level_start[0];
    size_t n_fresh = 0;
    for (size_t j = 0; j < degree; ++j) {
      const int32_t v = neighbours[j];
      if (v < 0) break;
      if (!seen(v)) fresh[n_fresh++] = v;
    }
    for (size_t j = 0; j < std::min(n_fresh, kCodePrefetch); ++j) {
      PrefetchRow(codes + size_t(static_cast<uint32_t>(fresh[j])) * dim, dim);
    }
    for (size_t j = 0; j < n_fresh; ++j) {
      if (j + kCodePrefetch < n_fresh) {
        PrefetchRow(codes + size_t(static_cast<uint32_t>(fresh[j + kCodePrefetch])) * dim, dim);
      }
      const int32_t v = fresh[j];
      const float sim = similarity(v);
      if (results.size() < ef || sim > results.front().similarity) {
        __builtin_prefetch(&offsets[v]);  // in case it is expanded next
        candidates.push_back({sim, v});
        std::push_heap(candidates.begin(), candidates.end(), LessSimilar{});
        results.push_back({sim, v});
        std::push_heap(results.begin(), results.end(), MoreSimilar{});
        if (results.size() > ef) {
          std::pop_heap(results.begin(), results.end(), MoreSimilar{});
          results.pop_back();
        }
      }
    }
  }
  for (int32_t v : touched) visited[static_cast<uint32_t>(v) >> 6] = 0;
  touched.clear();
  std::sort(results.begin(), results.end(), [](const Scored& a, const Scored& b) {
    return a.similarity > b.similarity || (a.similarity == b.similarity && a.id < b.id);
  });
  const size_t take = std::min(count, results.size());
  for (size_t i = 0; i < take; ++i) ids.push_back(results[i].id);
}

void KnnPredictor::SearchInto(const float* query, size_t k,
                              std::vector<std::pair<float, uint32_t>>& out) const {
  out.clear();
  const size_t n = data_.size();
  if (n == 0 || k == 0) return;
  k = std::min(k, n);
  if (!hnsw_) {
    std::vector<float>& sims = ThreadScratch().sims;
    sims.resize(n);
    internal::Dots(query, data_.embeddings.data(), dim_, n, sims.data());
    // Top k by a min-heap of (similarity, -index): ties keep the lower index.
    auto worse = [](const std::pair<float, uint32_t>& a, const std::pair<float, uint32_t>& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    out.reserve(k);
    for (uint32_t i = 0; i < n; ++i) {
      if (out.size() < k) {
        out.emplace_back(sims[i], i);
        std::push_heap(out.begin(), out.end(), worse);
      } else if (sims[i] > out.front().first) {
        std::pop_heap(out.begin(), out.end(), worse);
        out.back() = {sims[i], i};
        std::push_heap(out.begin(), out.end(), worse);
      }
    }
    std::sort_heap(out.begin(), out.end(), worse);
    return;
  }
  const int ef = std::max<int>(options_.hnsw_ef_search, static_cast<int>(k));
  // Candidates from the quantized walk, re-ranked exactly.
  const size_t candidates = std::min(n, std::max<size_t>(k, std::min<size_t>(ef, 2 * k)));
  std::vector<int32_t>& ids = ThreadScratch().ids;
  WalkSq8(query, static_cast<size_t>(ef), candidates, ids);
  const float* xb = Vectors();
  for (size_t i = 0; i < std::min(ids.size(), kRerankPrefetch); ++i) {
    PrefetchRow(xb + size_t(ids[i]) * dim_, dim_ * sizeof(float));
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i + kRerankPrefetch < ids.size()) {
      PrefetchRow(xb + size_t(ids[i + kRerankPrefetch]) * dim_, dim_ * sizeof(float));
    }
    const auto id = static_cast<uint32_t>(ids[i]);
    out.emplace_back(internal::Dot(query, xb + size_t{id} * dim_, dim_), id);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  if (out.size() > k) out.resize(k);
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
  WalkScratch& scratch = ThreadScratch();
  std::vector<std::pair<float, uint32_t>>& neighbours = scratch.neighbours;
  neighbours.clear();
  if (input.embedding.size() == dim_ && !IsZero(input.embedding)) {
    SearchInto(input.embedding.data(), options_.k, neighbours);
  }
  // The neighbours' label rows are scattered over the label matrices: fetch them all at once.
  const size_t row_bytes = m * sizeof(float);
  for (const auto& [similarity, id] : neighbours) {
    PrefetchRow(data_.quality.data() + size_t{id} * m, row_bytes);
    PrefetchRow(data_.output_tokens.data() + size_t{id} * m, row_bytes);
  }
  const double shrink = options_.shrinkage;
  // Sums per model, neighbour by neighbour (rows are contiguous): q_num, q_den, t_num, t_den.
  std::vector<double>& sums = scratch.sums;
  sums.resize(4 * m);
  double* q_num = sums.data();
  double* q_den = q_num + m;
  double* t_num = q_den + m;
  double* t_den = t_num + m;
  for (size_t j = 0; j < m; ++j) {
    q_num[j] = shrink * priors_.quality(j, input.category);
    t_num[j] = shrink * priors_.output_tokens(j, input.category);
    q_den[j] = t_den[j] = shrink;
  }
  for (const auto& [similarity, id] : neighbours) {
    const double s = std::max(0.0f, similarity);
    const double w = options_.power == 0   ? 1.0
                     : options_.power == 2 ? s * s
                                           : std::pow(s, options_.power);
    const float* q_row = data_.quality.data() + size_t{id} * m;
    const float* t_row = data_.output_tokens.data() + size_t{id} * m;
    for (size_t j = 0; j < m; ++j) {
      const float q = q_row[j];
      if (!std::isnan(q)) {
        q_num[j] += w * q;
        q_den[j] += w;
      }
      const float t = t_row[j];
      if (!std::isnan(t)) {
        t_num[j] += w * t;
        t_den[j] += w;
      }
    }
  }
  for (size_t j = 0; j < m; ++j) {
    quality[j] = std::clamp(q_num[j] / q_den[j], 0.0, 1.0);
    output_tokens[j] = std::max(1.0, t_num[j] / t_den[j]);
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
    PutVec(out, sq_min_);  // the quantizer, which Load reads back
    PutVec(out, sq_step_);
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
  std::vector<float> sq_min, sq_step;
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
      AdoptStorage(*hnsw);
    } catch (const std::exception& e) {
      return absl::DataLossError(
          ToAbsl(StrCat("router file: cannot read the kNN HNSW index: ", e.what())));
    }
    hnsw->hnsw.efSearch = o.hnsw_ef_search;
    for (auto st : {GetVec(in, sq_min, "knn quantizer"), GetVec(in, sq_step, "knn quantizer")}) {
      if (!st.ok()) return st;
    }
    if (sq_min.size() != dim_ || sq_step.size() != dim_) {
      return absl::DataLossError("router file: the kNN quantizer has the wrong size");
    }
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
  sq_min_ = std::move(sq_min);
  sq_step_ = std::move(sq_step);
  sq_codes_.clear();
  if (hnsw_) EncodeSq8(Vectors(), data_.size());
  return absl::OkStatus();
}

}  // namespace thrifty::route
