// Mutex: a reader/writer lock that ThreadSanitizer understands, with Abseil's annotations.
//
// Why not absl::Mutex: Debian's Abseil is a prebuilt library compiled without TSAN, so its
// lock operations are invisible to ThreadSanitizer and every guarded access would be reported
// as a race, making the TSAN run of the C++ tests useless. std::shared_mutex is a pthread
// rwlock, which TSAN intercepts. The ABSL_* capability annotations keep clang's
// -Wthread-safety checks working on code that uses ABSL_GUARDED_BY(mu_).
//
// Thread-safety: thread-safe (it is the lock).
#ifndef THRIFTY_BASE_MUTEX_H_
#define THRIFTY_BASE_MUTEX_H_

#include <shared_mutex>

#include "absl/base/thread_annotations.h"

namespace thrifty {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() { mu_.lock_shared(); }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) { mu_->ReaderLock(); }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace thrifty

#endif  // THRIFTY_BASE_MUTEX_H_
