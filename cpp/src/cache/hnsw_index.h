// HnswIndex: an HNSW graph built from exact vectors and searched over 8-bit codes. Internal to
// the cache area.
//
// A faiss::HNSW holds the levels and links (FAISS's layout and level draw). Insertion is
// FAISS's add_with_locks step for step (same neighbour-selection heuristic, same per-node
// locks, on every core for a batch), reimplemented here so its distance computations batch and
// prefetch: its beam search compares the inserted vector with codes, its neighbour selection
// compares float32 vectors. It reads the caller's float32 vectors but never copies them: one
// float copy per entry, the caller's. Both beam searches (insertion's and Search's) keep the
// best ef nodes in one sorted array instead of two heaps, rank nodes by exact integer dot
// products of 16-bit query weights with the 8-bit codes (Sq8Quantizer::PrepareQueryInt16,
// simd::CodeDots: AVX-512 VNNI where present), prefetch the rows and links they are about to
// read, and keep their visited bits and beams per thread, so a lookup allocates nothing.
// Codes are dim bytes per node, a quarter of the memory traffic of float32. Similarities are
// approximate (within a few thousandths for unit vectors); callers re-rank the candidates
// with their exact vectors.
//
// Why not faiss::IndexHNSW: it needs a storage index holding a second copy of the vectors, and
// its search (Debian's FAISS is built for baseline x86-64) allocates and zeroes an ntotal-byte
// visited table per query and reads each candidate through two virtual calls, without
// prefetching. Lookups at 1M entries are memory-bound, and this search reads 4x fewer bytes.
// Why not faiss::HNSW::add_with_locks: it computes one distance per virtual call, without
// prefetching, through two std::priority_queues; the same steps here take half the time.
//
// Invariants: labels are 0..size()-1 in insertion order; codes hold size() * dim bytes, encoded
// by the current quantizer (re-trained, and every code re-encoded, when the index has grown
// fourfold since the last training, until kMaxTrainingRows rows).
//
// Thread-safety: thread-compatible. Concurrent const calls (Search) are safe; Add and
// set_ef_search must be serialized against everything else. Each searching thread keeps
// size() / 8 bytes of visited bits (for the largest index it searched) for its lifetime.
#ifndef THRIFTY_CACHE_HNSW_INDEX_H_
#define THRIFTY_CACHE_HNSW_INDEX_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "huge_pages.h"
#include "sq8_quantizer.h"

namespace thrifty::cache::internal {

// Makes room for `size` elements, growing the capacity by at least an eighth at a time:
// amortized O(1) appends with at most 12.5% unused capacity, where std::vector's doubling can
// leave half of a large index unused.
template <typename Vector>
void ReserveWithSlack(Vector& v, size_t size) {
  if (size > v.capacity()) v.reserve(std::max(size, v.capacity() + v.capacity() / 8));
}

struct HnswOptions {
  size_t dim = 0;
  int m = 32;  // links per node on the upper levels; 2 * m on level 0
  int ef_construction = 40;
  int ef_search = 96;
};

class HnswIndex {
 public:
  explicit HnswIndex(HnswOptions options);
  ~HnswIndex();
  HnswIndex(const HnswIndex&) = delete;
  HnswIndex& operator=(const HnswIndex&) = delete;

  // Indexes rows [size(), size() + n) of `base` (row i has label i). Rows below size() must be
  // the ones added before: the new links are chosen by comparing them.
  void Add(const float* base, size_t n);
  // Up to k (approximate similarity, label) pairs, best first, from a beam of
  // max(ef_search, k) nodes.
  void Search(const float* query, size_t k, std::vector<std::pair<float, uint32_t>>& out) const;

  size_t size() const { return size_; }
  int ef_search() const { return options_.ef_search; }
  void set_ef_search(int ef) { options_.ef_search = ef; }
  const Sq8Quantizer& quantizer() const { return quantizer_; }
  // Bytes held: codes, links and per-node bookkeeping.
  size_t MemoryBytes() const;
  // The level-`level` links of `node` in stored order (for tests); empty above its level.
  std::vector<int> Links(size_t node, int level) const;

  static constexpr size_t kMaxTrainingRows = 65536;

 private:
  struct Graph;    // FAISS types stay out of this header
  struct Scratch;  // per-thread buffers of a search or an insertion
  static Scratch& ThreadScratch();

  void EncodeRows(const float* base, size_t begin, size_t end);
  void Descend(const int16_t* weights, int top, int bottom, int32_t& entry, int32_t& entry_score,
               Scratch& s) const;
  size_t BeamSearch(const int16_t* weights, int32_t entry, int32_t entry_score, int level,
                    size_t ef, size_t nodes, Scratch& s) const;
  void Insert(const float* base, int32_t id, int level, size_t nodes);
  bool Diverse(const float* base, int32_t v, float similarity,
               const std::vector<int32_t>& selected) const;
  void AddLink(const float* base, int32_t src, int32_t dest, int level, Scratch& s);

  HnswOptions options_;
  std::unique_ptr<Graph> graph_;
  Sq8Quantizer quantizer_;
  size_t trained_rows_ = 0;
  std::vector<uint8_t, HugePageAllocator<uint8_t>> codes_;  // size_ * dim
  size_t size_ = 0;
};

}  // namespace thrifty::cache::internal

#endif  // THRIFTY_CACHE_HNSW_INDEX_H_
