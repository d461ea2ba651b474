#include "hnsw_index.h"

#include <omp.h>  // omp_lock_t: faiss::HNSW::add_with_locks takes one lock per node

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>  // std::thread

#include "faiss/impl/AuxIndexStructures.h"  // faiss::VisitedTable
#include "faiss/impl/DistanceComputer.h"
#include "faiss/impl/HNSW.h"
#include "huge_pages.h"
#include "simd_distance.h"

namespace thrifty::cache::internal {

struct HnswIndex::Graph {
  explicit Graph(int m) : hnsw(m) {}
  ~Graph() {
    for (omp_lock_t& lock : locks) omp_destroy_lock(&lock);
  }
  faiss::HNSW hnsw;
  // One per node. The vector only grows inside Add, when no lock is held (libgomp's locks are
  // plain words, so moving an unlocked one is safe).
  std::vector<omp_lock_t> locks;
};

namespace {

constexpr size_t kParallelMinRows = 100;  // below this, insert on the calling thread

// What FAISS's insertion compares, negated (FAISS keeps the smallest distances). The beam
// search against the inserted vector makes most of the comparisons, each on a row not read
// recently: it reads the row's code (a quarter of the bytes of its float32 vector) against the
// exact inserted vector. The neighbour-selection heuristic compares stored rows pairwise, a few
// dozen rows over and over: it uses their exact float32 vectors.
class InsertionDistance : public faiss::DistanceComputer {
 public:
  InsertionDistance(const Sq8Quantizer& quantizer, const uint8_t* codes, const float* base)
      : quantizer_(quantizer), codes_(codes), base_(base), dim_(quantizer.dim()), weights_(dim_) {}

  void set_query(const float* x) override { bias_ = quantizer_.PrepareQuery(x, weights_.data()); }
  float operator()(idx_t i) override {
    return -(bias_ +
             WeightedCodeSum(weights_.data(), codes_ + static_cast<size_t>(i) * dim_, dim_));
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    return -InnerProduct(base_ + static_cast<size_t>(i) * dim_,
                         base_ + static_cast<size_t>(j) * dim_, dim_);
  }

 private:
  const Sq8Quantizer& quantizer_;
  const uint8_t* codes_;
  const float* base_;
  size_t dim_;
  float bias_ = 0.0f;
  std::vector<float> weights_;
};

struct Scored {
  float similarity;
  int32_t id;
};

// Per-thread search state, reused across lookups (and partitions) so a search allocates
// nothing once warm. Bit i of `visited` marks node i as seen by the current search: a bitset
// (1 MB of nodes in 128 KB) stays in the L2 cache, and the search clears only the words it set.
struct SearchScratch {
  std::vector<float> weights;
  std::vector<uint64_t> visited;
  std::vector<int32_t> touched;     // nodes whose visited bit is set
  std::vector<Scored> candidates;   // max-heap: the best unexpanded node on top
  std::vector<Scored> results;      // min-heap: the worst of the best ef on top
  std::vector<int32_t> fresh;       // unvisited neighbours of the node being expanded
  std::vector<float> similarities;  // theirs
};

bool LessSimilar(const Scored& a, const Scored& b) { return a.similarity < b.similarity; }
bool MoreSimilar(const Scored& a, const Scored& b) { return a.similarity > b.similarity; }

// Runs fn(i) for i in [0, n), on every core when n is large enough.
template <typename Fn>
void ParallelFor(size_t n, Fn fn) {
#if defined(__SANITIZE_THREAD__)
  // FAISS's add_with_locks synchronizes with libgomp's omp_lock_t, which ThreadSanitizer cannot
  // see; under TSAN the build runs the same code on one thread so the run reports only real races.
  const size_t threads = 1;
#else
  const size_t threads =
      n < kParallelMinRows ? 1 : std::max<size_t>(1, std::thread::hardware_concurrency());
#endif
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(i);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& thread : pool) thread.join();
}

}  // namespace

HnswIndex::HnswIndex(HnswOptions options)
    : options_(options), graph_(std::make_unique<Graph>(options.m)), quantizer_(options.dim) {
  graph_->hnsw.efConstruction = options.ef_construction;
  graph_->hnsw.efSearch = options.ef_search;
}

HnswIndex::~HnswIndex() = default;

size_t HnswIndex::MemoryBytes() const {
  const faiss::HNSW& hnsw = graph_->hnsw;
  return codes_.capacity() + hnsw.neighbors.capacity() * sizeof(hnsw.neighbors[0]) +
         hnsw.offsets.capacity() * sizeof(hnsw.offsets[0]) +
         hnsw.levels.capacity() * sizeof(hnsw.levels[0]) +
         graph_->locks.capacity() * sizeof(omp_lock_t);
}

void HnswIndex::EncodeRows(const float* base, size_t begin, size_t end) {
  const size_t dim = options_.dim;
  for (size_t row = begin; row < end; ++row) {
    quantizer_.Encode(base + row * dim, &codes_[row * dim]);
  }
}

void HnswIndex::Add(const float* base, size_t n) {
  if (n == 0) return;
  const size_t dim = options_.dim;
  const size_t first = size_;
  const size_t total = first + n;
  ReserveWithSlack(codes_, total * dim);
  codes_.resize(total * dim);
  if (trained_rows_ < kMaxTrainingRows && total >= 4 * trained_rows_) {
    quantizer_ = Sq8Quantizer::Train(base, total, dim, kMaxTrainingRows);
    trained_rows_ = total;
    EncodeRows(base, 0, total);
  } else {
    EncodeRows(base, first, total);
  }

  faiss::HNSW& hnsw = graph_->hnsw;
  ReserveWithSlack(graph_->locks, total);
  graph_->locks.resize(total);
  for (size_t i = first; i < total; ++i) omp_init_lock(&graph_->locks[i]);
  // Draw the levels here (FAISS's way) to size the link table before FAISS grows it.
  size_t new_links = 0;
  ReserveWithSlack(hnsw.levels, hnsw.levels.size() + n);
  for (size_t i = 0; i < n; ++i) {
    const int level = hnsw.random_level();
    hnsw.levels.push_back(level + 1);
    new_links += static_cast<size_t>(hnsw.cum_nb_neighbors(level + 1));
  }
  ReserveWithSlack(hnsw.neighbors, hnsw.neighbors.size() + new_links);
  ReserveWithSlack(hnsw.offsets, hnsw.offsets.size() + n);
  AdviseHugePages(hnsw.neighbors.data(), hnsw.neighbors.capacity() * sizeof(int));
  AdviseHugePages(hnsw.offsets.data(), hnsw.offsets.capacity() * sizeof(size_t));
  const int max_level = hnsw.prepare_level_tab(n, /*preset_levels=*/true);
  // As FAISS's IndexHNSW::add: the highest levels first, each level in random order.
  std::vector<std::vector<int>> by_level(static_cast<size_t>(max_level) + 1);
  for (size_t i = first; i < total; ++i) {
    by_level[static_cast<size_t>(hnsw.levels[i] - 1)].push_back(static_cast<int>(i));
  }
  std::mt19937 rng(static_cast<uint32_t>(789 + first));
  for (int level = max_level; level >= 0; --level) {
    std::vector<int>& ids = by_level[static_cast<size_t>(level)];
    std::shuffle(ids.begin(), ids.end(), rng);
    ParallelFor(ids.size(), [&](size_t i) {
      thread_local faiss::VisitedTable visited(0);
      if (visited.visited.size() < total) visited.visited.resize(total, 0);  // 0: never visno
      InsertionDistance distance(quantizer_, codes_.data(), base);
      const int id = ids[i];
      distance.set_query(base + static_cast<size_t>(id) * dim);
      hnsw.add_with_locks(distance, level, id, graph_->locks, visited);
    });
  }
  size_ = total;
}

void HnswIndex::Search(const float* query, size_t k,
                       std::vector<std::pair<float, uint32_t>>& out) const {
  out.clear();
  const faiss::HNSW& hnsw = graph_->hnsw;
  if (size_ == 0 || k == 0 || hnsw.entry_point < 0) return;
  const size_t dim = options_.dim;
  thread_local SearchScratch scratch;
  SearchScratch& s = scratch;
  s.weights.resize(dim);
  const float bias = quantizer_.PrepareQuery(query, s.weights.data());
  const float* weights = s.weights.data();
  const uint8_t* codes = codes_.data();
  const int* links = hnsw.neighbors.data();
  const size_t* offsets = hnsw.offsets.data();
  const int* level_start = hnsw.cum_nneighbor_per_level.data();
  const size_t max_degree = static_cast<size_t>(level_start[1] - level_start[0]);
  s.fresh.resize(max_degree);
  s.similarities.resize(max_degree);
  int32_t* fresh = s.fresh.data();
  float* similarities = s.similarities.data();

  // Greedy descent through the upper levels.
  int32_t entry = hnsw.entry_point;
  float entry_similarity;
  WeightedCodeSums(weights, codes, dim, &entry, 1, &entry_similarity);
  for (int level = hnsw.max_level; level >= 1; --level) {
    for (bool moved = true; moved;) {
      moved = false;
      const int* begin = links + offsets[entry] + level_start[level];
      const int* end = links + offsets[entry] + level_start[level + 1];
      size_t n = 0;
      while (begin + n != end && begin[n] >= 0) ++n;
      WeightedCodeSums(weights, codes, dim, begin, n, similarities);
      for (size_t j = 0; j < n; ++j) {
        if (similarities[j] > entry_similarity) {
          entry_similarity = similarities[j];
          entry = begin[j];
          moved = true;
        }
      }
    }
  }

  // Best-first beam search on level 0.
  const size_t ef = std::max(static_cast<size_t>(std::max(options_.ef_search, 1)), k);
  if (s.visited.size() * 64 < size_) s.visited.resize((size_ + 63) / 64, 0);
  uint64_t* visited = s.visited.data();
  std::vector<int32_t>& touched = s.touched;
  // True if `v` was already visited; marks it otherwise.
  auto seen = [visited, &touched](int32_t v) {
    uint64_t& word = visited[static_cast<uint32_t>(v) >> 6];
    const uint64_t bit = uint64_t{1} << (static_cast<uint32_t>(v) & 63);
    if (word & bit) return true;
    word |= bit;
    touched.push_back(v);
    return false;
  };
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
    std::pop_heap(candidates.begin(), candidates.end(), LessSimilar);
    candidates.pop_back();
    if (!candidates.empty()) __builtin_prefetch(links + offsets[candidates.front().id]);
    const int* neighbours = links + offsets[current.id] + level_start[0];
    size_t n_fresh = 0;
    for (size_t j = 0; j < max_degree; ++j) {
      const int v = neighbours[j];
      if (v < 0) break;
      if (!seen(v)) fresh[n_fresh++] = v;
    }
    WeightedCodeSums(weights, codes, dim, fresh, n_fresh, similarities);
    for (size_t j = 0; j < n_fresh; ++j) {
      const float sim = similarities[j];
      if (results.size() < ef || sim > results.front().similarity) {
        const int32_t v = fresh[j];
        __builtin_prefetch(&offsets[v]);  // in case it is expanded next
        candidates.push_back({sim, v});
        std::push_heap(candidates.begin(), candidates.end(), LessSimilar);
        results.push_back({sim, v});
        std::push_heap(results.begin(), results.end(), MoreSimilar);
        if (results.size() > ef) {
          std::pop_heap(results.begin(), results.end(), MoreSimilar);
          results.pop_back();
        }
      }
    }
  }
  for (int32_t v : touched) visited[static_cast<uint32_t>(v) >> 6] = 0;
  touched.clear();
  std::sort(results.begin(), results.end(), MoreSimilar);
  const size_t n_out = std::min(k, results.size());
  out.reserve(n_out);
  for (size_t i = 0; i < n_out; ++i) {
    out.emplace_back(results[i].similarity + bias, static_cast<uint32_t>(results[i].id));
  }
}

}  // namespace thrifty::cache::internal
