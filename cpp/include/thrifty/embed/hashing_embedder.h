// HashingEmbedder: a built-in embedder that needs no weights, no model files and no downloads.
//
// A text becomes three groups of features, each feature-hashed with XXH3-64 into a signed dense
// vector (bucket from the low 32 bits, sign from bit 63; one seed per group):
//   * words: maximal runs of ASCII letters and digits and of non-ASCII code points, ASCII
//     lower-cased, with apostrophes dropped ("Don't" -> "dont");
//   * word bigrams: adjacent word pairs;
//   * character n-grams (code points, default 3- and 4-grams) of each word with a space before
//     and after it as boundary markers (" cat " -> " ca", "cat", "at ", " cat", "cat "), which
//     absorb typos and inflections.
// Frequent English function words ("the", "how", "is", ...) weigh `stopword_weight`, as words
// and through their character n-grams; a bigram weighs the geometric mean of its two words.
// Within a group, a feature seen c times with weight w weighs w * sqrt(c) (sublinear tf). Each
// group is scaled to unit norm in feature space and multiplied by its group weight; the sum is
// L2-normalized. The defaults come from a search on one random half of Quora Question Pairs
// (benchmarks/bench_embedders.py repeats it and reports the other half: ROC-AUC 0.747). QQP
// alone would drop the bigrams (+0.001 AUC, noise level); they keep a small weight as the only
// feature that sees word order.
//
// Invariants: the vector depends only on the text's bytes and the options -- not on the process,
// the platform or the batch it is embedded in (XXH3 is specified byte-for-byte; the arithmetic
// uses only +, *, / and sqrt, which IEEE 754 rounds exactly). A text with no word (empty, only
// spaces or punctuation) becomes the zero vector. name() carries the options that shape the
// vectors; golden values in tests/cpp/embed_test.cc pin the feature function itself, since stored
// vectors (Redis, snapshots) are compared across versions and machines.
//
// Thread-safety: immutable after Create(); thread-safe.
#ifndef THRIFTY_EMBED_HASHING_EMBEDDER_H_
#define THRIFTY_EMBED_HASHING_EMBEDDER_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "thrifty/embed/embedder.h"

namespace thrifty::embed {

struct HashingEmbedderOptions {
  size_t dim = 256;  // kMinHashingDim..kMaxHashingDim
  // Group weights (>= 0, not all 0): the share of the vector each group contributes.
  float word_weight = 1.0f;
  float bigram_weight = 0.25f;
  float char_weight = 1.25f;
  // Weight of a frequent English function word, in [0, 1]; 1 treats it as any other word.
  float stopword_weight = 0.25f;
  // Character n-gram lengths in code points, 1 <= char_ngram_min <= char_ngram_max <= 8.
  int char_ngram_min = 3;
  int char_ngram_max = 4;
};

inline constexpr size_t kMinHashingDim = 8;
inline constexpr size_t kMaxHashingDim = 8192;

class HashingEmbedder final : public Embedder {
 public:
  // InvalidArgument when an option is out of range (the message names it and the range).
  static absl::StatusOr<std::unique_ptr<HashingEmbedder>> Create(
      const HashingEmbedderOptions& options = {});

  size_t dim() const override { return options_.dim; }
  // "hashing(dim=256)"; options that differ from the defaults are appended.
  std::string name() const override;
  absl::Status EmbedBatch(std::span<const std::string_view> texts,
                          std::span<float> out) const override;

  const HashingEmbedderOptions& options() const { return options_; }

 private:
  explicit HashingEmbedder(const HashingEmbedderOptions& options) : options_(options) {}

  HashingEmbedderOptions options_;
};

}  // namespace thrifty::embed

#endif  // THRIFTY_EMBED_HASHING_EMBEDDER_H_
