// request_key on a ~4 KB chat request, in C++: canonicalize + XXH3-128.
//
//   bench_request_key REQUEST.json [--json OUT.json]
//
// REQUEST.json is written by benchmarks/bench_request_key.py (the same request the Python
// benchmark hashes). Prints the median and p10/p90 per call over 41 rounds of 5000 calls.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "thrifty/request/request_key.h"

namespace {

struct Stats {
  double median_us, p10_us, p90_us;
};

template <typename Fn>
Stats Measure(Fn&& fn) {
  constexpr int kRounds = 41;
  constexpr int kCalls = 5000;
  for (int i = 0; i < kCalls; ++i) fn();  // warm-up
  std::vector<double> per_call;
  for (int round = 0; round < kRounds; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) fn();
    const std::chrono::duration<double, std::micro> elapsed =
        std::chrono::steady_clock::now() - start;
    per_call.push_back(elapsed.count() / kCalls);
  }
  std::sort(per_call.begin(), per_call.end());
  return {per_call[kRounds / 2], per_call[kRounds / 10], per_call[kRounds * 9 / 10]};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s REQUEST.json [--json OUT.json]\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "%s: cannot open\n", argv[1]);
    return 2;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  const nlohmann::json request = nlohmann::json::parse(text);

  volatile uint64_t sink = 0;
  const Stats key = Measure([&] {
    auto k = thrifty::request::RequestKey(request, "tenant-a");
    sink = sink + k->low;
  });
  const Stats parse_and_key = Measure([&] {
    auto k = thrifty::request::RequestKey(nlohmann::json::parse(text), "tenant-a");
    sink = sink + k->low;
  });

  std::printf("request_key (C++), %zu-byte request\n", text.size());
  std::printf("%-34s %10s %10s %10s\n", "case", "median us", "p10 us", "p90 us");
  std::printf("%-34s %10.3f %10.3f %10.3f\n", "RequestKey(parsed json)", key.median_us, key.p10_us,
              key.p90_us);
  std::printf("%-34s %10.3f %10.3f %10.3f\n", "parse JSON text + RequestKey",
              parse_and_key.median_us, parse_and_key.p10_us, parse_and_key.p90_us);
  if (argc >= 4 && std::string(argv[2]) == "--json") {
    nlohmann::json out = {{"request_bytes", text.size()},
                          {"request_key_median_us", key.median_us},
                          {"request_key_p10_us", key.p10_us},
                          {"request_key_p90_us", key.p90_us},
                          {"parse_and_key_median_us", parse_and_key.median_us}};
    std::ofstream(argv[3]) << out.dump(2) << "\n";
  }
  return 0;
}
