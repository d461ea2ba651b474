// Fixed-size values in and out of byte strings, in the machine's byte order (the cache's
// snapshot and Redis record formats are little-endian; so is every supported target).
// Internal to the cache area.
#ifndef THRIFTY_CACHE_RAW_BYTES_H_
#define THRIFTY_CACHE_RAW_BYTES_H_

#include <cstring>
#include <string>
#include <type_traits>

namespace thrifty::cache::internal {

template <typename T>
void AppendRaw(std::string& out, T value) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

// Reads a T from `p`, which must hold sizeof(T) bytes.
template <typename T>
T ReadRaw(const char* p) {
  static_assert(std::is_trivially_copyable_v<T>);
  T value;
  std::memcpy(&value, p, sizeof(value));
  return value;
}

}  // namespace thrifty::cache::internal

#endif  // THRIFTY_CACHE_RAW_BYTES_H_
