#include "thrifty/prompt/clock.h"

#include <chrono>  // std::chrono::system_clock

namespace thrifty::prompt {

double SystemClock::Now() const {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace thrifty::prompt
