#include "huge_pages.h"

#include <sys/mman.h>  // madvise
#include <unistd.h>    // sysconf

#include <cstdint>
#include <cstdlib>
#include <new>

namespace thrifty::cache::internal {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

}  // namespace

void* AllocateHugePageBacked(size_t bytes) {
  if (bytes < kHugePageMinBytes) return ::operator new(bytes);
  void* p = nullptr;
  if (posix_memalign(&p, kHugePage, bytes) != 0) throw std::bad_alloc();
  AdviseHugePages(p, bytes);
  return p;
}

void FreeHugePageBacked(void* p, size_t bytes) noexcept {
  if (bytes < kHugePageMinBytes) {
    ::operator delete(p);
  } else {
    std::free(p);
  }
}

void AdviseHugePages(const void* p, size_t bytes) noexcept {
#ifdef MADV_HUGEPAGE
  static const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const auto end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(page - 1);
  if (end >= begin + kHugePage) {
    // Best effort: THP may be disabled, and the pages work either way.
    (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace thrifty::cache::internal
