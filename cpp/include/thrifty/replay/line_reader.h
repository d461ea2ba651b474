// LineReader: streams a text file line by line through a fixed-size buffer, so a trace of any
// length is read in bounded memory (the buffer plus the longest line).
//
// Thread-safety: thread-compatible (one reader per thread).
#ifndef THRIFTY_REPLAY_LINE_READER_H_
#define THRIFTY_REPLAY_LINE_READER_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace thrifty::replay {

class LineReader {
 public:
  // NotFound / PermissionDenied naming the path when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<LineReader>> Open(const std::string& path,
                                                          size_t buffer_bytes = 1 << 20);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its "\n" (and "\r\n"); false at the end of the file. Errors (a read
  // failure) are returned as a status.
  absl::StatusOr<bool> Next(std::string& line);

  int64_t line_number() const { return line_number_; }  // 1-based number of the last line
  int64_t bytes_read() const { return bytes_consumed_; }
  int64_t file_size() const { return file_size_; }
  const std::string& path() const { return path_; }

 private:
  LineReader(std::string path, std::FILE* file, size_t buffer_bytes, int64_t file_size);
  bool Fill();

  std::string path_;
  std::FILE* file_;
  std::vector<char> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  int64_t line_number_ = 0;
  int64_t bytes_consumed_ = 0;
  int64_t file_size_ = 0;
};

}  // namespace thrifty::replay

#endif  // THRIFTY_REPLAY_LINE_READER_H_
