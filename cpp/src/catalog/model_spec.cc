#include "thrifty/catalog/model_spec.h"

#include <cmath>

#include "thrifty/base/strings.h"

namespace thrifty::catalog {
namespace {

absl::Status CheckPrice(const ModelSpec& spec, std::string_view field, double value) {
  if (!std::isfinite(value) || value < 0.0) {
    return absl::InvalidArgumentError(
        StrCat("model '", spec.name, "': ", field,
               " must be a finite number >= 0 (USD per million tokens), got ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckOptionalPrice(const ModelSpec& spec, std::string_view field,
                                const std::optional<double>& value) {
  return value.has_value() ? CheckPrice(spec, field, *value) : absl::OkStatus();
}

absl::Status CheckPositive(const ModelSpec& spec, std::string_view field,
                           const std::optional<int64_t>& value) {
  if (value.has_value() && *value <= 0) {
    return absl::InvalidArgumentError(
        StrCat("model '", spec.name, "': ", field, " must be a positive integer, got ", *value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateModelSpec(const ModelSpec& spec) {
  if (spec.name.empty()) {
    return absl::InvalidArgumentError("model name must be a non-empty string");
  }
  if (spec.provider.empty()) {
    return absl::InvalidArgumentError(
        StrCat("model '", spec.name, "': provider must be a non-empty string (e.g. 'openai')"));
  }
  for (const auto& status :
       {CheckPrice(spec, "input_per_mtok", spec.input_per_mtok),
        CheckPrice(spec, "output_per_mtok", spec.output_per_mtok),
        CheckOptionalPrice(spec, "cached_input_per_mtok", spec.cached_input_per_mtok),
        CheckOptionalPrice(spec, "cache_write_5m_per_mtok", spec.cache_write_5m_per_mtok),
        CheckOptionalPrice(spec, "cache_write_1h_per_mtok", spec.cache_write_1h_per_mtok),
        CheckPositive(spec, "context_window", spec.context_window),
        CheckPositive(spec, "max_output_tokens", spec.max_output_tokens)}) {
    if (!status.ok()) return status;
  }
  if (spec.context_window && spec.max_output_tokens &&
      *spec.max_output_tokens > *spec.context_window) {
    return absl::InvalidArgumentError(StrCat("model '", spec.name, "': max_output_tokens (",
                                             *spec.max_output_tokens, ") exceeds context_window (",
                                             *spec.context_window, ")"));
  }
  for (const auto& [category, prior] : spec.quality) {
    if (category.empty()) {
      return absl::InvalidArgumentError(
          StrCat("model '", spec.name, "': quality has an empty category name"));
    }
    if (!std::isfinite(prior) || prior < 0.0 || prior > 1.0) {
      return absl::InvalidArgumentError(StrCat("model '", spec.name, "': quality['", category,
                                               "'] must be in [0, 1], got ", prior));
    }
  }
  for (const auto& alias : spec.aliases) {
    if (alias.empty()) {
      return absl::InvalidArgumentError(
          StrCat("model '", spec.name, "': aliases must be non-empty strings"));
    }
  }
  return absl::OkStatus();
}

}  // namespace thrifty::catalog
