// Ledger::Record cost in C++, from 1 and 16 threads (target: <= 1 us per call).
//
//   bench_ledger [--json OUT.json]
//
// Each call: a catalog-priced model (of 4), 3 tags (feature of 8, customer of 200, team of 4),
// a latency, a cache outcome, one saving; one soft budget and one hard budget match every call.
// Single thread: median over 21 rounds of 20,000 calls (ns per call, wall clock). 16 threads:
// every thread records 20,000 calls; reported as thread CPU ns per call (the machine may have
// fewer cores than threads, so wall time would measure the scheduler) and as calls per second.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "thrifty/cost/ledger.h"

namespace {

using thrifty::cost::CallRecord;
using thrifty::cost::Ledger;
using thrifty::cost::Saving;
using thrifty::cost::Tag;

std::shared_ptr<const thrifty::catalog::Catalog> BenchCatalog() {
  std::vector<thrifty::catalog::ModelSpec> specs;
  for (int i = 0; i < 4; ++i) {
    thrifty::catalog::ModelSpec s;
    s.name = "model-" + std::to_string(i);
    s.provider = "openai";
    s.input_per_mtok = 0.5 * (i + 1);
    s.output_per_mtok = 2.0 * (i + 1);
    specs.push_back(s);
  }
  return std::make_shared<const thrifty::catalog::Catalog>(
      *thrifty::catalog::Catalog::Create(specs));
}

double ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

struct Workload {
  std::vector<std::string> models, features, customers, teams;
  Workload() {
    for (int i = 0; i < 4; ++i) models.push_back("model-" + std::to_string(i));
    for (int i = 0; i < 8; ++i) features.push_back("feature-" + std::to_string(i));
    for (int i = 0; i < 200; ++i) customers.push_back("customer-" + std::to_string(i));
    for (int i = 0; i < 4; ++i) teams.push_back("team-" + std::to_string(i));
  }
  void Record(Ledger& ledger, int i) const {
    const Tag tags[3] = {{"feature", features[i % 8]},
                         {"customer", customers[(i * 7) % 200]},
                         {"team", teams[i % 4]}};
    const Saving savings[1] = {{"prompt_cache", 0.0001}};
    CallRecord c;
    c.model = models[i % 4];
    c.usage = {1000 + i % 100, 500, 0, 0, 200, 0};
    c.tags = tags;
    c.latency_s = 0.2 + 0.001 * (i % 500);
    c.cache = thrifty::cost::CacheOutcome::kMiss;
    c.savings = savings;
    if (!ledger.Record(c).ok()) std::abort();
  }
};

std::unique_ptr<Ledger> MakeLedger() {
  auto ledger = *Ledger::Create(BenchCatalog());
  thrifty::cost::BudgetSpec soft;
  soft.tag = "*";
  soft.limit_usd = 1e9;
  (void)ledger->AddBudget(soft);
  thrifty::cost::BudgetSpec hard;
  hard.tag = "team";
  hard.value = "team-0";
  hard.limit_usd = 1e9;
  hard.hard = true;
  (void)ledger->AddBudget(hard);
  return ledger;
}

}  // namespace

int main(int argc, char** argv) {
  const Workload w;
  constexpr int kCalls = 20000;
  constexpr int kRounds = 21;

  auto ledger = MakeLedger();
  for (int i = 0; i < kCalls; ++i) w.Record(*ledger, i);  // warm: every key exists
  std::vector<double> rounds;
  for (int r = 0; r < kRounds; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) w.Record(*ledger, i);
    rounds.push_back(
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
        kCalls);
  }
  std::sort(rounds.begin(), rounds.end());
  const double one_thread_ns = rounds[kRounds / 2];

  constexpr int kThreads = 16;
  auto shared = MakeLedger();
  for (int i = 0; i < kCalls; ++i) w.Record(*shared, i);
  std::vector<double> cpu_ns(kThreads);
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const double c0 = ThreadCpuNs();
      for (int i = 0; i < kCalls; ++i) w.Record(*shared, i + t);
      cpu_ns[t] = (ThreadCpuNs() - c0) / kCalls;
    });
  }
  for (auto& th : threads) th.join();
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(cpu_ns.begin(), cpu_ns.end());
  const double sixteen_cpu_ns = cpu_ns[kThreads / 2];
  const double calls_per_s = kThreads * kCalls / wall_s;
  const long long expected = static_cast<long long>(kCalls) * (kThreads + 1);
  const long long got = shared->Snapshot()["calls"].get<long long>();

  std::printf(
      "Ledger::Record (C++), 3 tags + latency + cache + saving, 2 budgets; target <= 1000 ns\n");
  std::printf("%-12s %14s %14s\n", "threads", "ns per call", "calls/s");
  std::printf("%-12d %14.0f %14.0f\n", 1, one_thread_ns, 1e9 / one_thread_ns);
  std::printf("%-12d %14.0f %14.0f   (thread CPU ns per call; %u hardware threads)\n", kThreads,
              sixteen_cpu_ns, calls_per_s, std::thread::hardware_concurrency());
  std::printf("16-thread totals exact: %s (%lld calls)\n", got == expected ? "yes" : "NO", got);
  if (argc >= 3 && std::string(argv[1]) == "--json") {
    nlohmann::json out = {{"record_1_thread_ns", one_thread_ns},
                          {"record_16_threads_cpu_ns", sixteen_cpu_ns},
                          {"calls_per_s_16_threads", calls_per_s},
                          {"exact_totals", got == expected}};
    std::ofstream(argv[2]) << out.dump(2) << "\n";
  }
  return got == expected ? 0 : 1;
}
