#include "simd_distance.h"

#include <immintrin.h>

#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/impl/DistanceComputer.h"

namespace thrifty::cache::internal {
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

using Kernel = float (*)(const float*, const float*, size_t);

struct Dispatch {
  Kernel kernel;
  std::string_view level;
};

const Dispatch& Chosen() {
  static const Dispatch dispatch = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return Dispatch{InnerProductAvx512, "avx512"};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return Dispatch{InnerProductAvx2, "avx2"};
    }
    return Dispatch{InnerProductScalar, "scalar"};
  }();
  return dispatch;
}

// FAISS's HNSW asks its storage for a distance computer; this one uses our kernels.
class FastIpComputer : public faiss::FlatCodesDistanceComputer {
 public:
  explicit FastIpComputer(const faiss::IndexFlat& storage)
      : faiss::FlatCodesDistanceComputer(storage.codes.data(), storage.code_size),
        base_(storage.get_xb()),
        dim_(static_cast<size_t>(storage.d)),
        kernel_(Chosen().kernel) {}

  void set_query(const float* x) override { query_ = x; }
  float distance_to_code(const uint8_t* code) override {
    return kernel_(query_, reinterpret_cast<const float*>(code), dim_);
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    return kernel_(base_ + static_cast<size_t>(i) * dim_, base_ + static_cast<size_t>(j) * dim_,
                   dim_);
  }

 private:
  const float* base_;
  const float* query_ = nullptr;
  size_t dim_;
  Kernel kernel_;
};

struct FastFlatIp : faiss::IndexFlatIP {
  explicit FastFlatIp(size_t dim) : faiss::IndexFlatIP(static_cast<faiss::Index::idx_t>(dim)) {}
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override {
    return new FastIpComputer(*this);
  }
};

}  // namespace

float InnerProduct(const float* a, const float* b, size_t dim) {
  return Chosen().kernel(a, b, dim);
}

void InnerProducts(const float* query, const float* base, size_t dim, size_t n, float* out) {
  const Kernel kernel = Chosen().kernel;
  for (size_t i = 0; i < n; ++i) out[i] = kernel(query, base + i * dim, dim);
}

std::string_view SimdLevel() { return Chosen().level; }

std::unique_ptr<faiss::IndexHNSW> MakeFastHnsw(size_t dim, int m) {
  auto index = std::make_unique<faiss::IndexHNSW>(new FastFlatIp(dim), m);
  index->own_fields = true;
  return index;
}

}  // namespace thrifty::cache::internal
