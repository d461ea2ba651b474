#include "thrifty/embed/static_embedder.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"

namespace thrifty::embed {

absl::StatusOr<std::unique_ptr<StaticEmbedder>> StaticEmbedder::Create(std::vector<float> table,
                                                                       size_t vocab_size,
                                                                       size_t dim, std::string name,
                                                                       Tokenizer tokenizer) {
  if (vocab_size == 0 || dim == 0) {
    return absl::InvalidArgumentError(StrCat("StaticEmbedder '", name,
                                             "': the table must have at least one row and one "
                                             "column, got ",
                                             vocab_size, " x ", dim));
  }
  if (table.size() / dim != vocab_size || table.size() % dim != 0) {
    return absl::InvalidArgumentError(StrCat("StaticEmbedder '", name, "': the table holds ",
                                             table.size(), " floats, expected ", vocab_size, " x ",
                                             dim, " = ", vocab_size * dim));
  }
  const auto bad =
      std::find_if(table.begin(), table.end(), [](float v) { return !std::isfinite(v); });
  if (bad != table.end()) {
    const size_t index = static_cast<size_t>(bad - table.begin());
    return absl::InvalidArgumentError(StrCat("StaticEmbedder '", name,
                                             "': the table holds a non-finite value at row ",
                                             index / dim, ", column ", index % dim));
  }
  return std::unique_ptr<StaticEmbedder>(
      new StaticEmbedder(std::move(table), vocab_size, dim, std::move(name), std::move(tokenizer)));
}

absl::Status StaticEmbedder::EmbedBatch(std::span<const std::string_view> texts,
                                        std::span<float> out) const {
  if (!tokenizer_) {
    return absl::FailedPreconditionError(
        StrCat("StaticEmbedder '", name_,
               "' has no tokenizer: pass token ids to EmbedTokenIds, or create it with a "
               "Tokenizer to embed texts"));
  }
  std::vector<std::vector<int32_t>> ids;
  THRIFTY_RETURN_IF_ERROR(tokenizer_(texts, &ids));
  if (ids.size() != texts.size()) {
    return absl::InternalError(StrCat("StaticEmbedder '", name_, "': the tokenizer returned ",
                                      ids.size(), " id lists for ", texts.size(), " texts"));
  }
  std::vector<std::span<const int32_t>> spans(ids.begin(), ids.end());
  return EmbedTokenIds(spans, out);
}

absl::Status StaticEmbedder::EmbedTokenIds(std::span<const std::span<const int32_t>> ids,
                                           std::span<float> out) const {
  if (out.size() != ids.size() * dim_) {
    return absl::InvalidArgumentError(StrCat("StaticEmbedder '", name_, "': output holds ",
                                             out.size(), " floats, expected ", ids.size(),
                                             " texts x ", dim_, " = ", ids.size() * dim_));
  }
  // Validate every id first, so a failed call leaves no half-written rows behind.
  for (size_t t = 0; t < ids.size(); ++t) {
    for (size_t i = 0; i < ids[t].size(); ++i) {
      const int32_t id = ids[t][i];
      if (id < 0 || static_cast<size_t>(id) >= vocab_size_) {
        return absl::InvalidArgumentError(StrCat("StaticEmbedder '", name_, "': token id ", id,
                                                 " (text ", t, ", position ", i,
                                                 ") is outside the vocabulary [0, ", vocab_size_,
                                                 "); does the tokenizer belong to "
                                                 "this table?"));
      }
    }
  }
  for (size_t t = 0; t < ids.size(); ++t) {
    const std::span<float> row = out.subspan(t * dim_, dim_);
    std::fill(row.begin(), row.end(), 0.0f);
    // Mean pooling then normalization; the division by the token count cancels in the
    // normalization, so the sum is normalized directly.
    for (const int32_t id : ids[t]) {
      const float* vec = table_.data() + static_cast<size_t>(id) * dim_;
      for (size_t d = 0; d < dim_; ++d) row[d] += vec[d];
    }
    float norm2 = 0.0f;
    for (const float v : row) norm2 += v * v;
    if (norm2 > 0.0f) {
      const float inv = 1.0f / std::sqrt(norm2);
      for (float& v : row) v *= inv;
    }
  }
  return absl::OkStatus();
}

}  // namespace thrifty::embed
