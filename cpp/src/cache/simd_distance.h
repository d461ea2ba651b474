// The cache area's names for the shared SIMD kernels (cpp/src/base/simd.h).
#ifndef THRIFTY_CACHE_SIMD_DISTANCE_H_
#define THRIFTY_CACHE_SIMD_DISTANCE_H_

#include "../base/simd.h"

namespace thrifty::cache::internal {

using simd::CodeDot;
using simd::CodeDots;
using simd::InnerProduct;
using simd::InnerProducts;
using simd::InnerProductsGather;
using simd::SimdLevel;
using simd::WeightedCodeSum;
using simd::WeightedCodeSums;

}  // namespace thrifty::cache::internal

#endif  // THRIFTY_CACHE_SIMD_DISTANCE_H_
