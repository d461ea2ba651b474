// Transparent huge pages for the large, randomly read arrays of a semantic cache partition
// (float32 vectors, 8-bit codes, HNSW links). Internal to the cache area.
//
// An HNSW lookup reads a few thousand scattered rows; with 4 KiB pages almost every row costs a
// TLB miss and a page walk on top of its cache misses (measured: 12-15% of a 1M-entry lookup).
// Linux backs 2 MiB-aligned ranges with 2 MiB pages when THP is "always", or when it is
// "madvise" (the usual default) and the range was advised MADV_HUGEPAGE before first touch.
// Where THP is off the advice is a no-op and memory behaves as usual.
//
// Thread-safety: stateless; safe from any thread.
#ifndef THRIFTY_CACHE_HUGE_PAGES_H_
#define THRIFTY_CACHE_HUGE_PAGES_H_

#include <cstddef>

namespace thrifty::cache::internal {

// Buffers from kHugePageMinBytes up are 2 MiB-aligned and advised; smaller ones come from
// operator new. Free with FreeHugePageBacked and the same size.
inline constexpr size_t kHugePageMinBytes = size_t{4} << 20;
void* AllocateHugePageBacked(size_t bytes);
void FreeHugePageBacked(void* p, size_t bytes) noexcept;
// Advises the whole pages inside [p, p + bytes), for buffers allocated elsewhere (FAISS's
// link table). Pages already touched stay small until the kernel collapses them.
void AdviseHugePages(const void* p, size_t bytes) noexcept;

// A std::allocator replacement built on the above, for std::vector.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() noexcept = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(size_t n) { return static_cast<T*>(AllocateHugePageBacked(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { FreeHugePageBacked(p, n * sizeof(T)); }
  friend bool operator==(const HugePageAllocator&, const HugePageAllocator&) { return true; }
};

}  // namespace thrifty::cache::internal

#endif  // THRIFTY_CACHE_HUGE_PAGES_H_
