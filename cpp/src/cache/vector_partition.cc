#include "vector_partition.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "faiss/IndexHNSW.h"
#include "simd_distance.h"

namespace thrifty::cache::internal {
namespace {

// A single-query search must not fork an OpenMP team per call: with many caller threads that
// oversubscribes the cores. Set once per calling thread.
void SingleThreadedOpenMp() {
  thread_local const bool once = [] {
    omp_set_num_threads(1);
    return true;
  }();
  (void)once;
}

void KeepBest(std::vector<std::pair<float, uint64_t>>& best, size_t k, float similarity,
              uint64_t entry) {
  if (best.size() == k && similarity <= best.back().first) return;
  auto it = std::upper_bound(best.begin(), best.end(), similarity,
                             [](float s, const auto& pair) { return s > pair.first; });
  best.insert(it, {similarity, entry});
  if (best.size() > k) best.pop_back();
}

}  // namespace

VectorPartition::VectorPartition(PartitionConfig config) : config_(config) {}
VectorPartition::~VectorPartition() = default;

void VectorPartition::Add(const float* vector, uint64_t entry_id) {
  const size_t dim = config_.dim;
  uint32_t slot;
  if (!hnsw_ && !free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    std::memcpy(&vectors_[size_t{slot} * dim], vector, dim * sizeof(float));
    slot_entry_[slot] = entry_id;
  } else {
    slot = static_cast<uint32_t>(slot_entry_.size());
    vectors_.insert(vectors_.end(), vector, vector + dim);
    slot_entry_.push_back(entry_id);
  }
  slot_of_[entry_id] = slot;
  if (hnsw_) {
    hnsw_->add(1, vector);  // label == slot: both are appended in step
  } else if (config_.ann_always ||
             (config_.ann_min_entries > 0 && slot_of_.size() >= config_.ann_min_entries)) {
    BuildAnn();
  }
}

void VectorPartition::AddBatch(const float* vectors, const uint64_t* entry_ids, size_t n) {
  const size_t dim = config_.dim;
  const size_t first = slot_entry_.size();
  vectors_.insert(vectors_.end(), vectors, vectors + n * dim);
  for (size_t i = 0; i < n; ++i) {
    slot_entry_.push_back(entry_ids[i]);
    slot_of_[entry_ids[i]] = static_cast<uint32_t>(first + i);
  }
  const bool want_ann = config_.ann_always ||
                        (config_.ann_min_entries > 0 && slot_of_.size() >= config_.ann_min_entries);
  if (!hnsw_ && !want_ann) return;
  // Bulk insertion may use every core, whatever this thread set for single-query searches.
  const int previous = omp_get_max_threads();
  omp_set_num_threads(omp_get_num_procs());
  if (hnsw_) {
    hnsw_->add(static_cast<faiss::Index::idx_t>(n), &vectors_[first * dim]);
  } else {
    BuildAnn();
  }
  omp_set_num_threads(previous);
}

void VectorPartition::Remove(uint64_t entry_id) {
  auto it = slot_of_.find(entry_id);
  if (it == slot_of_.end()) return;
  const uint32_t slot = it->second;
  slot_of_.erase(it);
  slot_entry_[slot] = 0;
  std::fill_n(&vectors_[size_t{slot} * config_.dim], config_.dim, 0.0f);
  if (!hnsw_) {
    free_slots_.push_back(slot);
    return;
  }
  ++tombstones_;
  if (tombstones_ > 1000 && tombstones_ * 4 > slot_entry_.size()) {
    BuildAnn();  // compacts, then re-indexes the live vectors
  }
}

const float* VectorPartition::VectorOf(uint64_t entry_id) const {
  auto it = slot_of_.find(entry_id);
  return it == slot_of_.end() ? nullptr : &vectors_[size_t{it->second} * config_.dim];
}

void VectorPartition::Compact() {
  const size_t dim = config_.dim;
  size_t write = 0;
  for (size_t read = 0; read < slot_entry_.size(); ++read) {
    if (slot_entry_[read] == 0) continue;
    if (write != read) {
      std::memcpy(&vectors_[write * dim], &vectors_[read * dim], dim * sizeof(float));
      slot_entry_[write] = slot_entry_[read];
    }
    slot_of_[slot_entry_[write]] = static_cast<uint32_t>(write);
    ++write;
  }
  slot_entry_.resize(write);
  vectors_.resize(write * dim);
  free_slots_.clear();
  tombstones_ = 0;
}

void VectorPartition::BuildAnn() {
  Compact();
  hnsw_ = MakeFastHnsw(config_.dim, config_.hnsw_m);
  hnsw_->hnsw.efConstruction = config_.hnsw_ef_construction;
  hnsw_->hnsw.efSearch = config_.hnsw_ef_search;
  if (!slot_entry_.empty()) {
    hnsw_->add(static_cast<faiss::Index::idx_t>(slot_entry_.size()), vectors_.data());
  }
}

void VectorPartition::Search(const float* query, size_t k,
                             std::vector<std::pair<float, uint64_t>>& out) const {
  out.clear();
  if (slot_of_.empty() || k == 0) return;
  const size_t dim = config_.dim;
  if (hnsw_) {
    SingleThreadedOpenMp();
    // Ask for extra neighbours: some may be tombstones.
    const size_t want = std::min<size_t>(slot_entry_.size(), k + 4 + tombstones_ / 64);
    std::vector<float> distances(want);
    std::vector<faiss::Index::idx_t> labels(want);
    hnsw_->search(1, query, static_cast<faiss::Index::idx_t>(want), distances.data(),
                  labels.data());
    for (size_t i = 0; i < want; ++i) {
      if (labels[i] < 0) continue;
      const auto slot = static_cast<size_t>(labels[i]);
      if (slot >= slot_entry_.size() || slot_entry_[slot] == 0) continue;
      const float similarity = InnerProduct(query, &vectors_[slot * dim], dim);
      KeepBest(out, k, similarity, slot_entry_[slot]);
    }
    return;
  }
  thread_local std::vector<float> similarities;
  similarities.resize(slot_entry_.size());
  InnerProducts(query, vectors_.data(), dim, slot_entry_.size(), similarities.data());
  for (size_t slot = 0; slot < slot_entry_.size(); ++slot) {
    if (slot_entry_[slot] != 0) KeepBest(out, k, similarities[slot], slot_entry_[slot]);
  }
}

}  // namespace thrifty::cache::internal
