#include "sq8_quantizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace thrifty::cache::internal {
namespace {

constexpr float kLevels = 255.0f;
constexpr float kMinSpan = 1e-6f;  // a constant dimension still gets a positive step

}  // namespace

Sq8Quantizer::Sq8Quantizer(size_t dim)
    : Sq8Quantizer(std::vector<float>(dim, -1.0f), std::vector<float>(dim, 2.0f / kLevels)) {}

Sq8Quantizer::Sq8Quantizer(std::vector<float> min, std::vector<float> step)
    : min_(std::move(min)), step_(std::move(step)), inverse_step_(step_.size()) {
  for (size_t i = 0; i < step_.size(); ++i) inverse_step_[i] = 1.0f / step_[i];
}

Sq8Quantizer Sq8Quantizer::Train(const float* vectors, size_t n, size_t dim, size_t max_sample) {
  if (n < kMinTrainingRows) return Sq8Quantizer(dim);
  std::vector<float> low(dim, std::numeric_limits<float>::infinity());
  std::vector<float> high(dim, -std::numeric_limits<float>::infinity());
  const size_t stride = std::max<size_t>(1, n / std::max<size_t>(1, max_sample));
  for (size_t row = 0; row < n; row += stride) {
    const float* v = vectors + row * dim;
    for (size_t i = 0; i < dim; ++i) {
      low[i] = std::min(low[i], v[i]);
      high[i] = std::max(high[i], v[i]);
    }
  }
  std::vector<float> step(dim);
  for (size_t i = 0; i < dim; ++i) {
    const float margin = 0.1f * (high[i] - low[i]);
    low[i] = std::max(-1.0f, low[i] - margin);
    high[i] = std::min(1.0f, high[i] + margin);
    step[i] = std::max(high[i] - low[i], kMinSpan) / kLevels;
  }
  return Sq8Quantizer(std::move(low), std::move(step));
}

void Sq8Quantizer::Encode(const float* vector, uint8_t* code) const {
  for (size_t i = 0; i < min_.size(); ++i) {
    // Clamped to [0, 255] first, so adding a half and truncating rounds to nearest (and the
    // loop vectorizes, unlike a libm rounding call per component).
    const float level = std::clamp((vector[i] - min_[i]) * inverse_step_[i], 0.0f, kLevels);
    code[i] = static_cast<uint8_t>(level + 0.5f);
  }
}

void Sq8Quantizer::Decode(const uint8_t* code, float* vector) const {
  for (size_t i = 0; i < min_.size(); ++i) vector[i] = min_[i] + step_[i] * code[i];
}

float Sq8Quantizer::PrepareQuery(const float* query, float* weights) const {
  float bias = 0.0f;
  for (size_t i = 0; i < min_.size(); ++i) {
    weights[i] = query[i] * step_[i];
    bias += query[i] * min_[i];
  }
  return bias;
}

float Sq8Quantizer::PrepareQueryInt16(const float* query, int16_t* weights, float* unit) const {
  const size_t dim = min_.size();
  float bias = 0.0f;
  float largest = 0.0f;
  for (size_t i = 0; i < dim; ++i) {
    bias += query[i] * min_[i];
    largest = std::max(largest, std::abs(query[i] * step_[i]));
  }
  // |sum| <= dim * 255 * limit < 2^31.
  const double limit =
      std::min(32767.0, std::floor(2147483647.0 / (kLevels * std::max<size_t>(dim, 1))));
  const float scale = largest > 0.0f ? static_cast<float>(limit / largest) : 0.0f;
  for (size_t i = 0; i < dim; ++i) {
    // Round half away from zero, in a loop the compiler vectorizes (unlike a libm call).
    const float w = query[i] * step_[i] * scale;
    weights[i] = static_cast<int16_t>(w + std::copysign(0.5f, w));
  }
  *unit = scale > 0.0f ? 1.0f / scale : 0.0f;
  return bias;
}

float Sq8Quantizer::MaxInRangeError() const {
  return 0.5f * *std::max_element(step_.begin(), step_.end());
}

}  // namespace thrifty::cache::internal
