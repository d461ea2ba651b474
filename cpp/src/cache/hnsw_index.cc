#include "hnsw_index.h"

#include <omp.h>  // omp_lock_t: one per node, as faiss::HNSW::add_with_locks

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <thread>  // std::thread

#include "faiss/impl/HNSW.h"
#include "huge_pages.h"
#include "simd_distance.h"

namespace thrifty::cache::internal {

// Level 0 (every node, 2 * m links) lives in `links0` with a fixed stride, so a node's links
// are one address computation away; faiss::HNSW holds the upper levels (its level 0 has no
// slots), whose lists FAISS reaches through its offsets table.
struct HnswIndex::Graph {
  explicit Graph(int m) : hnsw(m), degree0(static_cast<size_t>(hnsw.nb_neighbors(0))) {
    hnsw.set_nb_neighbors(0, 0);
  }
  ~Graph() {
    for (omp_lock_t& lock : locks) omp_destroy_lock(&lock);
  }
  // The level-`level` links of node v, -1 padded to Degree(level).
  int* Links(size_t v, int level) {
    return level == 0
               ? links0.data() + v * degree0
               : hnsw.neighbors.data() + hnsw.offsets[v] + hnsw.cum_nneighbor_per_level[level];
  }
  size_t Degree(int level) const {
    return level == 0 ? degree0
                      : static_cast<size_t>(hnsw.cum_nneighbor_per_level[level + 1] -
                                            hnsw.cum_nneighbor_per_level[level]);
  }

  faiss::HNSW hnsw;
  const size_t degree0;
  std::vector<int, HugePageAllocator<int>> links0;  // nodes * degree0
  std::mutex entry_mu;  // guards hnsw.entry_point and hnsw.max_level during Add
  // One per node. The vector only grows inside Add, when no lock is held (libgomp's locks are
  // plain words, so moving an unlocked one is safe).
  std::vector<omp_lock_t> locks;
};

namespace {

constexpr size_t kParallelMinRows = 100;  // below this, insert on the calling thread

// One node of the search's beam: its similarity in CodeDot units, its id, and (top bit of
// `node`) whether its links have been expanded.
struct BeamEntry {
  int32_t score;
  uint32_t node;
};
constexpr uint32_t kExpanded = uint32_t{1} << 31;

}  // namespace

// Per-thread search state, reused across lookups (and partitions) so a search allocates
// nothing once warm. Bit i of `visited` marks node i as seen by the current search: a bitset
// (1M nodes in 128 KB) stays in the L2 cache. Below kClearWholeWords words the search clears
// it whole afterwards; above, it clears only the words it set (listed in `touched`).
struct HnswIndex::Scratch {
  std::vector<int16_t> weights;
  std::vector<uint64_t> visited;
  std::vector<int32_t> touched;
  std::vector<BeamEntry> beam;  // sorted, most similar first; at most ef
  std::vector<int32_t> fresh;   // unvisited neighbours of the node being expanded
  std::vector<int32_t> scores;  // theirs
  // Insertion only: the links chosen for the new node, and a full list being re-chosen.
  std::vector<int32_t> selected;
  std::vector<int32_t> kept;
  std::vector<std::pair<float, int32_t>> contenders;
};

// The calling thread's scratch, reached once per search (each access to a thread_local from a
// shared library is a __tls_get_addr call).
__attribute__((noinline)) HnswIndex::Scratch& HnswIndex::ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

namespace {

constexpr size_t kClearWholeWords = 4096;  // 256k nodes, 32 KB

inline void PrefetchBytes(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(c + offset);
}

// Runs fn(i) for i in [0, n), on every core when n is large enough.
template <typename Fn>
void ParallelFor(size_t n, Fn fn) {
#if defined(__SANITIZE_THREAD__)
  // Insertion synchronizes with libgomp's omp_lock_t, which ThreadSanitizer cannot see, and (as
  // FAISS's) reads other nodes' links while their owners may be rewriting them; under TSAN the
  // build runs the same code on one thread so the run reports only real races.
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
  return codes_.capacity() + graph_->links0.capacity() * sizeof(int) +
         hnsw.neighbors.capacity() * sizeof(hnsw.neighbors[0]) +
         hnsw.offsets.capacity() * sizeof(hnsw.offsets[0]) +
         hnsw.levels.capacity() * sizeof(hnsw.levels[0]) +
         graph_->locks.capacity() * sizeof(omp_lock_t);
}

std::vector<int> HnswIndex::Links(size_t node, int level) const {
  std::vector<int> out;
  if (node >= size_ || level < 0 || level >= graph_->hnsw.levels[node]) return out;
  const int* links = graph_->Links(node, level);
  for (size_t i = 0; i < graph_->Degree(level) && links[i] >= 0; ++i) out.push_back(links[i]);
  return out;
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
  ReserveWithSlack(graph_->links0, total * graph_->degree0);
  graph_->links0.resize(total * graph_->degree0, -1);
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
  std::optional<std::mt19937> rng;  // seeded (2.5 KB of state) only when a shuffle needs it
  for (int level = max_level; level >= 0; --level) {
    std::vector<int>& ids = by_level[static_cast<size_t>(level)];
    if (ids.size() > 1) {
      if (!rng) rng.emplace(static_cast<uint32_t>(789 + first));
      std::shuffle(ids.begin(), ids.end(), *rng);
    }
    ParallelFor(ids.size(), [&](size_t i) { Insert(base, ids[i], level, total); });
  }
  size_ = total;
}

// Moves `entry` greedily to its most similar neighbour on each level from `top` down to
// `bottom` + 1 (FAISS's greedy_update_nearest).
void HnswIndex::Descend(const int16_t* weights, int top, int bottom, int32_t& entry,
                        int32_t& entry_score, Scratch& s) const {
  const size_t dim = options_.dim;
  const uint8_t* codes = codes_.data();
  for (int level = top; level > bottom; --level) {
    const size_t degree = graph_->Degree(level);
    if (s.scores.size() < degree) s.scores.resize(degree);
    int32_t* scores = s.scores.data();
    for (bool moved = true; moved;) {
      moved = false;
      const int* begin = graph_->Links(static_cast<uint32_t>(entry), level);
      size_t n = 0;
      while (n != degree && begin[n] >= 0) ++n;
      CodeDots(weights, codes, dim, begin, n, scores);
      for (size_t j = 0; j < n; ++j) {
        if (scores[j] > entry_score) {
          entry_score = scores[j];
          entry = begin[j];
          moved = true;
        }
      }
    }
  }
}

// Best-first beam search on one level, as FAISS's search_neighbors_to_add and the level-0 loop
// of HNSW::search (and the HNSW paper), with the candidate and result heaps replaced by one
// sorted array of the best ef nodes found, each flagged once expanded: the search expands the
// most similar unexpanded node until every node in the array is expanded. That expands the same
// nodes in the same order as the two-heap loop (which stops when the best candidate is less
// similar than the ef-th result), with no heap operations: an insertion moves at most ef 8-byte
// entries, in L1. Similarities are integer CodeDots of the query's 16-bit weights (see
// Sq8Quantizer::PrepareQueryInt16): one vpdpwssd per 32 dimensions. Leaves the beam in
// s.beam[0, returned size), most similar first.
size_t HnswIndex::BeamSearch(const int16_t* weights, int32_t entry, int32_t entry_score, int level,
                             size_t ef, size_t nodes, Scratch& s) const {
  const faiss::HNSW& hnsw = graph_->hnsw;
  const size_t dim = options_.dim;
  const uint8_t* codes = codes_.data();
  const Graph& graph = *graph_;
  const size_t degree = graph.Degree(level);
  // Level 0: a fixed stride. Above: through FAISS's offsets.
  const int* links = level == 0 ? graph.links0.data()
                                : hnsw.neighbors.data() + hnsw.cum_nneighbor_per_level[level];
  const size_t* offsets = hnsw.offsets.data();
  auto links_of = [links, offsets, level, degree](uint32_t v) {
    return level == 0 ? links + v * degree : links + offsets[v];
  };
  const size_t links_bytes = degree * sizeof(int);
  if (s.fresh.size() < degree) s.fresh.resize(degree);
  if (s.scores.size() < degree) s.scores.resize(degree);
  int32_t* fresh = s.fresh.data();
  int32_t* scores = s.scores.data();
  const size_t words = (nodes + 63) / 64;
  if (s.visited.size() < words) s.visited.resize(words, 0);
  uint64_t* visited = s.visited.data();
  const bool clear_whole = words <= kClearWholeWords;
  std::vector<int32_t>& touched = s.touched;
  if (s.beam.size() < ef) s.beam.resize(ef);
  BeamEntry* beam = s.beam.data();
  size_t size = 1;
  beam[0] = {entry_score, static_cast<uint32_t>(entry)};
  visited[static_cast<uint32_t>(entry) >> 6] |= uint64_t{1} << (static_cast<uint32_t>(entry) & 63);
  if (!clear_whole) touched.push_back(entry);
  for (size_t cursor = 0; cursor < size;) {
    const uint32_t current = beam[cursor].node;
    beam[cursor].node |= kExpanded;
    size_t next = cursor + 1;  // the next node to expand, unless a better one turns up
    while (next < size && (beam[next].node & kExpanded)) ++next;
    if (next < size) PrefetchBytes(links_of(beam[next].node), links_bytes);
    const int* neighbours = links_of(current);
    size_t n_fresh = 0;
    for (size_t j = 0; j < degree; ++j) {  // branch-free: the bits are unpredictable
      const int v = neighbours[j];
      if (v < 0) break;
      uint64_t& word = visited[static_cast<uint32_t>(v) >> 6];
      const uint64_t bit = uint64_t{1} << (static_cast<uint32_t>(v) & 63);
      fresh[n_fresh] = v;
      n_fresh += (word & bit) == 0;
      word |= bit;
    }
    if (!clear_whole) touched.insert(touched.end(), fresh, fresh + n_fresh);
    CodeDots(weights, codes, dim, fresh, n_fresh, scores);
    for (size_t j = 0; j < n_fresh; ++j) {
      const int32_t score = scores[j];
      if (size == ef && score <= beam[ef - 1].score) continue;
      // Insertion sort from the end: shift the less similar entries one place down (the last
      // falls off a full beam) and put the new one after the last at least as similar.
      size_t pos = std::min(size, ef - 1);
      for (; pos > 0 && beam[pos - 1].score < score; --pos) beam[pos] = beam[pos - 1];
      beam[pos] = {score, static_cast<uint32_t>(fresh[j])};
      size = std::min(size + 1, ef);
      if (pos < next) {  // the next node to expand now
        next = pos;
        if (level == 0) PrefetchBytes(links_of(beam[pos].node), links_bytes);
      }
    }
    cursor = next;
    while (cursor < size && (beam[cursor].node & kExpanded)) ++cursor;
  }
  if (clear_whole) {
    std::memset(visited, 0, words * sizeof(uint64_t));
  } else {
    for (int32_t v : touched) visited[static_cast<uint32_t>(v) >> 6] = 0;
    touched.clear();
  }
  for (size_t i = 0; i < size; ++i) beam[i].node &= ~kExpanded;
  return size;
}

void HnswIndex::Search(const float* query, size_t k,
                       std::vector<std::pair<float, uint32_t>>& out) const {
  out.clear();
  const faiss::HNSW& hnsw = graph_->hnsw;
  if (size_ == 0 || k == 0 || hnsw.entry_point < 0) return;
  Scratch& s = ThreadScratch();
  s.weights.resize(options_.dim);
  float unit = 0.0f;
  const float bias = quantizer_.PrepareQueryInt16(query, s.weights.data(), &unit);
  int32_t entry = hnsw.entry_point;
  int32_t entry_score;
  CodeDots(s.weights.data(), codes_.data(), options_.dim, &entry, 1, &entry_score);
  Descend(s.weights.data(), hnsw.max_level, 0, entry, entry_score, s);
  const size_t ef = std::max(static_cast<size_t>(std::max(options_.ef_search, 1)), k);
  const size_t size = BeamSearch(s.weights.data(), entry, entry_score, 0, ef, size_, s);
  const size_t n_out = std::min(k, size);
  out.reserve(n_out);
  for (size_t i = 0; i < n_out; ++i) {
    out.emplace_back(bias + unit * static_cast<float>(s.beam[i].score), s.beam[i].node);
  }
}

// FAISS's HNSW::add_with_locks, step for step (same links, same locking), with its distance
// computations batched: the beam search above over codes, and the neighbour-selection
// heuristic (HNSW::shrink_neighbor_list) over the exact float32 vectors, with the rows
// prefetched. FAISS compares distances (smaller is nearer); this compares similarities.
void HnswIndex::Insert(const float* base, int32_t id, int level, size_t nodes) {
  faiss::HNSW& hnsw = graph_->hnsw;
  const size_t dim = options_.dim;
  Scratch& s = ThreadScratch();
  s.weights.resize(dim);
  float unit = 0.0f;
  const float bias =
      quantizer_.PrepareQueryInt16(base + static_cast<size_t>(id) * dim, s.weights.data(), &unit);
  int32_t nearest;
  int top;
  {
    std::lock_guard<std::mutex> lock(graph_->entry_mu);
    nearest = hnsw.entry_point;
    if (nearest < 0) {
      hnsw.max_level = level;
      hnsw.entry_point = id;
      return;
    }
    top = hnsw.max_level;
  }
  omp_lock_t* locks = graph_->locks.data();
  omp_set_lock(&locks[id]);
  int32_t nearest_score;
  CodeDots(s.weights.data(), codes_.data(), dim, &nearest, 1, &nearest_score);
  Descend(s.weights.data(), top, level, nearest, nearest_score, s);
  for (int l = std::min(level, top); l >= 0; --l) {
    const size_t size =
        BeamSearch(s.weights.data(), nearest, nearest_score, l,
                   static_cast<size_t>(std::max(options_.ef_construction, 1)), nodes, s);
    // The new node's links: the heuristic over the beam, nearest first, when it has at least
    // as many nodes as the level's links (FAISS's shrink_neighbor_list), else the whole beam.
    const size_t max_links = graph_->Degree(l);
    std::vector<int32_t>& selected = s.selected;
    selected.clear();
    for (size_t i = 0; i < size && selected.size() < max_links; ++i) {
      const int32_t v = static_cast<int32_t>(s.beam[i].node);
      if (size >= max_links) {
        const float similarity = bias + unit * static_cast<float>(s.beam[i].score);
        if (!Diverse(base, v, similarity, selected)) continue;
      }
      selected.push_back(v);
    }
    // As FAISS: links from the new node, farthest first, then back to it, each under the
    // lock of the node whose list changes.
    for (auto it = selected.rbegin(); it != selected.rend(); ++it) AddLink(base, id, *it, l, s);
    omp_unset_lock(&locks[id]);
    for (auto it = selected.rbegin(); it != selected.rend(); ++it) {
      omp_set_lock(&locks[*it]);
      AddLink(base, *it, id, l, s);
      omp_unset_lock(&locks[*it]);
    }
    omp_set_lock(&locks[id]);
  }
  omp_unset_lock(&locks[id]);
  if (level > top) {
    std::lock_guard<std::mutex> lock(graph_->entry_mu);
    if (level > hnsw.max_level) {
      hnsw.max_level = level;
      hnsw.entry_point = id;
    }
  }
}

// The HNSW heuristic's test for `v` (similarity `similarity` to the new vector): no node
// already selected is more similar to v than the new vector is.
bool HnswIndex::Diverse(const float* base, int32_t v, float similarity,
                        const std::vector<int32_t>& selected) const {
  const size_t dim = options_.dim;
  const float* row = base + static_cast<size_t>(v) * dim;
  constexpr size_t kBatch = 4;  // a few more products than the first rejection may need
  float products[kBatch];
  for (size_t i = 0; i < selected.size(); i += kBatch) {
    const size_t n = std::min(kBatch, selected.size() - i);
    InnerProductsGather(row, base, dim, selected.data() + i, n, products);
    for (size_t j = 0; j < n; ++j) {
      if (products[j] > similarity) return false;
    }
  }
  return true;
}

// FAISS's add_link: appends `dest` to src's level-`level` links, or when they are full
// re-chooses them among the old ones and dest with the heuristic (exact similarities to src),
// stored farthest first and padded with -1.
void HnswIndex::AddLink(const float* base, int32_t src, int32_t dest, int level, Scratch& s) {
  const size_t dim = options_.dim;
  int* links = graph_->Links(static_cast<uint32_t>(src), level);
  const size_t begin = 0;
  const size_t end = graph_->Degree(level);
  if (links[end - 1] == -1) {
    size_t i = end;
    while (i > begin && links[i - 1] == -1) --i;
    links[i] = dest;
    return;
  }
  const size_t degree = end - begin;
  const float* src_row = base + static_cast<size_t>(src) * dim;
  std::vector<std::pair<float, int32_t>>& contenders = s.contenders;
  contenders.clear();
  constexpr size_t kAhead = 4;  // float rows prefetched ahead (1 KB each at 256-d)
  auto row_of = [&](size_t i) { return i == 0 ? dest : links[begin + i - 1]; };
  for (size_t i = 0; i < std::min(kAhead, degree + 1); ++i) {
    PrefetchBytes(base + static_cast<size_t>(row_of(i)) * dim, dim * sizeof(float));
  }
  for (size_t i = 0; i <= degree; ++i) {
    if (i + kAhead <= degree) {
      PrefetchBytes(base + static_cast<size_t>(row_of(i + kAhead)) * dim, dim * sizeof(float));
    }
    const int32_t v = row_of(i);
    contenders.emplace_back(InnerProduct(src_row, base + static_cast<size_t>(v) * dim, dim), v);
  }
  std::stable_sort(contenders.begin(), contenders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<int32_t>& kept = s.kept;
  kept.clear();
  for (const auto& [similarity, v] : contenders) {
    if (Diverse(base, v, similarity, kept)) {
      kept.push_back(v);
      if (kept.size() >= degree) break;
    }
  }
  size_t i = begin;
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) links[i++] = *it;
  while (i < end) links[i++] = -1;
}

}  // namespace thrifty::cache::internal
