// StaticEmbedder: mean-pooled static token vectors (WordLlama, model2vec-style tables).
//
// The embedder holds a float32 table of vocab_size x dim token vectors. A text is a list of
// token ids; its vector is the mean of its tokens' rows, L2-normalized. This is WordLlama's
// inference (`WordLlama.load().embed(texts, norm=True)`): a row lookup, average pooling over the
// attention mask, then normalization, with no per-token weights. A text with no tokens becomes
// the zero vector.
//
// Tokenization belongs to the caller: EmbedTokenIds takes ids (the Python glue tokenizes with the
// HF `tokenizers` package, which reads WordLlama's tokenizer json). EmbedBatch, the Embedder
// interface over texts, uses the optional Tokenizer hook given to Create(); without one it
// returns FailedPrecondition.
//
// Unlike WordLlama, which clamps ids into [0, vocab_size), an id outside the table is
// InvalidArgument: it means the tokenizer does not belong to the table.
//
// Thread-safety: immutable after Create(); thread-safe as long as the tokenizer hook is (EmbedBatch
// calls it concurrently from every calling thread).
#ifndef THRIFTY_EMBED_STATIC_EMBEDDER_H_
#define THRIFTY_EMBED_STATIC_EMBEDDER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "thrifty/embed/embedder.h"

namespace thrifty::embed {

class StaticEmbedder final : public Embedder {
 public:
  // Fills `ids` with one id list per text (ids->size() == texts.size() on success).
  using Tokenizer = std::function<absl::Status(std::span<const std::string_view> texts,
                                               std::vector<std::vector<int32_t>>* ids)>;

  // `table` is row-major, vocab_size x dim, finite. `name` describes the model for stats and
  // error messages (e.g. "wordllama(l2_supercat,dim=256)"). InvalidArgument when the table is
  // empty, its size is not vocab_size * dim, or it holds a non-finite value.
  static absl::StatusOr<std::unique_ptr<StaticEmbedder>> Create(std::vector<float> table,
                                                                size_t vocab_size, size_t dim,
                                                                std::string name,
                                                                Tokenizer tokenizer = nullptr);

  size_t dim() const override { return dim_; }
  std::string name() const override { return name_; }
  size_t vocab_size() const { return vocab_size_; }
  bool has_tokenizer() const { return static_cast<bool>(tokenizer_); }

  // Tokenizes with the hook, then embeds as EmbedTokenIds. FailedPrecondition without a hook;
  // the hook's own error otherwise.
  absl::Status EmbedBatch(std::span<const std::string_view> texts,
                          std::span<float> out) const override;

  // Embeds `ids.size()` token-id lists into `out` (size ids.size() * dim()). InvalidArgument
  // for a wrong output size or an id outside [0, vocab_size).
  absl::Status EmbedTokenIds(std::span<const std::span<const int32_t>> ids,
                             std::span<float> out) const;

 private:
  StaticEmbedder(std::vector<float> table, size_t vocab_size, size_t dim, std::string name,
                 Tokenizer tokenizer)
      : table_(std::move(table)),
        vocab_size_(vocab_size),
        dim_(dim),
        name_(std::move(name)),
        tokenizer_(std::move(tokenizer)) {}

  const std::vector<float> table_;  // vocab_size_ x dim_, row-major
  const size_t vocab_size_;
  const size_t dim_;
  const std::string name_;
  const Tokenizer tokenizer_;
};

}  // namespace thrifty::embed

#endif  // THRIFTY_EMBED_STATIC_EMBEDDER_H_
