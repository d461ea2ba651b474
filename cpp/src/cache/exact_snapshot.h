// The ExactCache snapshot file: format, crash-safe writer and validating reader. Private to
// cpp/src/cache.
//
// Format version 1; integers little-endian, lengths in bytes.
//
//   header (32 bytes)
//     magic         8 bytes  "THRFTYEC"
//     version       u32      1
//     reserved      u32      0
//     payload_size  u64      bytes after the header
//     checksum      u64      XXH3-64 of the payload
//   payload
//     count         u64
//     count records, least recently used first:
//       ns          u32 length, bytes
//       key         u32 length, bytes
//       kind        u8       0 bytes, 1 UTF-8 text
//       value       u64 length, bytes
//       model       u32 length, bytes
//       usage_json  u32 length, bytes
//       cost_usd    u64      IEEE-754 bits of the double
//       created_at  i64      Unix nanoseconds
//       expires_at  i64      Unix nanoseconds; INT64_MAX: never
//
// Absolute times are written, so a snapshot loaded later (by another process) keeps the
// entries' remaining lifetimes.
//
// Thread-safety: pure functions of their arguments and the file system.
#ifndef THRIFTY_SRC_CACHE_EXACT_SNAPSHOT_H_
#define THRIFTY_SRC_CACHE_EXACT_SNAPSHOT_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "thrifty/cache/exact_cache.h"

namespace thrifty::cache {

inline constexpr std::string_view kSnapshotMagic = "THRFTYEC";  // 8 bytes, no terminator
inline constexpr uint32_t kSnapshotVersion = 1;
inline constexpr size_t kSnapshotHeaderSize = 32;

struct SnapshotRecord {
  std::string ns;
  std::string key;
  std::shared_ptr<const CachedValue> value;
};

// Writes `records` to path + ".tmp.XXXXXX" (created with mode 0600: responses may be private),
// fsyncs it, renames it over `path` and fsyncs the directory. On failure the temporary file is
// removed and `path` is untouched.
absl::Status WriteSnapshot(const std::string& path, const std::vector<SnapshotRecord>& records);

// Reads and validates the whole file; see ExactCache::Load for the error codes.
absl::StatusOr<std::vector<SnapshotRecord>> ReadSnapshot(const std::string& path);

}  // namespace thrifty::cache

#endif  // THRIFTY_SRC_CACHE_EXACT_SNAPSHOT_H_
