// Inner products with the best SIMD the CPU has (AVX-512, AVX2+FMA, or scalar), chosen once at
// run time. Internal to the route area.
//
// Why: Debian's libfaiss is compiled for baseline x86-64, so its distance loops run several
// times slower than the hardware allows, and both the exact scan and the HNSW walk spend most
// of their time there. Per-function target attributes keep the build portable (no global
// -march). The cache area has the same kernels (cpp/src/cache/simd_distance.cc); route may not
// depend on cache, so these are its own.
//
// Thread-safety: pure functions.
#ifndef THRIFTY_SRC_ROUTE_SIMD_H_
#define THRIFTY_SRC_ROUTE_SIMD_H_

#include <cstddef>
#include <cstdint>

namespace thrifty::route::internal {

float Dot(const float* a, const float* b, size_t dim);
// out[i] = <query, base + i * dim> for i in [0, n).
void Dots(const float* query, const float* base, size_t dim, size_t n, float* out);
// sum_i weights[i] * code[i]: the code-dependent part of an inner product with an 8-bit
// scalar-quantized vector.
float WeightedCodeSum(const float* weights, const uint8_t* code, size_t dim);
// sum_i weights[i] * code[i] in exact integer arithmetic (AVX-512BW / AVX2 multiply-add of
// 16-bit pairs: half the instructions of the float kernel). The caller keeps
// dim * 255 * max|weights[i]| < 2^31.
int32_t CodeDot(const int16_t* weights, const uint8_t* code, size_t dim);

}  // namespace thrifty::route::internal

#endif  // THRIFTY_SRC_ROUTE_SIMD_H_
