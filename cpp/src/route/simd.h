// The route area's names for the shared SIMD kernels (cpp/src/base/simd.h).
//
// Thread-safety: pure functions.
#ifndef THRIFTY_SRC_ROUTE_SIMD_H_
#define THRIFTY_SRC_ROUTE_SIMD_H_

#include <cstddef>
#include <cstdint>

#include "../base/simd.h"

namespace thrifty::route::internal {

inline float Dot(const float* a, const float* b, size_t dim) {
  return simd::InnerProduct(a, b, dim);
}
// out[i] = <query, base + i * dim> for i in [0, n).
inline void Dots(const float* query, const float* base, size_t dim, size_t n, float* out) {
  simd::InnerProducts(query, base, dim, n, out);
}
using simd::CodeDot;

}  // namespace thrifty::route::internal

#endif  // THRIFTY_SRC_ROUTE_SIMD_H_
