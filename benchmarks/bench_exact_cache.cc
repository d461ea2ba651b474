// ExactCache Get latency in C++: hits and misses, p50/p99 per call.
//
//   bench_exact_cache [--json OUT.json]
//
// 10,000 entries with 2 KB values under request-key-like 32-hex keys; 200,000 timed lookups
// of each kind (steady_clock per call; its own ~20 ns overhead is included).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "thrifty/cache/exact_cache.h"
#include "thrifty/request/request_key.h"

namespace {

std::string HexKey(int i) { return thrifty::request::HashBytes(std::to_string(i)).ToHex(); }

struct Percentiles {
  double p50_ns, p99_ns;
};

template <typename Fn>
Percentiles Time(int calls, Fn&& fn) {
  std::vector<double> samples(calls);
  for (int i = 0; i < calls; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn(i);
    samples[i] =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  }
  std::sort(samples.begin(), samples.end());
  return {samples[calls / 2], samples[calls * 99 / 100]};
}

}  // namespace

int main(int argc, char** argv) {
  auto cache = thrifty::cache::ExactCache::Create();
  if (!cache.ok()) return 1;
  constexpr int kEntries = 10000;
  constexpr int kCalls = 200000;
  std::vector<std::string> keys, missing;
  for (int i = 0; i < kEntries; ++i) {
    keys.push_back(HexKey(i));
    missing.push_back(HexKey(-1 - i));
    if (!(*cache)
             ->Put("tenant-a", keys.back(), std::string(2048, 'x'),
                   thrifty::cache::ValueKind::kText)
             .ok()) {
      return 1;
    }
  }
  std::mt19937 rng(1);
  std::vector<int> order(kCalls);
  for (int& i : order) i = static_cast<int>(rng() % kEntries);
  volatile size_t sink = 0;
  for (int i = 0; i < kCalls; ++i)
    sink = sink + ((*cache)->Get("tenant-a", keys[order[i]]) != nullptr);
  const Percentiles hit = Time(kCalls, [&](int i) {
    sink = sink + (*cache)->Get("tenant-a", keys[order[i]])->value.size();
  });
  const Percentiles miss = Time(kCalls, [&](int i) {
    sink = sink + ((*cache)->Get("tenant-a", missing[order[i]]) == nullptr);
  });
  std::printf("ExactCache::Get (C++), %d entries of 2 KB\n", kEntries);
  std::printf("%-8s %10s %10s\n", "case", "p50 ns", "p99 ns");
  std::printf("%-8s %10.0f %10.0f\n", "hit", hit.p50_ns, hit.p99_ns);
  std::printf("%-8s %10.0f %10.0f\n", "miss", miss.p50_ns, miss.p99_ns);
  if (argc >= 3 && std::string(argv[1]) == "--json") {
    nlohmann::json out = {{"hit_p50_ns", hit.p50_ns},
                          {"hit_p99_ns", hit.p99_ns},
                          {"miss_p50_ns", miss.p50_ns},
                          {"miss_p99_ns", miss.p99_ns}};
    std::ofstream(argv[2]) << out.dump(2) << "\n";
  }
  return 0;
}
