// Embedder: turns texts into L2-normalized float vectors for the semantic cache and the router.
//
// Implementations: HashingEmbedder (built in, no weights), StaticEmbedder (mean-pooled static
// token vectors, e.g. WordLlama), and, in the bindings, an embedder that calls a Python function.
//
// Contract: EmbedBatch writes texts.size() * dim() floats, row-major, each row L2-normalized
// (a text with no features becomes the zero vector, which matches nothing). Errors are statuses,
// never exceptions. Implementations state their thread-safety; the built-in ones are immutable
// after construction and thread-safe.
#ifndef THRIFTY_EMBED_EMBEDDER_H_
#define THRIFTY_EMBED_EMBEDDER_H_

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace thrifty::embed {

class Embedder {
 public:
  virtual ~Embedder() = default;

  // Vector dimension; fixed for the embedder's life.
  virtual size_t dim() const = 0;
  // A short description for stats and error messages, e.g. "hashing(dim=256)".
  virtual std::string name() const = 0;
  // Embeds `texts` into `out` (size texts.size() * dim()).
  virtual absl::Status EmbedBatch(std::span<const std::string_view> texts,
                                  std::span<float> out) const = 0;

  absl::Status Embed(std::string_view text, std::span<float> out) const {
    return EmbedBatch(std::span<const std::string_view>(&text, 1), out);
  }
};

}  // namespace thrifty::embed

#endif  // THRIFTY_EMBED_EMBEDDER_H_
