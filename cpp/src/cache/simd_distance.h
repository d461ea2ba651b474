// Inner products with the best SIMD the CPU has (AVX-512, AVX2+FMA, or scalar), chosen once at
// run time. Internal to the cache area.
//
// Why not FAISS's own: Debian's libfaiss is compiled for baseline x86-64 (no FMA/AVX2 code), so
// its distance loop runs about 3x slower than the hardware allows, and HNSW spends most of its
// time there. Per-function target attributes keep the build portable (no global -march).
//
// Thread-safety: pure functions.
#ifndef THRIFTY_CACHE_SIMD_DISTANCE_H_
#define THRIFTY_CACHE_SIMD_DISTANCE_H_

#include <cstddef>
#include <memory>
#include <string_view>

namespace faiss {
struct IndexHNSW;
}  // namespace faiss

namespace thrifty::cache::internal {

float InnerProduct(const float* a, const float* b, size_t dim);
// out[i] = <query, base + i * dim> for i in [0, n).
void InnerProducts(const float* query, const float* base, size_t dim, size_t n, float* out);
// "avx512", "avx2" or "scalar": what InnerProduct uses on this CPU.
std::string_view SimdLevel();

// An HNSW index (inner product) whose storage computes distances with InnerProduct.
std::unique_ptr<faiss::IndexHNSW> MakeFastHnsw(size_t dim, int m);

}  // namespace thrifty::cache::internal

#endif  // THRIFTY_CACHE_SIMD_DISTANCE_H_
