#include "thrifty/replay/line_reader.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "thrifty/base/strings.h"

namespace thrifty::replay {

absl::StatusOr<std::unique_ptr<LineReader>> LineReader::Open(const std::string& path,
                                                             size_t buffer_bytes) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int err = errno;
    std::string message = StrCat(path, ": cannot open trace: ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::InvalidArgumentError(message);
  }
  struct stat st {};
  int64_t size = 0;
  if (fstat(fileno(file), &st) == 0) size = static_cast<int64_t>(st.st_size);
  if (S_ISDIR(st.st_mode)) {
    std::fclose(file);
    return absl::InvalidArgumentError(StrCat(path, ": is a directory, not a trace file"));
  }
  return std::unique_ptr<LineReader>(
      new LineReader(path, file, buffer_bytes < 4096 ? 4096 : buffer_bytes, size));
}

LineReader::LineReader(std::string path, std::FILE* file, size_t buffer_bytes, int64_t file_size)
    : path_(std::move(path)), file_(file), buffer_(buffer_bytes), file_size_(file_size) {}

LineReader::~LineReader() {
  if (file_ != nullptr) std::fclose(file_);
}

bool LineReader::Fill() {
  if (eof_) return false;
  if (begin_ > 0) {  // keep the unread tail at the front
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);  // a line longer than the buffer
  const size_t n = std::fread(buffer_.data() + end_, 1, buffer_.size() - end_, file_);
  end_ += n;
  if (n == 0) eof_ = true;
  return n > 0;
}

absl::StatusOr<bool> LineReader::Next(std::string& line) {
  size_t scan = begin_;
  while (true) {
    const void* nl = std::memchr(buffer_.data() + scan, '\n', end_ - scan);
    if (nl != nullptr) {
      const size_t pos = static_cast<const char*>(nl) - buffer_.data();
      size_t len = pos - begin_;
      if (len > 0 && buffer_[pos - 1] == '\r') --len;
      line.assign(buffer_.data() + begin_, len);
      bytes_consumed_ += static_cast<int64_t>(pos + 1 - begin_);
      begin_ = pos + 1;
      ++line_number_;
      return true;
    }
    const size_t scanned = end_ - begin_;
    if (!Fill()) {
      if (std::ferror(file_)) {
        return absl::DataLossError(StrCat(path_, ": read error after line ", line_number_));
      }
      if (end_ > begin_) {  // last line without a newline
        line.assign(buffer_.data() + begin_, end_ - begin_);
        bytes_consumed_ += static_cast<int64_t>(end_ - begin_);
        begin_ = end_;
        ++line_number_;
        return true;
      }
      return false;
    }
    scan = begin_ + scanned;
  }
}

}  // namespace thrifty::replay
