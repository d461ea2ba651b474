#include "vector_partition.h"

#include <algorithm>
#include <cstring>

#include "simd_distance.h"

namespace thrifty::cache::internal {
namespace {

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
    ReserveWithSlack(vectors_, vectors_.size() + dim);
    ReserveWithSlack(slot_entry_, slot_entry_.size() + 1);
    vectors_.insert(vectors_.end(), vector, vector + dim);
    slot_entry_.push_back(entry_id);
  }
  slot_of_[entry_id] = slot;
  if (hnsw_) {
    hnsw_->Add(vectors_.data(), 1);  // label == slot: both are appended in step
  } else if (config_.ann_always ||
             (config_.ann_min_entries > 0 && slot_of_.size() >= config_.ann_min_entries)) {
    BuildAnn();
  }
}

void VectorPartition::AddBatch(const float* vectors, const uint64_t* entry_ids, size_t n) {
  const size_t dim = config_.dim;
  const size_t first = slot_entry_.size();
  ReserveWithSlack(vectors_, vectors_.size() + n * dim);
  ReserveWithSlack(slot_entry_, slot_entry_.size() + n);
  vectors_.insert(vectors_.end(), vectors, vectors + n * dim);
  for (size_t i = 0; i < n; ++i) {
    slot_entry_.push_back(entry_ids[i]);
    slot_of_[entry_ids[i]] = static_cast<uint32_t>(first + i);
  }
  const bool want_ann = config_.ann_always ||
                        (config_.ann_min_entries > 0 && slot_of_.size() >= config_.ann_min_entries);
  if (hnsw_) {
    hnsw_->Add(vectors_.data(), n);
  } else if (want_ann) {
    BuildAnn();
  }
}

void VectorPartition::Remove(uint64_t entry_id) {
  auto it = slot_of_.find(entry_id);
  if (it == slot_of_.end()) return;
  const uint32_t slot = it->second;
  slot_of_.erase(it);
  slot_entry_[slot] = 0;
  if (!hnsw_) {
    std::fill_n(&vectors_[size_t{slot} * config_.dim], config_.dim, 0.0f);
    free_slots_.push_back(slot);
    return;
  }
  ++tombstones_;
  if (tombstones_ > 1000 && tombstones_ * 2 > slot_entry_.size()) {
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
  slot_entry_.shrink_to_fit();  // a rebuild follows: the copy is cheap next to it
  vectors_.shrink_to_fit();
  free_slots_.clear();
  tombstones_ = 0;
}

size_t VectorPartition::MemoryBytes() const {
  return vectors_.capacity() * sizeof(float) + slot_entry_.capacity() * sizeof(uint64_t) +
         free_slots_.capacity() * sizeof(uint32_t) +
         slot_of_.capacity() * (sizeof(uint64_t) + sizeof(uint32_t) + 1) +
         (hnsw_ ? hnsw_->MemoryBytes() : 0);
}

void VectorPartition::BuildAnn() {
  Compact();
  HnswOptions options;
  options.dim = config_.dim;
  options.m = config_.hnsw_m;
  options.ef_construction = config_.hnsw_ef_construction;
  options.ef_search = config_.hnsw_ef_search;
  hnsw_ = std::make_unique<HnswIndex>(options);
  hnsw_->Add(vectors_.data(), slot_entry_.size());
}

void VectorPartition::Search(const float* query, size_t k,
                             std::vector<std::pair<float, uint64_t>>& out) const {
  out.clear();
  if (slot_of_.empty() || k == 0) return;
  const size_t dim = config_.dim;
  if (hnsw_) {
    // Extra candidates for the exact re-ranking, and to make up for tombstones among them.
    const size_t live = slot_of_.size();
    const size_t total = slot_entry_.size();
    const size_t wanted = std::min(k, live) + kRerankExtra;
    const size_t want = std::min(total, (wanted * total + live - 1) / live);
    thread_local std::vector<std::pair<float, uint32_t>> candidates;
    hnsw_->Search(query, want, candidates);
    for (const auto& [approximate, slot] : candidates) {  // scattered rows: fetch them all
      const char* row = reinterpret_cast<const char*>(&vectors_[size_t{slot} * dim]);
      for (size_t offset = 0; offset < dim * sizeof(float); offset += 64) {
        __builtin_prefetch(row + offset);
      }
    }
    // The live candidates' exact similarities, four rows at a time (bit-identical to
    // InnerProduct one by one).
    thread_local std::vector<int32_t> live_slots;
    thread_local std::vector<float> similarities;
    live_slots.clear();
    for (const auto& [approximate, slot] : candidates) {
      if (slot_entry_[slot] != 0) live_slots.push_back(static_cast<int32_t>(slot));
    }
    similarities.resize(live_slots.size());
    InnerProductsGather(query, vectors_.data(), dim, live_slots.data(), live_slots.size(),
                        similarities.data());
    for (size_t i = 0; i < live_slots.size(); ++i) {
      KeepBest(out, k, similarities[i], slot_entry_[static_cast<uint32_t>(live_slots[i])]);
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
