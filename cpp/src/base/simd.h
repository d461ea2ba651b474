// Inner products with the best SIMD the CPU has (AVX-512, AVX2+FMA, or scalar), chosen once at
// run time. Internal to the core: shared by the cache area (exact scans, the SQ8 HNSW walk)
// and the route area (the kNN predictor), which may not depend on each other.
//
// Why not FAISS's own: Debian's libfaiss is compiled for baseline x86-64 (no FMA/AVX2 code), so
// its distance loop runs about 3x slower than the hardware allows, and HNSW spends most of its
// time there. Per-function target attributes keep the build portable (no global -march).
//
// Thread-safety: pure functions.
#ifndef THRIFTY_SRC_BASE_SIMD_H_
#define THRIFTY_SRC_BASE_SIMD_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace thrifty::simd {

float InnerProduct(const float* a, const float* b, size_t dim);
// out[i] = <query, base + i * dim> for i in [0, n).
void InnerProducts(const float* query, const float* base, size_t dim, size_t n, float* out);
// out[j] = InnerProduct(query, base + ids[j] * dim, dim) for j in [0, n), bit-identical to it,
// several rows at a time.
void InnerProductsGather(const float* query, const float* base, size_t dim, const int32_t* ids,
                         size_t n, float* out);
// sum_i weights[i] * code[i]: the code-dependent part of an inner product with an 8-bit
// scalar-quantized vector (see Sq8Quantizer).
float WeightedCodeSum(const float* weights, const uint8_t* code, size_t dim);
// out[j] = WeightedCodeSum(weights, codes + ids[j] * dim, dim) for j in [0, n): the scattered
// rows an HNSW step visits, fetched a few rows ahead of the arithmetic.
void WeightedCodeSums(const float* weights, const uint8_t* codes, size_t dim, const int32_t* ids,
                      size_t n, float* out);
// sum_i weights[i] * code[i] in exact integer arithmetic (AVX-512BW / AVX2 multiply-add of
// 16-bit pairs: half the instructions of the float kernel). The caller keeps
// dim * 255 * max|weights[i]| < 2^31.
int32_t CodeDot(const int16_t* weights, const uint8_t* code, size_t dim);
// out[j] = CodeDot(weights, codes + ids[j] * dim, dim) for j in [0, n), prefetched as
// WeightedCodeSums (AVX-512 VNNI's vpdpwssd where the CPU has it: one instruction per 32 dims).
void CodeDots(const int16_t* weights, const uint8_t* codes, size_t dim, const int32_t* ids,
              size_t n, int32_t* out);
// "avx512", "avx2" or "scalar": what the kernels use on this CPU.
std::string_view SimdLevel();

}  // namespace thrifty::simd

#endif  // THRIFTY_SRC_BASE_SIMD_H_
