// LoopDetector: notices an agent repeating itself and escalates warn -> refuse -> stop.
//
// Three signals over a sliding window of recent tool calls:
//   * the same tool with canonically equal arguments (JSON key order and number spelling do not
//     matter; a JSON-string argument is parsed first),
//   * the same error text from a tool (digits and hex runs normalized, so "timeout after 3.2s"
//     and "timeout after 3.4s" agree),
//   * A-B oscillation (A, B, A, B, ... with A != B).
// Each signal has a count at which it warns, refuses the offending call (the run goes on), and
// stops the run. Thread-compatible: AgentRun serializes access.
#ifndef THRIFTY_AGENT_LOOP_DETECTOR_H_
#define THRIFTY_AGENT_LOOP_DETECTOR_H_

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace thrifty::agent {

struct LoopPolicy {
  bool enabled = true;
  int window = 20;      // recent tool calls considered
  int repeat_warn = 3;  // identical calls (tool + arguments) within the window
  int repeat_refuse = 5;
  int repeat_stop = 8;
  int error_warn = 2;  // identical error texts within the window
  int error_stop = 4;
  int oscillation_refuse = 3;  // A-B cycles
  int oscillation_stop = 5;
};

absl::Status ValidateLoopPolicy(const LoopPolicy& policy);

enum class LoopAction { kOk, kWarn, kRefuse, kStop };

struct LoopVerdict {
  LoopAction action = LoopAction::kOk;
  std::string reason;  // empty when kOk
};

class LoopDetector {
 public:
  explicit LoopDetector(LoopPolicy policy) : policy_(policy) {}

  // `arguments` is the tool's arguments as JSON text or any string.
  LoopVerdict OnToolCall(std::string_view tool, std::string_view arguments);
  LoopVerdict OnToolError(std::string_view tool, std::string_view message);

  // The canonical signature of a call (exposed for tests).
  static uint64_t CallSignature(std::string_view tool, std::string_view arguments);
  static std::string NormalizeError(std::string_view message);

 private:
  LoopPolicy policy_;
  std::deque<uint64_t> calls_;   // signatures, oldest first
  std::deque<uint64_t> errors_;  // (tool, normalized error) signatures
};

}  // namespace thrifty::agent

#endif  // THRIFTY_AGENT_LOOP_DETECTOR_H_
