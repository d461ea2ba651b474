// Little-endian byte encoding for the router file (internal to the route area).
#ifndef THRIFTY_SRC_ROUTE_BYTES_H_
#define THRIFTY_SRC_ROUTE_BYTES_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "thrifty/base/strings.h"

namespace thrifty::route::internal {

inline void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
inline void PutF64(std::string& out, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  PutU64(out, bits);
}
inline void PutStr(std::string& out, std::string_view s) {
  PutU64(out, s.size());
  out.append(s);
}
template <typename T>
void PutVec(std::string& out, const std::vector<T>& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  PutU64(out, v.size());
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

inline absl::Status Truncated(std::string_view what) {
  return absl::DataLossError(
      ToAbsl(StrCat("router file is truncated or corrupt: cannot read ", what)));
}

inline absl::Status GetU64(std::string_view& in, uint64_t& v, std::string_view what) {
  v = 0;
  if (in.size() < 8) return Truncated(what);
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(8);
  return absl::OkStatus();
}
inline absl::Status GetF64(std::string_view& in, double& v, std::string_view what) {
  uint64_t bits = 0;
  if (absl::Status s = GetU64(in, bits, what); !s.ok()) return s;
  std::memcpy(&v, &bits, 8);
  return absl::OkStatus();
}
inline absl::Status GetStr(std::string_view& in, std::string& s, std::string_view what) {
  uint64_t n = 0;
  if (absl::Status st = GetU64(in, n, what); !st.ok()) return st;
  if (in.size() < n) return Truncated(what);
  s.assign(in.substr(0, n));
  in.remove_prefix(n);
  return absl::OkStatus();
}
template <typename T>
absl::Status GetVec(std::string_view& in, std::vector<T>& v, std::string_view what) {
  uint64_t n = 0;
  if (absl::Status st = GetU64(in, n, what); !st.ok()) return st;
  if (n > in.size() / sizeof(T)) return Truncated(what);
  v.resize(n);
  std::memcpy(v.data(), in.data(), n * sizeof(T));
  in.remove_prefix(n * sizeof(T));
  return absl::OkStatus();
}

}  // namespace thrifty::route::internal

#endif  // THRIFTY_SRC_ROUTE_BYTES_H_
