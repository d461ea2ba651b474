#include "exact_snapshot.h"

#include <fcntl.h>     // open
#include <sys/stat.h>  // fstat
#include <unistd.h>    // write, pwrite, read, fsync, close, unlink

#include <array>
#include <cerrno>
#include <cstdio>  // std::rename
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include "thrifty/base/strings.h"
#include "xxhash.h"

namespace thrifty::cache {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// The smallest record: every length zero.
constexpr size_t kMinRecordSize = 4 + 4 + 1 + 8 + 4 + 4 + 8 + 8 + 8;

absl::Status Errno(int err, std::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(err, ToAbsl(StrCat(what, " '", path, "'")));
}

int64_t TimeToNanos(absl::Time t) {
  return t == absl::InfiniteFuture() ? kNever : absl::ToUnixNanos(t);
}

absl::Time NanosToTime(int64_t nanos) {
  return nanos == kNever ? absl::InfiniteFuture() : absl::FromUnixNanos(nanos);
}

void PutU32(char* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

void PutU64(char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

uint64_t GetU64(const char* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

absl::Status WriteAll(int fd, const char* data, size_t size, const std::string& tmp_path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(errno, "cannot write exact-cache snapshot", tmp_path);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Buffers the payload into large writes and hashes it on the way.
class PayloadWriter {
 public:
  PayloadWriter(int fd, const std::string& tmp_path) : fd_(fd), tmp_path_(tmp_path) {
    XXH3_64bits_reset(&hash_state_);
    buffer_.reserve(kBufferSize);
  }

  void U8(uint8_t v) { Bytes(reinterpret_cast<const char*>(&v), 1); }
  void U32(uint32_t v) {
    std::array<char, 4> b;
    PutU32(b.data(), v);
    Bytes(b.data(), b.size());
  }
  void U64(uint64_t v) {
    std::array<char, 8> b;
    PutU64(b.data(), v);
    Bytes(b.data(), b.size());
  }
  void Str32(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    Bytes(s.data(), s.size());
  }
  void Str64(std::string_view s) {
    U64(s.size());
    Bytes(s.data(), s.size());
  }

  void Bytes(const char* data, size_t size) {
    if (!status_.ok() || size == 0) return;
    XXH3_64bits_update(&hash_state_, data, size);
    size_ += size;
    if (buffer_.size() + size > kBufferSize && !Flush().ok()) return;
    if (size >= kBufferSize) {
      if (status_.ok()) status_ = WriteAll(fd_, data, size, tmp_path_);
    } else {
      buffer_.append(data, size);
    }
  }

  // Writes what is buffered; the first error sticks.
  absl::Status Flush() {
    if (status_.ok() && !buffer_.empty()) {
      status_ = WriteAll(fd_, buffer_.data(), buffer_.size(), tmp_path_);
    }
    buffer_.clear();
    return status_;
  }

  uint64_t size() const { return size_; }
  uint64_t checksum() const { return XXH3_64bits_digest(&hash_state_); }

 private:
  static constexpr size_t kBufferSize = 1 << 16;

  const int fd_;
  const std::string& tmp_path_;
  std::string buffer_;
  XXH3_state_t hash_state_;
  uint64_t size_ = 0;
  absl::Status status_;
};

absl::Status CheckLength32(std::string_view field, std::string_view s, const std::string& path) {
  if (s.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(StrCat("cannot save exact-cache snapshot '", path, "': ",
                                             field, " of ", s.size(), " bytes exceeds 4 GiB"));
  }
  return absl::OkStatus();
}

absl::Status WritePayloadAndHeader(int fd, const std::string& path, const std::string& tmp_path,
                                   const std::vector<SnapshotRecord>& records) {
  std::array<char, kSnapshotHeaderSize> header{};
  if (absl::Status s = WriteAll(fd, header.data(), header.size(), tmp_path); !s.ok()) return s;

  PayloadWriter out(fd, tmp_path);
  out.U64(records.size());
  for (const SnapshotRecord& record : records) {
    const CachedValue& v = *record.value;
    for (auto [field, text] :
         {std::pair<std::string_view, std::string_view>{"namespace", record.ns},
          {"key", record.key},
          {"model", v.metadata.model},
          {"usage", v.metadata.usage_json}}) {
      if (absl::Status s = CheckLength32(field, text, path); !s.ok()) return s;
    }
    out.Str32(record.ns);
    out.Str32(record.key);
    out.U8(static_cast<uint8_t>(v.kind));
    out.Str64(v.value);
    out.Str32(v.metadata.model);
    out.Str32(v.metadata.usage_json);
    uint64_t cost_bits = 0;
    static_assert(sizeof(cost_bits) == sizeof(v.metadata.cost_usd));
    std::memcpy(&cost_bits, &v.metadata.cost_usd, sizeof(cost_bits));
    out.U64(cost_bits);
    out.U64(static_cast<uint64_t>(TimeToNanos(v.created_at)));
    out.U64(static_cast<uint64_t>(TimeToNanos(v.expires_at)));
  }
  if (absl::Status s = out.Flush(); !s.ok()) return s;

  std::memcpy(header.data(), kSnapshotMagic.data(), kSnapshotMagic.size());
  PutU32(header.data() + 8, kSnapshotVersion);
  PutU32(header.data() + 12, 0);
  PutU64(header.data() + 16, out.size());
  PutU64(header.data() + 24, out.checksum());
  size_t done = 0;
  while (done < header.size()) {
    const ssize_t n =
        ::pwrite(fd, header.data() + done, header.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(errno, "cannot write exact-cache snapshot header", tmp_path);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return Errno(errno, "cannot fsync exact-cache snapshot", tmp_path);
  return absl::OkStatus();
}

// Makes the rename durable. Best effort: some file systems refuse fsync on a directory.
void SyncDirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Bounds-checked little-endian reader over the payload.
class PayloadReader {
 public:
  explicit PayloadReader(std::string_view data) : data_(data) {}

  bool U8(uint8_t* v) {
    if (data_.size() < 1) return false;
    *v = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }
  bool U32(uint32_t* v) {
    if (data_.size() < 4) return false;
    *v = GetU32(data_.data());
    data_.remove_prefix(4);
    return true;
  }
  bool U64(uint64_t* v) {
    if (data_.size() < 8) return false;
    *v = GetU64(data_.data());
    data_.remove_prefix(8);
    return true;
  }
  bool Str32(std::string* s) {
    uint32_t n = 0;
    return U32(&n) && Take(n, s);
  }
  bool Str64(std::string* s) {
    uint64_t n = 0;
    return U64(&n) && Take(n, s);
  }
  size_t remaining() const { return data_.size(); }

 private:
  bool Take(uint64_t n, std::string* s) {
    if (data_.size() < n) return false;
    s->assign(data_.data(), static_cast<size_t>(n));
    data_.remove_prefix(static_cast<size_t>(n));
    return true;
  }

  std::string_view data_;
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(errno, "cannot open exact-cache snapshot", path);
  std::string data;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) data.reserve(static_cast<size_t>(st.st_size));
  std::vector<char> chunk(1 << 16);
  while (true) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Errno(err, "cannot read exact-cache snapshot", path);
    }
    if (n == 0) break;
    data.append(chunk.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

}  // namespace

absl::Status WriteSnapshot(const std::string& path, const std::vector<SnapshotRecord>& records) {
  std::string tmp_path = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp_path.data(), O_CLOEXEC);
  if (fd < 0) return Errno(errno, "cannot create a temporary file for exact-cache snapshot", path);

  absl::Status status = WritePayloadAndHeader(fd, path, tmp_path, records);
  if (::close(fd) != 0 && status.ok()) {
    status = Errno(errno, "cannot close exact-cache snapshot", tmp_path);
  }
  if (status.ok() && std::rename(tmp_path.c_str(), path.c_str()) != 0) {
    status = Errno(errno, StrCat("cannot rename '", tmp_path, "' over exact-cache snapshot"), path);
  }
  if (!status.ok()) {
    ::unlink(tmp_path.c_str());
    return status;
  }
  SyncDirectoryOf(path);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SnapshotRecord>> ReadSnapshot(const std::string& path) {
  absl::StatusOr<std::string> file = ReadFile(path);
  if (!file.ok()) return file.status();
  const std::string_view data = *file;
  const std::string where = StrCat("exact-cache snapshot '", path, "'");

  if (data.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
    return absl::InvalidArgumentError(
        StrCat(path, " is not an exact-cache snapshot (its first bytes are not \"THRFTYEC\")"));
  }
  if (data.size() < kSnapshotHeaderSize) {
    return absl::DataLossError(StrCat(where, " is truncated: ", data.size(),
                                      " bytes, shorter than the ", kSnapshotHeaderSize,
                                      "-byte header"));
  }
  const uint32_t version = GetU32(data.data() + 8);
  if (version != kSnapshotVersion) {
    return absl::InvalidArgumentError(StrCat(where, " has format version ", version,
                                             "; this build reads version ", kSnapshotVersion));
  }
  const uint64_t payload_size = GetU64(data.data() + 16);
  const uint64_t checksum = GetU64(data.data() + 24);
  const std::string_view payload = data.substr(kSnapshotHeaderSize);
  if (payload.size() != payload_size) {
    return absl::DataLossError(StrCat(where, " is truncated or padded: the header says ",
                                      payload_size, " payload bytes, the file holds ",
                                      payload.size()));
  }
  if (XXH3_64bits(payload.data(), payload.size()) != checksum) {
    return absl::DataLossError(StrCat(where, " is corrupt: checksum mismatch"));
  }

  PayloadReader in(payload);
  uint64_t count = 0;
  if (!in.U64(&count) || count > in.remaining() / kMinRecordSize) {
    return absl::DataLossError(StrCat(where, " is corrupt: bad record count ", count));
  }
  std::vector<SnapshotRecord> records;
  records.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    SnapshotRecord record;
    auto value = std::make_shared<CachedValue>();
    uint8_t kind = 0;
    uint64_t cost_bits = 0, created = 0, expires = 0;
    if (!in.Str32(&record.ns) || !in.Str32(&record.key) || !in.U8(&kind) ||
        !in.Str64(&value->value) || !in.Str32(&value->metadata.model) ||
        !in.Str32(&value->metadata.usage_json) || !in.U64(&cost_bits) || !in.U64(&created) ||
        !in.U64(&expires)) {
      return absl::DataLossError(
          StrCat(where, " is corrupt: record ", i, " runs past the end of the payload"));
    }
    if (kind > static_cast<uint8_t>(ValueKind::kText)) {
      return absl::DataLossError(StrCat(where, " is corrupt: record ", i,
                                        " has unknown value kind ", static_cast<int>(kind)));
    }
    value->kind = static_cast<ValueKind>(kind);
    std::memcpy(&value->metadata.cost_usd, &cost_bits, sizeof(cost_bits));
    value->created_at = NanosToTime(static_cast<int64_t>(created));
    value->expires_at = NanosToTime(static_cast<int64_t>(expires));
    record.value = std::move(value);
    records.push_back(std::move(record));
  }
  if (in.remaining() != 0) {
    return absl::DataLossError(
        StrCat(where, " is corrupt: ", in.remaining(), " bytes after the last record"));
  }
  return records;
}

}  // namespace thrifty::cache
