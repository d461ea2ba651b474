#include "thrifty/request/request_key.h"

#include <algorithm>

#include "canonical_view.h"
#include "nlohmann/json.hpp"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"
#include "thrifty/request/canonical_json.h"
#include "xxhash.h"

namespace thrifty::request {
namespace {

using nlohmann::json;

constexpr std::string_view kKeyHeader = "thrifty.request.v1";

absl::Status AppendCanonicalRequest(const json& request, std::string& out) {
  return internal::AppendCanonicalRequest<internal::NlohmannView>(&request, out);
}

}  // namespace

std::string Key128::ToHex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = kHex[(high >> (4 * i)) & 0xF];
    out[31 - i] = kHex[(low >> (4 * i)) & 0xF];
  }
  return out;
}

Key128 HashBytes(std::string_view bytes) {
  const XXH128_hash_t hash = XXH3_128bits(bytes.data(), bytes.size());
  return Key128{hash.high64, hash.low64};
}

absl::StatusOr<std::string> CanonicalRequest(const json& request) {
  std::string out;
  THRIFTY_RETURN_IF_ERROR(AppendCanonicalRequest(request, out));
  return out;
}

absl::StatusOr<Key128> RequestKey(const json& request, std::string_view ns) {
  // One buffer per thread: keys are computed on every call, so skip the allocation.
  thread_local std::string buffer;
  buffer.clear();
  // Header and length-prefixed namespace, so no namespace can collide with another's prefix.
  StrAppend(&buffer, kKeyHeader, "\n", ns.size(), ":", ns, "\n");
  THRIFTY_RETURN_IF_ERROR(AppendCanonicalRequest(request, buffer));
  return HashBytes(buffer);
}

}  // namespace thrifty::request
