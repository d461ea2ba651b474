// Clock: where the prefix tracker reads the time, so replay and tests can simulate it.
//
// Thread-safety: implementations must be safe to call from several threads at once.
// SystemClock and ManualClock are.
#ifndef THRIFTY_PROMPT_CLOCK_H_
#define THRIFTY_PROMPT_CLOCK_H_

#include <atomic>

namespace thrifty::prompt {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since an arbitrary epoch (the Unix epoch for SystemClock).
  virtual double Now() const = 0;
};

// Wall-clock time (std::chrono::system_clock).
class SystemClock : public Clock {
 public:
  double Now() const override;
};

// A clock that only moves when told to; for replay and tests.
class ManualClock : public Clock {
 public:
  explicit ManualClock(double start = 0) : now_(start) {}
  double Now() const override { return now_.load(std::memory_order_relaxed); }
  void Set(double now) { now_.store(now, std::memory_order_relaxed); }
  void Advance(double seconds) { Set(Now() + seconds); }

 private:
  std::atomic<double> now_;
};

}  // namespace thrifty::prompt

#endif  // THRIFTY_PROMPT_CLOCK_H_
