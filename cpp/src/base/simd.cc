#include "simd.h"

#include <immintrin.h>

#include <algorithm>

// GCC 12 warns inside its own AVX-512 intrinsics (their _mm512_undefined_* pass-through
// operands; GCC bug 105593, fixed in 13) wherever this file inlines them.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace thrifty::simd {
namespace {

float InnerProductScalar(const float* a, const float* b, size_t dim) {
  float sum = 0.0f;
  for (size_t i = 0; i < dim; ++i) sum += a[i] * b[i];
  return sum;
}

__attribute__((target("avx2,fma"))) float InnerProductAvx2(const float* a, const float* b,
                                                           size_t dim) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= dim; i += 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  }
  const __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_shuffle_ps(sum, sum, 1));
  float total = _mm_cvtss_f32(sum);
  for (; i < dim; ++i) total += a[i] * b[i];
  return total;
}

__attribute__((target("avx512f"))) float InnerProductAvx512(const float* a, const float* b,
                                                            size_t dim) {
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i + 16 <= dim; i += 16) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  }
  float total = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; i < dim; ++i) total += a[i] * b[i];
  return total;
}

// out[j] = <query, base + ids[j] * dim> for j in [0, n), four rows at a time (four independent
// chains of FMAs, the query loaded once for four rows). Each row's arithmetic is exactly
// InnerProduct's, in the same order, so the results are bit-identical to it.
void InnerProductsGatherScalar(const float* query, const float* base, size_t dim,
                               const int32_t* ids, size_t n, float* out) {
  for (size_t j = 0; j < n; ++j) {
    out[j] = InnerProductScalar(query, base + static_cast<size_t>(ids[j]) * dim, dim);
  }
}

__attribute__((target("avx2,fma"))) void InnerProductsGatherAvx2(const float* query,
                                                                 const float* base, size_t dim,
                                                                 const int32_t* ids, size_t n,
                                                                 float* out) {
  for (size_t j = 0; j < n; ++j) {
    out[j] = InnerProductAvx2(query, base + static_cast<size_t>(ids[j]) * dim, dim);
  }
}

__attribute__((target("avx512f"))) void InnerProductsGatherAvx512(const float* query,
                                                                  const float* base, size_t dim,
                                                                  const int32_t* ids, size_t n,
                                                                  float* out) {
  size_t j = 0;
  if (dim % 32 == 0) {
    for (; j + 4 <= n; j += 4) {
      const float* r0 = base + static_cast<size_t>(ids[j]) * dim;
      const float* r1 = base + static_cast<size_t>(ids[j + 1]) * dim;
      const float* r2 = base + static_cast<size_t>(ids[j + 2]) * dim;
      const float* r3 = base + static_cast<size_t>(ids[j + 3]) * dim;
      __m512 a0 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps();
      __m512 a1 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
      __m512 a2 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps();
      __m512 a3 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
      for (size_t i = 0; i < dim; i += 32) {
        const __m512 q0 = _mm512_loadu_ps(query + i);
        const __m512 q1 = _mm512_loadu_ps(query + i + 16);
        a0 = _mm512_fmadd_ps(q0, _mm512_loadu_ps(r0 + i), a0);
        b0 = _mm512_fmadd_ps(q1, _mm512_loadu_ps(r0 + i + 16), b0);
        a1 = _mm512_fmadd_ps(q0, _mm512_loadu_ps(r1 + i), a1);
        b1 = _mm512_fmadd_ps(q1, _mm512_loadu_ps(r1 + i + 16), b1);
        a2 = _mm512_fmadd_ps(q0, _mm512_loadu_ps(r2 + i), a2);
        b2 = _mm512_fmadd_ps(q1, _mm512_loadu_ps(r2 + i + 16), b2);
        a3 = _mm512_fmadd_ps(q0, _mm512_loadu_ps(r3 + i), a3);
        b3 = _mm512_fmadd_ps(q1, _mm512_loadu_ps(r3 + i + 16), b3);
      }
      out[j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
      out[j + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
      out[j + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
      out[j + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
    }
  }
  for (; j < n; ++j) {
    out[j] = InnerProductAvx512(query, base + static_cast<size_t>(ids[j]) * dim, dim);
  }
}

float WeightedCodeSumScalar(const float* weights, const uint8_t* code, size_t dim) {
  float sum = 0.0f;
  for (size_t i = 0; i < dim; ++i) sum += weights[i] * static_cast<float>(code[i]);
  return sum;
}

__attribute__((target("avx2,fma"))) float WeightedCodeSumAvx2(const float* weights,
                                                              const uint8_t* code, size_t dim) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i));
    const __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
    const __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)));
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(weights + i), lo, acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(weights + i + 8), hi, acc1);
  }
  const __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_shuffle_ps(sum, sum, 1));
  float total = _mm_cvtss_f32(sum);
  for (; i < dim; ++i) total += weights[i] * static_cast<float>(code[i]);
  return total;
}

__attribute__((target("avx512f"))) float WeightedCodeSumAvx512(const float* weights,
                                                               const uint8_t* code, size_t dim) {
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m512 lo = _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i))));
    const __m512 hi = _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i + 16))));
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(weights + i), lo, acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(weights + i + 16), hi, acc1);
  }
  for (; i + 16 <= dim; i += 16) {
    const __m512 lo = _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i))));
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(weights + i), lo, acc0);
  }
  float total = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; i < dim; ++i) total += weights[i] * static_cast<float>(code[i]);
  return total;
}

// The batch loop below, for each kernel: the rows are scattered (the hardware prefetcher cannot
// guess them), so prefetch about kPrefetchBytes ahead of the row being computed. Measured on
// 1M 256-d codes: 16 rows ahead beat 4 by ~10%; beyond that it made no difference.
constexpr size_t kPrefetchBytes = 4096;

inline void PrefetchCode(const uint8_t* code, size_t dim) {
  for (size_t offset = 0; offset < dim; offset += 64) __builtin_prefetch(code + offset);
}

#define THRIFTY_WEIGHTED_CODE_SUMS_BODY(kernel)                                              \
  const size_t ahead = std::max<size_t>(1, kPrefetchBytes / std::max<size_t>(dim, 1));       \
  for (size_t j = 0; j < std::min(ahead, n); ++j) {                                          \
    PrefetchCode(codes + static_cast<size_t>(ids[j]) * dim, dim);                            \
  }                                                                                          \
  for (size_t j = 0; j < n; ++j) {                                                           \
    if (j + ahead < n) PrefetchCode(codes + static_cast<size_t>(ids[j + ahead]) * dim, dim); \
    out[j] = kernel(weights, codes + static_cast<size_t>(ids[j]) * dim, dim);                \
  }

void WeightedCodeSumsScalar(const float* weights, const uint8_t* codes, size_t dim,
                            const int32_t* ids, size_t n, float* out) {
  THRIFTY_WEIGHTED_CODE_SUMS_BODY(WeightedCodeSumScalar)
}

__attribute__((target("avx2,fma"))) void WeightedCodeSumsAvx2(const float* weights,
                                                              const uint8_t* codes, size_t dim,
                                                              const int32_t* ids, size_t n,
                                                              float* out) {
  THRIFTY_WEIGHTED_CODE_SUMS_BODY(WeightedCodeSumAvx2)
}

__attribute__((target("avx512f"))) void WeightedCodeSumsAvx512(
    const float* weights, const uint8_t* codes, size_t dim, const int32_t* ids, size_t n,
    float* out){THRIFTY_WEIGHTED_CODE_SUMS_BODY(WeightedCodeSumAvx512)}
#undef THRIFTY_WEIGHTED_CODE_SUMS_BODY

int32_t CodeDotScalar(const int16_t* weights, const uint8_t* code, size_t dim) {
  int32_t sum = 0;
  for (size_t i = 0; i < dim; ++i) sum += int32_t{weights[i]} * int32_t{code[i]};
  return sum;
}

__attribute__((target("avx2"))) int32_t CodeDotAvx2(const int16_t* weights, const uint8_t* code,
                                                    size_t dim) {
  __m256i acc = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const __m256i c =
        _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code + i)));
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(weights + i));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(c, w));
  }
  __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0x4e));
  sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0xb1));
  int32_t total = _mm_cvtsi128_si32(sum);
  for (; i < dim; ++i) total += int32_t{weights[i]} * int32_t{code[i]};
  return total;
}

__attribute__((target("avx512f,avx512bw"))) int32_t CodeDotAvx512(const int16_t* weights,
                                                                  const uint8_t* code, size_t dim) {
  __m512i acc0 = _mm512_setzero_si512();
  __m512i acc1 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 64 <= dim; i += 64) {
    const __m512i c0 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i)));
    const __m512i c1 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i + 32)));
    acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(c0, _mm512_loadu_si512(weights + i)));
    acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(c1, _mm512_loadu_si512(weights + i + 32)));
  }
  for (; i + 32 <= dim; i += 32) {
    const __m512i c0 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i)));
    acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(c0, _mm512_loadu_si512(weights + i)));
  }
  int32_t total = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
  for (; i < dim; ++i) total += int32_t{weights[i]} * int32_t{code[i]};
  return total;
}

// AVX-512 VNNI (Ice Lake and later): vpdpwssd multiplies 16-bit pairs and adds them to the
// 32-bit accumulator in one instruction. The same exact integer sum as CodeDotAvx512.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int32_t CodeDotVnni(const int16_t* weights,
                                                                           const uint8_t* code,
                                                                           size_t dim) {
  __m512i acc0 = _mm512_setzero_si512();
  __m512i acc1 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 64 <= dim; i += 64) {
    const __m512i c0 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i)));
    const __m512i c1 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i + 32)));
    acc0 = _mm512_dpwssd_epi32(acc0, c0, _mm512_loadu_si512(weights + i));
    acc1 = _mm512_dpwssd_epi32(acc1, c1, _mm512_loadu_si512(weights + i + 32));
  }
  for (; i + 32 <= dim; i += 32) {
    const __m512i c0 =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + i)));
    acc0 = _mm512_dpwssd_epi32(acc0, c0, _mm512_loadu_si512(weights + i));
  }
  int32_t total = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
  for (; i < dim; ++i) total += int32_t{weights[i]} * int32_t{code[i]};
  return total;
}

// The batch loop of CodeDots for each kernel, prefetching as THRIFTY_WEIGHTED_CODE_SUMS_BODY.
#define THRIFTY_CODE_DOTS_BODY(kernel)                                                       \
  const size_t ahead = std::max<size_t>(1, kPrefetchBytes / std::max<size_t>(dim, 1));       \
  for (size_t j = 0; j < std::min(ahead, n); ++j) {                                          \
    PrefetchCode(codes + static_cast<size_t>(ids[j]) * dim, dim);                            \
  }                                                                                          \
  for (size_t j = 0; j < n; ++j) {                                                           \
    if (j + ahead < n) PrefetchCode(codes + static_cast<size_t>(ids[j + ahead]) * dim, dim); \
    out[j] = kernel(weights, codes + static_cast<size_t>(ids[j]) * dim, dim);                \
  }

void CodeDotsScalar(const int16_t* weights, const uint8_t* codes, size_t dim, const int32_t* ids,
                    size_t n, int32_t* out) {
  THRIFTY_CODE_DOTS_BODY(CodeDotScalar)
}

__attribute__((target("avx2"))) void CodeDotsAvx2(const int16_t* weights, const uint8_t* codes,
                                                  size_t dim, const int32_t* ids, size_t n,
                                                  int32_t* out) {
  THRIFTY_CODE_DOTS_BODY(CodeDotAvx2)
}

__attribute__((target("avx512f,avx512bw"))) void CodeDotsAvx512(const int16_t* weights,
                                                                const uint8_t* codes, size_t dim,
                                                                const int32_t* ids, size_t n,
                                                                int32_t* out) {
  THRIFTY_CODE_DOTS_BODY(CodeDotAvx512)
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void CodeDotsVnni(const int16_t* weights,
                                                                         const uint8_t* codes,
                                                                         size_t dim,
                                                                         const int32_t* ids,
                                                                         size_t n, int32_t* out) {
  THRIFTY_CODE_DOTS_BODY(CodeDotVnni)
}
#undef THRIFTY_CODE_DOTS_BODY

using CodeDotFn = int32_t (*)(const int16_t*, const uint8_t*, size_t);
using CodeDotsFn = void (*)(const int16_t*, const uint8_t*, size_t, const int32_t*, size_t,
                            int32_t*);

struct CodeDotDispatch {
  CodeDotFn one;
  CodeDotsFn batch;
};

CodeDotDispatch PickCodeDot() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
    if (__builtin_cpu_supports("avx512vnni")) return {CodeDotVnni, CodeDotsVnni};
    return {CodeDotAvx512, CodeDotsAvx512};
  }
  if (__builtin_cpu_supports("avx2")) return {CodeDotAvx2, CodeDotsAvx2};
  return {CodeDotScalar, CodeDotsScalar};
}

const CodeDotDispatch kCodeDot = PickCodeDot();

using Kernel = float (*)(const float*, const float*, size_t);
using BatchCodeKernel = void (*)(const float*, const uint8_t*, size_t, const int32_t*, size_t,
                                 float*);

using GatherKernel = void (*)(const float*, const float*, size_t, const int32_t*, size_t, float*);

struct Dispatch {
  Kernel kernel;
  GatherKernel gather_kernel;
  float (*code_kernel)(const float*, const uint8_t*, size_t);
  BatchCodeKernel batch_code_kernel;
  std::string_view level;
};

const Dispatch& Chosen() {
  static const Dispatch dispatch = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
      return Dispatch{InnerProductAvx512, InnerProductsGatherAvx512, WeightedCodeSumAvx512,
                      WeightedCodeSumsAvx512, "avx512"};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return Dispatch{InnerProductAvx2, InnerProductsGatherAvx2, WeightedCodeSumAvx2,
                      WeightedCodeSumsAvx2, "avx2"};
    }
    return Dispatch{InnerProductScalar, InnerProductsGatherScalar, WeightedCodeSumScalar,
                    WeightedCodeSumsScalar, "scalar"};
  }();
  return dispatch;
}

}  // namespace

float InnerProduct(const float* a, const float* b, size_t dim) {
  return Chosen().kernel(a, b, dim);
}

void InnerProducts(const float* query, const float* base, size_t dim, size_t n, float* out) {
  const Kernel kernel = Chosen().kernel;
  for (size_t i = 0; i < n; ++i) out[i] = kernel(query, base + i * dim, dim);
}

void InnerProductsGather(const float* query, const float* base, size_t dim, const int32_t* ids,
                         size_t n, float* out) {
  Chosen().gather_kernel(query, base, dim, ids, n, out);
}

float WeightedCodeSum(const float* weights, const uint8_t* code, size_t dim) {
  return Chosen().code_kernel(weights, code, dim);
}

void WeightedCodeSums(const float* weights, const uint8_t* codes, size_t dim, const int32_t* ids,
                      size_t n, float* out) {
  Chosen().batch_code_kernel(weights, codes, dim, ids, n, out);
}

int32_t CodeDot(const int16_t* weights, const uint8_t* code, size_t dim) {
  return kCodeDot.one(weights, code, dim);
}

void CodeDots(const int16_t* weights, const uint8_t* codes, size_t dim, const int32_t* ids,
              size_t n, int32_t* out) {
  kCodeDot.batch(weights, codes, dim, ids, n, out);
}

std::string_view SimdLevel() { return Chosen().level; }

}  // namespace thrifty::simd
