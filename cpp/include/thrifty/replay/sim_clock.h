// SimClock: the simulated time of a replay. The caches read it through cache::Clock (exact
// cache) or Function() (semantic cache), so their TTLs expire on the trace's timestamps, not the
// machine's: an entry stored at ts=100 with a 60 s TTL misses at ts=161 however fast the replay.
//
// Time never goes backwards: Advance() to an earlier time keeps the current one (and says so),
// so a trace with slightly out-of-order timestamps cannot resurrect expired entries.
//
// Thread-safety: thread-safe (an atomic).
#ifndef THRIFTY_REPLAY_SIM_CLOCK_H_
#define THRIFTY_REPLAY_SIM_CLOCK_H_

#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>

#include "absl/time/time.h"
#include "thrifty/cache/exact_cache.h"

namespace thrifty::replay {

class SimClock final : public cache::Clock {
 public:
  explicit SimClock(double start_seconds = 0.0) : micros_(ToMicros(start_seconds)) {}

  absl::Time Now() const override {
    return absl::FromUnixMicros(micros_.load(std::memory_order_acquire));
  }
  double NowSeconds() const {
    return static_cast<double>(micros_.load(std::memory_order_acquire)) / 1e6;
  }

  // Moves to `seconds` if that is later; returns false (and stays) when it is earlier.
  bool Advance(double seconds) {
    const int64_t target = ToMicros(seconds);
    int64_t current = micros_.load(std::memory_order_relaxed);
    while (target > current) {
      if (micros_.compare_exchange_weak(current, target, std::memory_order_acq_rel)) return true;
    }
    return target == current;
  }

  // For SemanticCacheOptions::clock.
  std::function<absl::Time()> Function() const {
    return [this] { return Now(); };
  }

 private:
  static int64_t ToMicros(double seconds) { return std::llround(seconds * 1e6); }

  std::atomic<int64_t> micros_;
};

}  // namespace thrifty::replay

#endif  // THRIFTY_REPLAY_SIM_CLOCK_H_
