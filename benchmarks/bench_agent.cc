// AgentRun reserve (BeforeCall) + settle (AfterCall) latency in C++, one run and a nested run.
//
//   bench_agent [--json OUT.json]
//
// Target (issue #6): reserve + settle <= 2 us. Median of 41 rounds of 20,000 pairs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "thrifty/agent/agent_run.h"

namespace {

std::shared_ptr<const thrifty::catalog::Catalog> BenchCatalog() {
  thrifty::catalog::ModelSpec spec;
  spec.name = "gpt-6-luna";
  spec.provider = "openai";
  spec.input_per_mtok = 0.10;
  spec.output_per_mtok = 0.50;
  spec.cached_input_per_mtok = 0.01;
  return std::make_shared<const thrifty::catalog::Catalog>(
      *thrifty::catalog::Catalog::Create({spec}));
}

double MedianPairMicros(thrifty::agent::AgentRun& run) {
  thrifty::cost::Usage usage;
  usage.input_tokens = 900;
  usage.output_tokens = 80;
  constexpr int kRounds = 41;
  constexpr int kPairs = 20000;
  std::vector<double> rounds;
  for (int round = 0; round < kRounds; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kPairs; ++i) {
      auto r = run.BeforeCall("gpt-6-luna", 1000, 100);
      if (!r.ok() || !run.AfterCall(r->id, usage).ok()) std::abort();
    }
    rounds.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count() /
        kPairs);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[kRounds / 2];
}

}  // namespace

int main(int argc, char** argv) {
  thrifty::agent::AgentLimits limits;
  limits.max_cost_usd = 1e9;
  limits.max_input_tokens = int64_t{1} << 60;
  limits.max_output_tokens = int64_t{1} << 60;
  auto run = *thrifty::agent::AgentRun::Create(limits, BenchCatalog());
  const double single = MedianPairMicros(*run);
  auto child = *thrifty::agent::AgentRun::Create(limits, nullptr, run);
  const double nested = MedianPairMicros(*child);
  std::printf("AgentRun reserve + settle (C++), median of 41 rounds x 20,000 pairs\n");
  std::printf("%-28s %10s\n", "case", "us/pair");
  std::printf("%-28s %10.3f\n", "one run", single);
  std::printf("%-28s %10.3f\n", "sub-run (counts in parent)", nested);
  std::printf("target: <= 2 us\n");
  if (argc >= 3 && std::string(argv[1]) == "--json") {
    std::ofstream(argv[2]) << nlohmann::json{{"single_us", single}, {"nested_us", nested}}.dump(2)
                           << "\n";
  }
  return 0;
}
