// Sq8Quantizer: 8-bit scalar quantization of L2-normalized vectors, one range per dimension.
// Internal to the cache area.
//
// A code stores round((x[i] - min[i]) / step[i]) clamped to [0, 255], so a component inside
// [min, min + 255 * step] decodes within step / 2 of its value and one outside decodes to the
// nearer end. The HNSW walk reads these 1-byte-per-dimension codes instead of float32 vectors:
// a quarter of the memory traffic. The inner product with a float query needs no decoding:
//   <q, decode(c)> = sum_i q[i] * min[i] + sum_i (q[i] * step[i]) * c[i]
//                  = bias + WeightedCodeSum(weights, c).
//
// Invariants: min_, step_ and inverse_step_ have dim entries; step_[i] > 0.
// Thread-safety: immutable after construction; const methods are safe from any thread.
#ifndef THRIFTY_CACHE_SQ8_QUANTIZER_H_
#define THRIFTY_CACHE_SQ8_QUANTIZER_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace thrifty::cache::internal {

class Sq8Quantizer {
 public:
  // Every dimension spans [-1, 1], which holds any component of a unit vector.
  explicit Sq8Quantizer(size_t dim);
  // Ranges from up to `max_sample` evenly spaced rows of `vectors` (n rows of dim floats),
  // widened by a tenth on each side for vectors added later. Fewer than kMinTrainingRows rows
  // give the [-1, 1] quantizer.
  static Sq8Quantizer Train(const float* vectors, size_t n, size_t dim, size_t max_sample = 65536);
  static constexpr size_t kMinTrainingRows = 256;

  size_t dim() const { return min_.size(); }
  void Encode(const float* vector, uint8_t* code) const;
  void Decode(const uint8_t* code, float* vector) const;
  // Writes dim() weights for WeightedCodeSum and returns the bias (see the header comment).
  float PrepareQuery(const float* query, float* weights) const;
  // The same in integers, for CodeDot: writes dim() 16-bit weights, scaled so that the largest
  // is as large as an int32 sum over dim() codes allows (within 1/20000 of the largest float
  // weight at dim 256; the codes' own rounding is 1/510 of the range), and returns the bias;
  // <query, decode(c)> ~= bias + *unit * CodeDot(weights, c). *unit > 0 (ranking by CodeDot is
  // ranking by similarity), or 0 for a zero query.
  float PrepareQueryInt16(const float* query, int16_t* weights, float* unit) const;
  // The largest |x[i] - decode(encode(x))[i]| for a component inside its range.
  float MaxInRangeError() const;

 private:
  Sq8Quantizer(std::vector<float> min, std::vector<float> step);

  std::vector<float> min_;
  std::vector<float> step_;
  std::vector<float> inverse_step_;
};

}  // namespace thrifty::cache::internal

#endif  // THRIFTY_CACHE_SQ8_QUANTIZER_H_
