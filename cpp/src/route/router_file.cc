// Router::Save / Router::Load: the router file (format in docs/router.md).
#include <cstdio>  // std::rename, std::remove
#include <fstream>
#include <iterator>
#include <sstream>

#include "bytes.h"
#include "thrifty/base/strings.h"
#include "thrifty/route/router.h"
#include "xxhash.h"

namespace thrifty::route {
namespace {

using internal::GetF64;
using internal::GetStr;
using internal::GetU64;
using internal::PutF64;
using internal::PutStr;
using internal::PutU64;

constexpr std::string_view kMagic = "THRFTYRT";
constexpr uint64_t kVersion = 1;
constexpr size_t kHeaderSize = 8 + 8 + 8 + 8;  // magic, version, payload size, checksum

}  // namespace

absl::Status Router::Save(const std::string& path) const {
  std::string payload;
  {
    ReaderMutexLock lock(&mu_);
    PutStr(payload, predictor_->kind());
    PutStr(payload, embedder_->name());
    PutU64(payload, embedder_->dim());
    PutU64(payload, catalog_.size());
    for (const auto& spec : catalog_.models()) PutStr(payload, spec.name);
    PutU64(payload, static_cast<uint64_t>(options_.threshold.kind));
    PutF64(payload, options_.threshold.value);
    PutU64(payload, options_.include_deprecated ? 1 : 0);
    PutU64(payload, static_cast<uint64_t>(options_.features.long_context_tokens));
    PutU64(payload, options_.features.embed_head_chars);
    PutU64(payload, options_.features.embed_tail_chars);
    predictor_->Save(payload);
  }
  std::string header(kMagic);
  PutU64(header, kVersion);
  PutU64(header, payload.size());
  PutU64(header, XXH3_64bits(payload.data(), payload.size()));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::PermissionDeniedError(
          ToAbsl(StrCat("cannot write router file '", tmp, "' (check the directory exists)")));
    }
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::DataLossError(ToAbsl(StrCat("cannot write router file '", tmp, "'")));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::PermissionDeniedError(ToAbsl(StrCat("cannot rename '", tmp, "' to '", path, "'")));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Router>> Router::Load(
    const std::string& path, catalog::Catalog catalog,
    std::shared_ptr<const embed::Embedder> embedder) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(ToAbsl(StrCat("cannot open router file '", path, "'")));
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  auto corrupt = [&](std::string_view what) {
    return absl::DataLossError(ToAbsl(StrCat("'", path, "' ", what)));
  };
  if (bytes.size() < kHeaderSize || std::string_view(bytes).substr(0, 8) != kMagic) {
    return corrupt("is not a thrifty router file (written by Router.save)");
  }
  std::string_view in(bytes);
  in.remove_prefix(8);
  uint64_t version = 0, size = 0, checksum = 0;
  (void)GetU64(in, version, "header");
  (void)GetU64(in, size, "header");
  (void)GetU64(in, checksum, "header");
  if (version != kVersion) {
    return corrupt(StrCat("has format version ", version, "; this thrifty reads version ", kVersion,
                          " (re-fit and save with this version)"));
  }
  if (in.size() != size) {
    return corrupt(
        StrCat("is truncated or corrupt: header says ", size, " payload bytes, found ", in.size()));
  }
  if (XXH3_64bits(in.data(), in.size()) != checksum) {
    return corrupt("is corrupt: checksum mismatch");
  }
  std::string kind, embedder_name;
  uint64_t dim = 0, m = 0;
  for (auto s : {GetStr(in, kind, "predictor kind"), GetStr(in, embedder_name, "embedder name"),
                 GetU64(in, dim, "dim"), GetU64(in, m, "model count")}) {
    if (!s.ok()) return s;
  }
  if (embedder == nullptr)
    return absl::InvalidArgumentError("Router.load: an embedder is required");
  if (embedder_name != embedder->name() || dim != embedder->dim()) {
    return absl::InvalidArgumentError(ToAbsl(
        StrCat("'", path, "' was saved with embedder '", embedder_name, "' (", dim,
               "-d); loading it with '", embedder->name(), "' (", embedder->dim(),
               "-d) would compare incompatible vectors; pass the same embedder to Router.load")));
  }
  if (m > (1u << 20)) return corrupt("is corrupt: bad model count");
  std::vector<std::string> names(m);
  for (auto& name : names) {
    if (auto s = GetStr(in, name, "model names"); !s.ok()) return s;
  }
  std::vector<std::string> have;
  for (const auto& spec : catalog.models()) have.push_back(spec.name);
  if (names != have) {
    std::string diff;
    for (const auto& n : names) {
      if (std::find(have.begin(), have.end(), n) == have.end()) StrAppend(&diff, " -", n);
    }
    for (const auto& n : have) {
      if (std::find(names.begin(), names.end(), n) == names.end()) StrAppend(&diff, " +", n);
    }
    if (diff.empty()) diff = " (same names, different order)";
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("'", path, "' was saved for a catalog of ", names.size(),
                      " models that differs from the one given (", have.size(), " models):", diff,
                      "; load it with the catalog it was saved with")));
  }
  RouterOptions options;
  uint64_t threshold_kind = 0, include_deprecated = 0, long_context = 0, head = 0, tail = 0;
  for (auto s :
       {GetU64(in, threshold_kind, "options"), GetF64(in, options.threshold.value, "options"),
        GetU64(in, include_deprecated, "options"), GetU64(in, long_context, "options"),
        GetU64(in, head, "options"), GetU64(in, tail, "options")}) {
    if (!s.ok()) return s;
  }
  if (threshold_kind > 1) return corrupt("is corrupt: bad threshold kind");
  options.threshold.kind = static_cast<Threshold::Kind>(threshold_kind);
  options.include_deprecated = include_deprecated != 0;
  options.features.long_context_tokens = static_cast<int64_t>(long_context);
  options.features.embed_head_chars = head;
  options.features.embed_tail_chars = tail;
  PredictorConfig config;
  config.kind = kind;
  absl::StatusOr<std::unique_ptr<QualityPredictor>> predictor =
      MakePredictor(config, catalog, embedder->dim());
  if (!predictor.ok()) return corrupt(StrCat("names an unknown predictor '", kind, "'"));
  if (absl::Status s = (*predictor)->Load(in); !s.ok()) return s;
  if (!in.empty()) return corrupt("is corrupt: trailing bytes after the predictor");
  return Create(std::move(catalog), std::move(embedder), *std::move(predictor), options);
}

}  // namespace thrifty::route
