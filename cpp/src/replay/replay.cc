#include "thrifty/replay/replay.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string_view>
#include <thread>

#include "../base/simd.h"
#include "absl/container/flat_hash_map.h"
#include "simdjson_view.h"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"
#include "thrifty/cache/exact_cache.h"
#include "thrifty/cache/semantic_cache.h"
#include "thrifty/cost/pricing.h"
#include "thrifty/embed/hashing_embedder.h"
#include "thrifty/prompt/prefix_tracker.h"
#include "thrifty/replay/line_reader.h"
#include "thrifty/replay/sim_clock.h"
#include "thrifty/request/canonical_json.h"
#include "thrifty/request/request_key.h"
#include "thrifty/request/token_estimate.h"
#include "trace_line.h"

namespace thrifty::replay {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Stage 1 (worker threads): everything about a record that does not depend on the simulation.

struct Prepared {
  TraceRecord rec;
  int64_t line = 0;
  bool valid = false;
  std::string error;
  std::string exact_key;  // hex of the key of namespace + context + query
  std::string context;    // hex key of the request without its final user message
  std::string query;      // the final user message ("" when the request does not end with one)
  int64_t prompt_tokens = 0;
  std::vector<PrefixPoint> prefixes;  // shortest first; empty below the cacheable minimum
  int64_t vector_row = -1;            // row in Batch::vectors
  // The semantic lookup made ahead on a worker thread (see Lookahead); valid when presearched.
  bool presearched = false;
  int64_t presearch_inserts = 0;  // Lookahead::inserts when it was made
  std::optional<cache::SemanticHit> presearch;
  int64_t model_row = -1;  // row in Batch::predicted_* (RoutingMode::kModel)
};

struct Batch {
  int64_t seq = 0;
  std::vector<std::string> lines;
  std::vector<int64_t> line_numbers;
  int64_t bytes_after = 0;
  std::vector<Prepared> records;
  std::vector<float> vectors;
  std::vector<double> predicted_quality;  // [rows x QualityModel::models().size()]
  std::vector<double> predicted_output;
  absl::Status error;  // a failure that stops the run (the embedder failed)
  bool ready = false;
};

using internal::SimdjsonView;

// The head segment (system prompt and tools) and then each message, canonicalized.
absl::Status Segments(simdjson::dom::element request, std::vector<std::string>& out) {
  out.clear();
  std::string head = "{";
  simdjson::dom::element system, tools, messages;
  if (SimdjsonView::Find(request, "system", &system)) {
    head += "\"system\":";
    THRIFTY_RETURN_IF_ERROR(request::internal::AppendCanonical<SimdjsonView>(system, head));
  }
  if (SimdjsonView::Find(request, "tools", &tools)) {
    head += head.size() > 1 ? ",\"tools\":" : "\"tools\":";
    THRIFTY_RETURN_IF_ERROR(request::internal::AppendCanonical<SimdjsonView>(tools, head));
  }
  head.push_back('}');
  out.push_back(std::move(head));
  if (SimdjsonView::Find(request, "messages", &messages)) {
    THRIFTY_RETURN_IF_ERROR(SimdjsonView::ForEachElement(messages, [&](simdjson::dom::element m) {
      std::string segment;
      THRIFTY_RETURN_IF_ERROR(request::internal::AppendCanonical<SimdjsonView>(m, segment));
      out.push_back(std::move(segment));
      return absl::OkStatus();
    }));
  }
  return absl::OkStatus();
}

// Keys, tokens and prefix chain of a parsed record whose request is `request`.
absl::Status PrepareRequest(const ReplayOptions& options, std::string_view where,
                            simdjson::dom::element request, Prepared& out) {
  TraceRecord& rec = out.rec;
  out.query = internal::FinalUserText(request);

  // Context: the request with its final user message blanked (so paraphrases share a scope).
  int64_t blank = -1;  // the index of the final user message, when there is one
  if (simdjson::dom::element messages;
      !out.query.empty() && SimdjsonView::Find(request, "messages", &messages)) {
    blank = static_cast<int64_t>(SimdjsonView::Size(messages)) - 1;
  }
  thread_local std::string canonical;
  canonical.clear();
  absl::Status status =
      request::internal::AppendCanonicalRequest<SimdjsonView>(request, canonical, blank);
  if (!status.ok()) {
    if (request::internal::IsDuplicateKeyError(status)) return status;
    return absl::InvalidArgumentError(StrCat(where, ": request: ", FromAbsl(status.message())));
  }
  const request::Key128 context_key = request::HashBytes(canonical);
  out.context = context_key.ToHex();
  std::string exact_bytes = StrCat(rec.ns.size(), ":", rec.ns, canonical);
  exact_bytes.push_back('\0');
  exact_bytes += out.query;
  out.exact_key = request::HashBytes(exact_bytes).ToHex();

  const auto family = request::FamilyForModel(rec.model);
  if (rec.usage) {
    out.prompt_tokens = rec.usage->prompt_tokens();
  } else {
    if (rec.request.is_null()) rec.request = internal::ToNlohmann(request);
    auto estimate = request::EstimateRequestTokens(rec.request, family);
    out.prompt_tokens = estimate.ok() ? *estimate : 0;
  }

  if (options.prefix_cache && out.prompt_tokens >= options.prefix_rules.min_cacheable_tokens) {
    thread_local std::vector<std::string> segments;
    THRIFTY_RETURN_IF_ERROR(Segments(request, segments));
    // Conversations repeat their system prompt, tools and earlier turns call after call: the
    // token estimate of a segment is remembered by the segment's hash (per worker, bounded).
    thread_local absl::flat_hash_map<request::Key128, int64_t, request::Key128Hash> estimates_of;
    if (estimates_of.size() > (1u << 16)) estimates_of.clear();
    std::vector<request::Key128> keys(segments.size());
    std::vector<int64_t> estimates(segments.size());
    int64_t total = 0;
    for (size_t i = 0; i < segments.size(); ++i) {
      keys[i] = request::HashBytes(segments[i]);
      auto [it, inserted] = estimates_of.try_emplace(keys[i], 0);
      if (inserted) it->second = request::EstimateTextTokens(segments[i], family);
      estimates[i] = it->second;
      total += estimates[i];
    }
    if (total > 0) {
      // The chain: each point hashes the previous point and its segment's hash.
      request::Key128 chain{0, 0};
      int64_t cumulative = 0;
      out.prefixes.reserve(segments.size());
      for (size_t i = 0; i < segments.size(); ++i) {
        char bytes[2 * sizeof(request::Key128)];
        std::memcpy(bytes, &chain, sizeof(chain));
        std::memcpy(bytes + sizeof(chain), &keys[i], sizeof(keys[i]));
        chain = request::HashBytes(std::string_view(bytes, sizeof(bytes)));
        cumulative += estimates[i];
        // Scale the estimates so the whole prompt matches the counted prompt tokens.
        const auto tokens =
            static_cast<int64_t>(static_cast<double>(cumulative) / static_cast<double>(total) *
                                 static_cast<double>(out.prompt_tokens));
        out.prefixes.push_back({chain.low ^ chain.high, tokens});
      }
    }
  }
  return absl::OkStatus();
}

// `want_request`: keep the request as an nlohmann::json in rec.request (the prefix tracker,
// routing hooks and quality models take one); otherwise it is built only to estimate tokens.
void Prepare(const std::string& path, const ReplayOptions& options, bool want_request,
             internal::LineParser& parser, const std::string& line, int64_t line_number,
             Prepared& out) {
  out.line = line_number;
  const std::string where = StrCat(path, ":", line_number);
  simdjson::dom::element request;
  absl::Status status = internal::ParseTraceLine(parser, line, where, out.rec, request);
  if (status.ok()) status = PrepareRequest(options, where, request, out);
  if (request::internal::IsDuplicateKeyError(status)) {
    // An object in the request holds a key twice: read it as nlohmann does (the last wins).
    out = Prepared{};
    out.line = line_number;
    status = internal::NormalizeTraceLine(parser, line, where, out.rec, request);
    if (status.ok()) status = PrepareRequest(options, where, request, out);
  }
  if (!status.ok()) {
    out.error = std::string(FromAbsl(status.message()));
    return;
  }
  if (want_request && out.rec.request.is_null()) out.rec.request = internal::ToNlohmann(request);
  if (out.rec.id.empty()) out.rec.id = StrCat("line-", line_number);
  out.valid = true;
}

// The semantic lookup runs ahead, on the worker threads, against the live cache: the
// simulation thread then only checks what changed since (Simulation::SemanticLookup). When a
// worker searches for record j, the cache holds entries of records before j only (the simulation
// has not reached j), so the lookup misses at most the entries inserted after it was made; the
// simulation thread counts its inserts (`inserts`) and keeps the recent ones to scan.
struct Lookahead {
  cache::SemanticCache* semantic = nullptr;
  const cache::ExactCache* exact = nullptr;
  std::atomic<int64_t> inserts{0};
  // Set by the simulation thread around its writes: workers hold back new lookups (asleep), so
  // a stream of readers cannot keep the writer waiting for the cache's lock.
  std::mutex mu;
  std::condition_variable writer_done;
  bool writing = false;  // guarded by mu

  void WaitForWriter() {
    std::unique_lock<std::mutex> lock(mu);
    writer_done.wait(lock, [&] { return !writing; });
  }
  void SetWriting(bool value) {
    {
      std::lock_guard<std::mutex> lock(mu);
      writing = value;
    }
    if (!value) writer_done.notify_all();
  }
};

bool SemanticEligible(const ReplayOptions& options, const Prepared& p) {
  return options.semantic && p.valid && !p.query.empty() &&
         (options.semantic_namespaces.empty() ||
          std::find(options.semantic_namespaces.begin(), options.semantic_namespaces.end(),
                    p.rec.ns) != options.semantic_namespaces.end());
}

void PrepareBatch(const std::string& path, const ReplayOptions& options,
                  const embed::Embedder* embedder, Lookahead* ahead, Batch& batch) {
  batch.records.resize(batch.lines.size());
  std::vector<std::string_view> queries;
  thread_local internal::LineParser parser;
  const bool want_request = options.prefix_tracker || options.routing == RoutingMode::kHook ||
                            options.routing == RoutingMode::kModel;
  for (size_t i = 0; i < batch.lines.size(); ++i) {
    Prepared& p = batch.records[i];
    Prepare(path, options, want_request, parser, batch.lines[i], batch.line_numbers[i], p);
    if (SemanticEligible(options, p)) {
      p.vector_row = static_cast<int64_t>(queries.size());
      queries.push_back(p.query);
    }
  }
  batch.lines.clear();
  batch.lines.shrink_to_fit();
  if (!queries.empty()) {
    batch.vectors.resize(queries.size() * embedder->dim());
    batch.error = embedder->EmbedBatch(queries, batch.vectors);
  }
  // Most likely an exact hit (the exact cache already holds the request): the simulation will
  // need neither a semantic lookup nor a routing decision for it.
  const bool lookahead = ahead != nullptr && ahead->semantic != nullptr;
  std::vector<bool> likely_exact(batch.records.size(), false);
  if (ahead != nullptr && ahead->exact != nullptr &&
      (lookahead || options.routing == RoutingMode::kModel)) {
    for (size_t i = 0; i < batch.records.size(); ++i) {
      const Prepared& p = batch.records[i];
      likely_exact[i] = p.valid && ahead->exact->Contains(p.rec.ns, p.exact_key);
    }
  }
  if (lookahead && batch.error.ok()) {
    const size_t dim = embedder->dim();
    for (size_t i = 0; i < batch.records.size(); ++i) {
      Prepared& p = batch.records[i];
      if (p.vector_row < 0 || likely_exact[i]) continue;
      ahead->WaitForWriter();
      p.presearch_inserts = ahead->inserts.load(std::memory_order_acquire);
      auto hit = ahead->semantic->PeekVector(
          std::span<const float>(batch.vectors).subspan(p.vector_row * dim, dim), p.context,
          p.rec.ns);
      if (!hit.ok()) continue;  // the simulation thread looks up again and reports the error
      p.presearch = *std::move(hit);
      p.presearched = true;
    }
  }
  if (options.routing == RoutingMode::kModel && batch.error.ok()) {
    // Move the requests into one array for the batch call, then back.
    std::vector<json> requests;
    requests.reserve(batch.records.size());
    for (size_t i = 0; i < batch.records.size(); ++i) {
      Prepared& p = batch.records[i];
      // Most likely a cache hit, which is never routed: the exact cache holds the request, or
      // the lookahead found a semantic match (if it is routed after all, the simulation thread
      // asks the model for this record alone).
      if (!p.valid || likely_exact[i] || (p.presearched && p.presearch.has_value())) continue;
      p.model_row = static_cast<int64_t>(requests.size());
      requests.push_back(std::move(p.rec.request));
    }
    const size_t m = options.model->models().size();
    batch.predicted_quality.resize(requests.size() * m);
    batch.predicted_output.resize(requests.size() * m);
    batch.error = options.model->Predict(requests, batch.predicted_quality, batch.predicted_output);
    for (Prepared& p : batch.records) {
      if (p.model_row >= 0) p.rec.request = std::move(requests[p.model_row]);
    }
  }
  batch.ready = true;
}

// Reader thread -> workers -> the caller, in file order, with at most `max_in_flight` batches.
class Pipeline {
 public:
  Pipeline(const std::string& path, const ReplayOptions& options, const embed::Embedder* embedder,
           Lookahead* ahead, std::unique_ptr<LineReader> reader, size_t workers,
           size_t max_in_flight)
      : path_(path),
        options_(options),
        embedder_(embedder),
        ahead_(ahead),
        reader_(std::move(reader)),
        max_in_flight_(max_in_flight) {
    threads_.emplace_back([this] { ReadLoop(); });
    for (size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { WorkLoop(); });
  }

  ~Pipeline() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  // The next batch in file order; null at the end. A read error is returned as a status.
  absl::StatusOr<std::unique_ptr<Batch>> Next() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] {
      auto it = in_flight_.find(next_seq_);
      return (it != in_flight_.end() && it->second->ready) ||
             (read_done_ && it == in_flight_.end());
    });
    auto it = in_flight_.find(next_seq_);
    if (it == in_flight_.end()) {
      if (!read_status_.ok()) return read_status_;
      return std::unique_ptr<Batch>();
    }
    std::unique_ptr<Batch> batch = std::move(it->second);
    in_flight_.erase(it);
    ++next_seq_;
    lock.unlock();
    cv_.notify_all();
    return batch;
  }

  // Takes back a batch the caller is done with: a worker frees it, off the caller's thread.
  void Recycle(std::unique_ptr<Batch> batch) {
    std::lock_guard<std::mutex> lock(mu_);
    spent_.push_back(std::move(batch));
  }

  int64_t file_size() const { return reader_->file_size(); }

 private:
  void ReadLoop() {
    int64_t seq = 0;
    int64_t records = 0;
    const int64_t limit = options_.limit.value_or(std::numeric_limits<int64_t>::max());
    absl::Status status;
    bool done = false;
    while (!done) {
      auto batch = std::make_unique<Batch>();
      batch->seq = seq;
      std::string line;
      while (batch->lines.size() < options_.batch_size && records < limit) {
        auto more = reader_->Next(line);
        if (!more.ok()) {
          status = more.status();
          done = true;
          break;
        }
        if (!*more) {
          done = true;
          break;
        }
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
        batch->lines.push_back(std::move(line));
        batch->line_numbers.push_back(reader_->line_number());
        ++records;
      }
      if (records >= limit) done = true;
      batch->bytes_after = reader_->bytes_read();
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || in_flight_.size() < max_in_flight_; });
      if (stop_) return;
      if (!batch->lines.empty()) {
        Batch* raw = batch.get();
        in_flight_.emplace(seq++, std::move(batch));
        to_prepare_.push_back(raw);
      }
      if (done) {
        read_done_ = true;
        read_status_ = status;
      }
      lock.unlock();
      cv_.notify_all();
    }
  }

  void WorkLoop() {
    while (true) {
      Batch* batch = nullptr;
      std::vector<std::unique_ptr<Batch>> spent;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !to_prepare_.empty() || read_done_; });
        if (stop_) return;
        if (to_prepare_.empty()) return;  // read_done_ and nothing left
        batch = to_prepare_.front();
        to_prepare_.pop_front();
        spent.swap(spent_);
      }
      spent.clear();
      Batch local;  // prepare outside the lock into a private object, then publish
      local.lines = std::move(batch->lines);
      local.line_numbers = std::move(batch->line_numbers);
      PrepareBatch(path_, options_, embedder_, ahead_, local);
      {
        std::lock_guard<std::mutex> lock(mu_);
        batch->records = std::move(local.records);
        batch->vectors = std::move(local.vectors);
        batch->predicted_quality = std::move(local.predicted_quality);
        batch->predicted_output = std::move(local.predicted_output);
        batch->line_numbers = std::move(local.line_numbers);
        batch->error = local.error;
        batch->ready = true;
      }
      cv_.notify_all();
    }
  }

  const std::string path_;
  const ReplayOptions& options_;
  const embed::Embedder* const embedder_;
  Lookahead* const ahead_;
  std::unique_ptr<LineReader> reader_;  // used by the reader thread only (file_size is fixed)
  const size_t max_in_flight_;

  std::mutex mu_;  // std::mutex (a pthread mutex) so TSAN sees it; see base/mutex.h
  std::condition_variable cv_;
  std::map<int64_t, std::unique_ptr<Batch>> in_flight_;
  std::deque<Batch*> to_prepare_;
  std::vector<std::unique_ptr<Batch>> spent_;  // consumed batches, for a worker to free
  int64_t next_seq_ = 0;
  bool read_done_ = false;
  bool stop_ = false;
  absl::Status read_status_;
  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------------------------------------
// Stage 2 (the calling thread): the simulation.

// What an exact-cache entry remembers of its answer: the quality it was served at.
std::string EncodeQuality(std::optional<double> quality) {
  return quality ? StrCat(*quality) : std::string("-");
}

std::optional<double> DecodeQuality(std::string_view data) {
  if (data.empty() || data == "-") return std::nullopt;
  return std::strtod(std::string(data).c_str(), nullptr);
}

// What a semantic-cache entry remembers of its answer (the audit shows the matched call).
std::string EncodeAnswer(std::optional<double> quality, const std::string& intent,
                         const std::string& id) {
  std::string out = EncodeQuality(quality);
  out.push_back('\x1f');
  out += intent;
  out.push_back('\x1f');
  out += id;
  return out;
}

struct Answer {
  std::optional<double> quality;
  std::string intent;
  std::string id;
};

Answer DecodeAnswer(std::string_view data) {
  Answer answer;
  const size_t a = data.find('\x1f');
  const size_t b = a == std::string_view::npos ? a : data.find('\x1f', a + 1);
  if (a == std::string_view::npos || b == std::string_view::npos) return answer;
  answer.quality = DecodeQuality(data.substr(0, a));
  answer.intent = std::string(data.substr(a + 1, b - a - 1));
  answer.id = std::string(data.substr(b + 1));
  return answer;
}

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

struct Money {
  double requests = 0;
  double cost_usd = 0;
};

struct BucketAgg {
  int64_t requests = 0;
  int64_t exact_hits = 0;
  int64_t semantic_hits = 0;
  double baseline_usd = 0;
  double cost_usd = 0;
};

class Simulation {
 public:
  Simulation(const catalog::Catalog& catalog, const ReplayOptions& options, SimClock& clock,
             cache::ExactCache* exact, cache::SemanticCache* semantic, Lookahead* ahead)
      : catalog_(catalog),
        options_(options),
        clock_(clock),
        exact_(exact),
        semantic_(semantic),
        ahead_(ahead),
        prefix_(options.prefix_rules),
        rng_(options.seed ^ 0x5EEDULL) {
    if (options.prefix_cache && options.prefix_tracker) {
      tracker_ = std::make_unique<prompt::PrefixTracker>(
          std::make_shared<const catalog::Catalog>(catalog));
    }
    if (options.model) {
      for (const std::string& name : options.model->models()) {
        model_columns_.push_back(catalog.Find(name));
      }
    }
  }

  // `predicted_quality` / `predicted_output`: this record's row of the QualityModel's output.
  absl::Status Step(Prepared& p, std::span<const float> vector,
                    std::span<const double> predicted_quality = {},
                    std::span<const double> predicted_output = {});
  json Result() const;

  int64_t records() const { return records_; }
  int64_t invalid = 0;
  std::vector<std::string> invalid_examples;

 private:
  // catalog_.Find, memoized by the exact spelling (Find lower-cases, which allocates).
  const catalog::ModelSpec* Find(const std::string& name) {
    auto it = find_cache_.find(name);
    if (it != find_cache_.end()) return it->second;
    const catalog::ModelSpec* spec = catalog_.Find(name);
    if (find_cache_.size() < 4096) find_cache_.emplace(name, spec);
    return spec;
  }
  uint32_t ModelId(const catalog::ModelSpec* spec) const {
    return static_cast<uint32_t>(spec - catalog_.models().data());
  }
  // The policy's cost of sending the request to `spec` now (and the cached tokens it assumes).
  // `forced_cached` >= 0 replaces the simulated prompt-cache reads (no writes are billed then).
  double PolicyCost(const catalog::ModelSpec& spec, const Prepared& p, int64_t output_tokens,
                    int64_t* cached_out, double* uncached_out, int64_t forced_cached = -1) const;
  int64_t OutputTokens(const Prepared& p, const std::string& model) const;
  absl::StatusOr<RouteChoice> Route(const Prepared& p, std::span<const double> predicted_quality,
                                    std::span<const double> predicted_output);
  void Bucket(double ts, double baseline, double cost, int hit_kind);
  // The semantic cache's answer for `p` now: the worker's lookahead plus what was inserted
  // since, or a lookup on this thread when that cannot be trusted.
  absl::StatusOr<std::optional<cache::SemanticHit>> SemanticLookup(const Prepared& p,
                                                                   std::span<const float> vector);
  absl::Status SemanticInsert(const Prepared& p, std::span<const float> vector,
                              cache::SemanticValue value);
  // Records one simulated call into options_.ledger (a no-op without one).
  absl::Status ToLedger(const TraceRecord& rec, std::string_view model, const cost::Usage& usage,
                        double cost_usd, cost::CacheOutcome outcome,
                        std::initializer_list<cost::Saving> savings);
  std::vector<cost::Tag> ledger_tags_;  // reused per call

  const catalog::Catalog& catalog_;
  const ReplayOptions& options_;
  SimClock& clock_;
  cache::ExactCache* exact_;
  cache::SemanticCache* semantic_;
  Lookahead* ahead_;
  // The latest semantic inserts, for lookaheads made before them (Step, SemanticLookup).
  struct RecentInsert {
    int64_t seq = 0;
    std::string ns;
    std::string context;
    std::vector<float> vector;  // L2-normalized, as the cache stores it
    std::string query;
    cache::SemanticValue value;
    absl::Time created_at;
    uint64_t entry_id = 0;
  };
  std::deque<RecentInsert> recent_;
  static constexpr size_t kRecentInserts = 4096;
  int64_t inserts_ = 0;
  int64_t last_evicting_insert_ = -1;
  uint64_t evictions_seen_ = 0;
  int64_t lookahead_used_ = 0;
  int64_t lookahead_redone_ = 0;
  PrefixCacheSim prefix_;
  uint64_t rng_;
  std::vector<const catalog::ModelSpec*> model_columns_;  // QualityModel column -> spec
  absl::flat_hash_map<std::string, const catalog::ModelSpec*> find_cache_;
  std::unique_ptr<prompt::PrefixTracker> tracker_;  // options.prefix_tracker

  int64_t records_ = 0;
  int64_t exact_hits_ = 0;
  int64_t semantic_hits_ = 0;
  int64_t semantic_false_hits_ = 0;
  int64_t semantic_checked_hits_ = 0;
  int64_t routed_ = 0;
  int64_t out_of_order_ = 0;
  int64_t unpriced_ = 0;
  int64_t predicted_quality_ = 0;
  int64_t output_assumed_ = 0;
  double baseline_usd_ = 0;
  double cost_usd_ = 0;
  double save_exact_ = 0, save_semantic_ = 0, save_routing_ = 0, save_prefix_ = 0;
  double baseline_quality_sum_ = 0, policy_quality_sum_ = 0;
  int64_t quality_n_ = 0;
  int64_t prompt_tokens_ = 0, cached_baseline_ = 0, cached_policy_ = 0;
  std::map<std::string, Money> mix_, baseline_mix_;
  std::set<std::string> unknown_models_;
  std::map<int64_t, BucketAgg> buckets_;
  std::vector<json> audit_;
  int64_t audit_seen_ = 0;
};

int64_t Simulation::OutputTokens(const Prepared& p, const std::string& model) const {
  if (const ModelLabel* label = p.rec.Label(model); label && label->output_tokens) {
    return *label->output_tokens;
  }
  if (p.rec.usage) return p.rec.usage->output_tokens;
  if (const ModelLabel* label = p.rec.Label(p.rec.model); label && label->output_tokens) {
    return *label->output_tokens;
  }
  return 0;
}

double Simulation::PolicyCost(const catalog::ModelSpec& spec, const Prepared& p,
                              int64_t output_tokens, int64_t* cached_out, double* uncached_out,
                              int64_t forced_cached) const {
  int64_t cached = 0;
  int64_t written = 0;
  int64_t written_1h = 0;
  if (forced_cached >= 0) {
    cached = std::min(forced_cached, p.prompt_tokens);
  } else if (tracker_ != nullptr) {
    auto prediction = tracker_->Predict("", spec.name, p.rec.request, clock_.NowSeconds());
    if (prediction.ok()) {
      cached = std::min(prediction->cached_tokens, p.prompt_tokens);
      written = std::min(prediction->write_5m_tokens, p.prompt_tokens - cached);
      written_1h = std::min(prediction->write_1h_tokens, p.prompt_tokens - cached - written);
    }
  } else if (options_.prefix_cache && !p.prefixes.empty()) {
    cached = std::min(prefix_.CachedTokens(ModelId(&spec), p.prefixes, clock_.NowSeconds()),
                      p.prompt_tokens);
    // Anthropic bills the prefix it writes at the write price; OpenAI-style caching is free.
    if (spec.provider == "anthropic") {
      written = std::max<int64_t>(0, prefix_.CacheableTokens(p.prefixes) - cached);
    }
  }
  cost::Usage usage;
  usage.cached_input_tokens = cached;
  usage.cache_write_5m_tokens = written;
  usage.cache_write_1h_tokens = written_1h;
  usage.input_tokens = std::max<int64_t>(0, p.prompt_tokens - cached - written - written_1h);
  usage.output_tokens = output_tokens;
  if (cached_out) *cached_out = cached;
  if (uncached_out) *uncached_out = cost::UncachedCostUsd(spec, usage);
  return cost::CostUsd(spec, usage);
}

absl::StatusOr<RouteChoice> Simulation::Route(const Prepared& p,
                                              std::span<const double> predicted_quality,
                                              std::span<const double> predicted_output) {
  const TraceRecord& rec = p.rec;
  RouteChoice keep{rec.model, std::nullopt};
  auto allowed = [&](const std::string& name) {
    return options_.candidate_models.empty() ||
           std::find(options_.candidate_models.begin(), options_.candidate_models.end(), name) !=
               options_.candidate_models.end();
  };
  switch (options_.routing) {
    case RoutingMode::kKeep:
      return keep;
    case RoutingMode::kModel: {
      // The router's rule: the cheapest eligible model whose predicted quality meets the
      // threshold; if none does, the highest predicted quality. Costs use the predicted output
      // length and the simulated prompt cache.
      std::vector<double> own_quality, own_output;
      if (predicted_quality.empty()) {  // skipped on the workers as a likely exact hit
        const size_t m = options_.model->models().size();
        own_quality.resize(m);
        own_output.resize(m);
        THRIFTY_RETURN_IF_ERROR(options_.model->Predict(std::span<const json>(&rec.request, 1),
                                                        own_quality, own_output));
        predicted_quality = own_quality;
        predicted_output = own_output;
      }
      const catalog::ModelSpec* best = nullptr;
      const catalog::ModelSpec* top = nullptr;
      double best_cost = 0, best_q = 0, top_q = -1, top_cost = 0;
      for (size_t j = 0; j < model_columns_.size() && j < predicted_quality.size(); ++j) {
        const catalog::ModelSpec* spec = model_columns_[j];
        if (spec == nullptr || spec->deprecated || !allowed(spec->name)) continue;
        const double q = predicted_quality[j];
        const auto out = static_cast<int64_t>(std::llround(std::max(0.0, predicted_output[j])));
        const double c = PolicyCost(*spec, p, out, nullptr, nullptr);
        if (q > top_q || (q == top_q && c < top_cost)) {
          top = spec;
          top_q = q;
          top_cost = c;
        }
        if (q < options_.quality_threshold) continue;
        if (best == nullptr || c < best_cost || (c == best_cost && q > best_q)) {
          best = spec;
          best_cost = c;
          best_q = q;
        }
      }
      if (best == nullptr) {
        best = top;
        best_q = top_q;
      }
      if (best == nullptr) return keep;
      return RouteChoice{best->name, best_q};
    }
    case RoutingMode::kHook: {
      auto cached = [&](const catalog::ModelSpec& spec) -> int64_t {
        if (!options_.prefix_cache || p.prefixes.empty()) return 0;
        const catalog::ModelSpec* own = Find(spec.name);
        if (own == nullptr) return 0;
        return prefix_.CachedTokens(ModelId(own), p.prefixes, clock_.NowSeconds());
      };
      return options_.hook->Route(rec, p.prompt_tokens, cached);
    }
    case RoutingMode::kLabels:
    case RoutingMode::kPriors:
      break;
  }
  const std::string category = rec.category.empty() ? "chat" : rec.category;
  std::vector<std::pair<const catalog::ModelSpec*, double>> candidates;  // (spec, quality)
  auto consider = [&](const std::string& name, std::optional<double> label_quality) {
    const catalog::ModelSpec* spec = Find(name);
    if (spec == nullptr || (spec->deprecated && name != rec.model) || !allowed(spec->name)) return;
    std::optional<double> q = label_quality;
    if (options_.routing == RoutingMode::kPriors) {
      auto it = spec->quality.find(category);
      q = it == spec->quality.end() ? std::nullopt : std::optional<double>(it->second);
    }
    if (q) candidates.emplace_back(spec, *q);
  };
  if (options_.routing == RoutingMode::kLabels || !rec.labels.empty() ||
      !options_.candidate_models.empty()) {
    if (options_.routing == RoutingMode::kPriors && !options_.candidate_models.empty()) {
      for (const std::string& name : options_.candidate_models) consider(name, std::nullopt);
    } else {
      for (const auto& [name, label] : rec.labels) consider(name, label.quality);
    }
  } else {
    for (const catalog::ModelSpec& spec : catalog_.models()) consider(spec.name, std::nullopt);
  }
  const catalog::ModelSpec* best = nullptr;
  double best_cost = 0, best_quality = 0;
  for (const auto& [spec, q] : candidates) {
    if (q < options_.quality_threshold) continue;
    const double c = PolicyCost(*spec, p, OutputTokens(p, spec->name), nullptr, nullptr);
    if (best == nullptr || c < best_cost || (c == best_cost && q > best_quality)) {
      best = spec;
      best_cost = c;
      best_quality = q;
    }
  }
  if (best == nullptr) return keep;  // nothing meets the bar: the logged model
  RouteChoice choice{best->name, std::nullopt};
  if (options_.routing == RoutingMode::kPriors) choice.predicted_quality = best_quality;
  return choice;
}

void Simulation::Bucket(double ts, double baseline, double cost, int hit_kind) {
  BucketAgg& b = buckets_[static_cast<int64_t>(std::floor(ts / options_.bucket_seconds))];
  ++b.requests;
  b.baseline_usd += baseline;
  b.cost_usd += cost;
  if (hit_kind == 1) ++b.exact_hits;
  if (hit_kind == 2) ++b.semantic_hits;
}

absl::Status Simulation::ToLedger(const TraceRecord& rec, std::string_view model,
                                  const cost::Usage& usage, double cost_usd,
                                  cost::CacheOutcome outcome,
                                  std::initializer_list<cost::Saving> savings) {
  if (options_.ledger == nullptr) return absl::OkStatus();
  ledger_tags_.clear();
  if (!rec.ns.empty()) ledger_tags_.push_back({"namespace", rec.ns});
  for (const auto& [key, value] : rec.tags) ledger_tags_.push_back({key, value});
  cost::CallRecord call;
  call.model = model;
  call.usage = usage;
  call.tags = ledger_tags_;
  call.cost_usd = cost_usd;
  call.cache = outcome;
  call.savings = absl::Span<const cost::Saving>(savings.begin(), savings.size());
  call.ts = rec.ts;
  absl::StatusOr<double> recorded = options_.ledger->Record(call);
  if (!recorded.ok()) {
    return absl::Status(
        recorded.status().code(),
        StrCat("ledger: record '", rec.id, "' (ts ", rec.ts, "): ", recorded.status().message()));
  }
  return absl::OkStatus();
}

absl::Status Simulation::Step(Prepared& p, std::span<const float> vector,
                              std::span<const double> predicted_quality,
                              std::span<const double> predicted_output) {
  TraceRecord& rec = p.rec;
  ++records_;
  if (!clock_.Advance(rec.ts)) ++out_of_order_;
  const double now = clock_.NowSeconds();

  // Baseline: what the logged call paid.
  const catalog::ModelSpec* logged = Find(rec.model);
  const ModelLabel* logged_label = rec.Label(rec.model);
  double baseline = 0;
  bool priced = true;
  if (logged != nullptr && rec.usage) {
    baseline = cost::CostUsd(*logged, *rec.usage);
    cached_baseline_ += rec.usage->cached_input_tokens;
  } else if (logged_label != nullptr && logged_label->cost_usd) {
    baseline = *logged_label->cost_usd;
  } else if (logged != nullptr && logged_label != nullptr && logged_label->output_tokens) {
    cost::Usage usage;
    usage.input_tokens = p.prompt_tokens;
    usage.output_tokens = *logged_label->output_tokens;
    baseline = cost::CostUsd(*logged, usage);
  } else {
    priced = false;
    ++unpriced_;
  }
  if (logged == nullptr && unknown_models_.size() < 20) unknown_models_.insert(rec.model);
  prompt_tokens_ += p.prompt_tokens;
  baseline_usd_ += baseline;
  Money& bm = baseline_mix_[rec.model];
  bm.requests += 1;
  bm.cost_usd += baseline;
  const std::optional<double> baseline_quality =
      logged_label ? logged_label->quality : std::nullopt;
  const std::string& ns = rec.ns;
  const std::string& exact_key = p.exact_key;

  auto count_quality = [&](std::optional<double> served) {
    if (baseline_quality && served) {
      baseline_quality_sum_ += *baseline_quality;
      policy_quality_sum_ += *served;
      ++quality_n_;
    }
  };

  // 1. Exact cache.
  if (exact_ != nullptr) {
    if (auto hit = exact_->Get(ns, exact_key)) {
      ++exact_hits_;
      save_exact_ += baseline;
      count_quality(DecodeQuality(hit->value));
      mix_["(exact cache)"].requests += 1;
      Bucket(rec.ts, baseline, 0.0, 1);
      return ToLedger(rec, rec.model, cost::Usage{}, 0.0, cost::CacheOutcome::kExactHit,
                      {{"exact_cache", baseline}});
    }
  }
  // 2. Semantic cache.
  const bool use_semantic =
      semantic_ != nullptr && !vector.empty() && !p.query.empty() &&
      (options_.semantic_namespaces.empty() ||
       std::find(options_.semantic_namespaces.begin(), options_.semantic_namespaces.end(), ns) !=
           options_.semantic_namespaces.end());
  if (use_semantic) {
    auto hit = SemanticLookup(p, vector);
    if (!hit.ok()) return hit.status();
    if (hit->has_value()) {
      const cache::SemanticHit& h = **hit;
      Answer answer = DecodeAnswer(h.value.data);
      std::optional<double> served = answer.quality;
      bool mismatch = false;
      if (!rec.intent.empty() && !answer.intent.empty()) {
        ++semantic_checked_hits_;
        if (rec.intent != answer.intent) {
          mismatch = true;
          ++semantic_false_hits_;
          served = 0.0;  // a different question got this answer
        }
      }
      ++semantic_hits_;
      save_semantic_ += baseline;
      count_quality(served);
      mix_["(semantic cache)"].requests += 1;
      Bucket(rec.ts, baseline, 0.0, 2);
      // Reservoir sample (Algorithm R) of hits for a person to audit.
      ++audit_seen_;
      json item = {{"id", rec.id},
                   {"ts", rec.ts},
                   {"namespace", ns},
                   {"query", p.query},
                   {"matched_query", h.matched_query},
                   {"matched_id", answer.id},
                   {"similarity", h.similarity}};
      if (!rec.intent.empty() && !answer.intent.empty()) item["same_intent"] = !mismatch;
      if (audit_.size() < options_.audit_sample_size) {
        audit_.push_back(std::move(item));
      } else if (options_.audit_sample_size > 0) {
        const uint64_t j = SplitMix(rng_) % static_cast<uint64_t>(audit_seen_);
        if (j < options_.audit_sample_size) audit_[j] = std::move(item);
      }
      return ToLedger(rec, rec.model, cost::Usage{}, 0.0, cost::CacheOutcome::kSemanticHit,
                      {{"semantic_cache", baseline}});
    }
  }

  // 3. Routing.
  THRIFTY_ASSIGN_OR_RETURN(RouteChoice choice, Route(p, predicted_quality, predicted_output));
  const catalog::ModelSpec* chosen = Find(choice.model);
  if (chosen == nullptr) {
    if (options_.routing == RoutingMode::kHook) {
      return absl::InvalidArgumentError(StrCat("router '", options_.hook->name(), "' chose '",
                                               choice.model, "', which is not in the catalog"));
    }
    if (options_.routing == RoutingMode::kModel) {
      return absl::InvalidArgumentError(StrCat("router '", options_.model->name(), "' chose '",
                                               choice.model, "', which is not in the catalog"));
    }
    chosen = logged;
  }

  // 4. Cost on the chosen model.
  double policy = baseline;
  double at_logged_caching = baseline;  // the chosen model with the logged prompt-cache reads
  std::string served_by = rec.model;
  cost::Usage paid;  // what the policy's call sent and received (for the ledger)
  if (rec.usage) paid = *rec.usage;
  if (chosen != nullptr && priced) {
    served_by = chosen->name;
    const bool same = chosen == logged;
    int64_t output_tokens = 0;
    if (same && rec.usage) {
      output_tokens = rec.usage->output_tokens;
    } else {
      output_tokens = OutputTokens(p, chosen->name);
      const ModelLabel* label = rec.Label(chosen->name);
      if (label == nullptr || !label->output_tokens) ++output_assumed_;
    }
    const int64_t logged_cached = rec.usage ? rec.usage->cached_input_tokens : 0;
    if (!(same && rec.usage)) {
      at_logged_caching = PolicyCost(*chosen, p, output_tokens, nullptr, nullptr, logged_cached);
    }
    int64_t cached = logged_cached;
    if (options_.prefix_cache) {
      policy = PolicyCost(*chosen, p, output_tokens, &cached, nullptr);
      if (tracker_ != nullptr) {
        cost::Usage sent;
        sent.input_tokens = p.prompt_tokens - cached;
        sent.cached_input_tokens = cached;
        sent.output_tokens = output_tokens;
        (void)tracker_->Observe("", chosen->name, rec.request, sent, now);
      } else {
        prefix_.Observe(ModelId(chosen), p.prefixes, now);
      }
    } else {
      policy = at_logged_caching;  // no prompt-cache lever: the logged caching level
    }
    cached_policy_ += cached;
    if (!same) ++routed_;
    paid = cost::Usage{};
    paid.input_tokens = std::max<int64_t>(0, p.prompt_tokens - cached);
    paid.cached_input_tokens = cached;
    paid.output_tokens = output_tokens;
  }
  cost_usd_ += policy;
  save_routing_ += baseline - at_logged_caching;
  save_prefix_ += at_logged_caching - policy;
  Money& m = mix_[served_by];
  m.requests += 1;
  m.cost_usd += policy;
  Bucket(rec.ts, baseline, policy, 0);
  if (options_.ledger != nullptr) {
    THRIFTY_RETURN_IF_ERROR(ToLedger(
        rec, served_by, paid, policy,
        exact_ != nullptr || use_semantic ? cost::CacheOutcome::kMiss : cost::CacheOutcome::kNone,
        {{"routing", baseline - at_logged_caching}, {"prefix_cache", at_logged_caching - policy}}));
  }

  std::optional<double> served_quality;
  if (const ModelLabel* label = rec.Label(served_by); label && label->quality) {
    served_quality = label->quality;
  } else if (choice.predicted_quality && served_by == choice.model) {
    served_quality = choice.predicted_quality;
    ++predicted_quality_;
  }
  count_quality(served_quality);

  // 5. Store the answer.
  if (use_semantic) {
    cache::SemanticValue value;
    value.data = EncodeAnswer(served_quality, rec.intent, rec.id);
    value.model = served_by;
    value.cost_usd = policy;
    THRIFTY_RETURN_IF_ERROR(SemanticInsert(p, vector, std::move(value)));
  }
  if (exact_ != nullptr) {
    // An exact hit needs only the answer's quality (it is the same question): the entry stays
    // small, since the exact cache holds up to a million of them.
    cache::EntryMetadata meta;
    meta.cost_usd = policy;
    THRIFTY_RETURN_IF_ERROR(exact_->Put(ns, exact_key, EncodeQuality(served_quality),
                                        cache::ValueKind::kText, std::move(meta)));
  }
  return absl::OkStatus();
}

namespace {

// L2-normalized, as cache::SemanticCache stores and searches vectors.
void NormalizeInto(std::span<const float> vector, std::vector<float>& out) {
  double norm = 0.0;
  for (float v : vector) norm += static_cast<double>(v) * v;
  out.assign(vector.begin(), vector.end());
  if (norm > 0.0) {
    const auto scale = static_cast<float>(1.0 / std::sqrt(norm));
    for (float& v : out) v *= scale;
  }
}

}  // namespace

absl::StatusOr<std::optional<cache::SemanticHit>> Simulation::SemanticLookup(
    const Prepared& p, std::span<const float> vector) {
  const std::string& ns = p.rec.ns;
  const int64_t since = p.presearch_inserts;
  const absl::Time now = clock_.Now();
  const std::optional<absl::Duration> ttl =
      options_.semantic_ttl_seconds ? std::optional(absl::Seconds(*options_.semantic_ttl_seconds))
                                    : std::nullopt;
  auto expired = [&](absl::Time created_at) { return ttl && created_at + *ttl <= now; };
  // The lookahead can be trusted when every insert made since is at hand (recent_) and none of
  // them evicted an entry: then the cache now holds what it held then, plus those inserts, minus
  // entries that expired (checked by time) or were replaced (Contains).
  const bool usable = p.presearched && since >= inserts_ - static_cast<int64_t>(recent_.size()) &&
                      last_evicting_insert_ < since &&
                      (!p.presearch || (!expired(p.presearch->created_at) &&
                                        semantic_->Contains(p.presearch->entry_id)));
  if (!usable) {
    if (p.presearched) ++lookahead_redone_;
    return semantic_->GetVector(vector, p.context, ns);
  }
  ++lookahead_used_;
  std::optional<cache::SemanticHit> best = p.presearch;
  if (since < inserts_) {
    thread_local std::vector<float> query;
    NormalizeInto(vector, query);
    const size_t dim = query.size();
    // Newest first: of two entries for the same question, the cache holds the newer.
    for (auto it = recent_.rbegin(); it != recent_.rend() && it->seq >= since; ++it) {
      if (it->ns != ns || it->context != p.context || expired(it->created_at)) continue;
      const float similarity =
          std::min(simd::InnerProduct(query.data(), it->vector.data(), dim), 1.0f);
      if (similarity < options_.semantic_threshold) continue;
      if (!best || similarity > best->similarity) {
        best = cache::SemanticHit{it->value, similarity, it->query, it->created_at, it->entry_id};
      }
    }
  }
  // Count the lookup (and mark the entry used) now, in trace order, as GetVector would.
  semantic_->RecordLookup(best ? std::optional<uint64_t>(best->entry_id) : std::nullopt);
  return best;
}

absl::Status Simulation::SemanticInsert(const Prepared& p, std::span<const float> vector,
                                        cache::SemanticValue value) {
  RecentInsert recent;
  const bool lookahead = ahead_ != nullptr && ahead_->semantic != nullptr;
  if (lookahead) {
    recent.seq = inserts_;
    recent.ns = p.rec.ns;
    recent.context = p.context;
    NormalizeInto(vector, recent.vector);
    recent.query = p.query;
    recent.value = value;
    recent.created_at = clock_.Now();
    ahead_->SetWriting(true);
  }
  absl::Status status =
      semantic_->PutVector(vector, p.query, std::move(value), p.context, p.rec.ns);
  if (!lookahead) return status;
  ahead_->SetWriting(false);
  THRIFTY_RETURN_IF_ERROR(status);
  recent.entry_id = semantic_->EntryId(p.query, p.context, p.rec.ns).value_or(0);
  const uint64_t evictions = semantic_->evictions();
  if (evictions != evictions_seen_) {
    evictions_seen_ = evictions;
    last_evicting_insert_ = inserts_;
  }
  recent_.push_back(std::move(recent));
  if (recent_.size() > kRecentInserts) recent_.pop_front();
  ++inserts_;
  ahead_->inserts.store(inserts_, std::memory_order_release);
  return absl::OkStatus();
}

json Simulation::Result() const {
  json r = json::object();
  const double n = std::max<double>(1.0, static_cast<double>(records_));
  r["requests"] = records_;
  r["baseline_cost_usd"] = baseline_usd_;
  r["cost_usd"] = cost_usd_;
  r["savings_usd"] = baseline_usd_ - cost_usd_;
  r["savings_pct"] = baseline_usd_ > 0 ? 100.0 * (baseline_usd_ - cost_usd_) / baseline_usd_ : 0.0;
  r["savings_by_lever"] = {{"exact", save_exact_},
                           {"semantic", save_semantic_},
                           {"routing", save_routing_},
                           {"prefix_cache", save_prefix_}};
  r["exact_hits"] = exact_hits_;
  r["semantic_hits"] = semantic_hits_;
  r["exact_hit_rate"] = static_cast<double>(exact_hits_) / n;
  r["semantic_hit_rate"] = static_cast<double>(semantic_hits_) / n;
  r["semantic_hits_checked"] = semantic_checked_hits_;
  r["semantic_false_hits"] = semantic_false_hits_;
  r["routed_requests"] = routed_;
  r["prompt_tokens"] = prompt_tokens_;
  r["cached_prompt_tokens_baseline"] = cached_baseline_;
  r["cached_prompt_tokens_policy"] = cached_policy_;
  if (quality_n_ > 0 && baseline_quality_sum_ > 0) {
    r["quality_retained"] = policy_quality_sum_ / baseline_quality_sum_;
    r["baseline_quality_mean"] = baseline_quality_sum_ / static_cast<double>(quality_n_);
    r["policy_quality_mean"] = policy_quality_sum_ / static_cast<double>(quality_n_);
  } else {
    r["quality_retained"] = nullptr;
    r["baseline_quality_mean"] = nullptr;
    r["policy_quality_mean"] = nullptr;
  }
  r["quality_requests"] = quality_n_;
  r["quality_predicted_requests"] = predicted_quality_;
  r["quality_source"] = quality_n_ == 0                    ? "none"
                        : predicted_quality_ == 0          ? "labels"
                        : predicted_quality_ >= quality_n_ ? "predicted"
                                                           : "labels+predicted";
  json mix = json::object();
  for (const auto& [model, money] : mix_) {
    mix[model] = {{"requests", static_cast<int64_t>(money.requests)}, {"cost_usd", money.cost_usd}};
  }
  r["model_mix"] = std::move(mix);
  json bmix = json::object();
  for (const auto& [model, money] : baseline_mix_) {
    bmix[model] = {{"requests", static_cast<int64_t>(money.requests)},
                   {"cost_usd", money.cost_usd}};
  }
  r["baseline_model_mix"] = std::move(bmix);
  json buckets = json::array();
  for (const auto& [index, b] : buckets_) {
    buckets.push_back({{"start", static_cast<double>(index) * options_.bucket_seconds},
                       {"requests", b.requests},
                       {"exact_hits", b.exact_hits},
                       {"semantic_hits", b.semantic_hits},
                       {"baseline_cost_usd", b.baseline_usd},
                       {"cost_usd", b.cost_usd}});
  }
  r["buckets"] = std::move(buckets);
  r["audit_sample"] = audit_;
  json warnings = json::array();
  if (!unknown_models_.empty()) {
    std::string names;
    for (const std::string& name : unknown_models_)
      StrAppend(&names, names.empty() ? "" : ", ", name);
    warnings.push_back(StrCat("models not in the catalog (their calls were not routed): ", names));
  }
  if (unpriced_ > 0) {
    warnings.push_back(StrCat(unpriced_,
                              " requests could not be priced (no usage, no cost label and no "
                              "catalog price for the logged model); counted at $0"));
  }
  if (output_assumed_ > 0) {
    warnings.push_back(StrCat(output_assumed_,
                              " routed requests had no output_tokens label for the chosen model; "
                              "the logged output length was assumed"));
  }
  if (out_of_order_ > 0) {
    warnings.push_back(StrCat(out_of_order_,
                              " requests had a ts earlier than the one before; the simulated "
                              "clock kept the later time"));
  }
  if (invalid > 0) {
    std::string examples;
    for (const std::string& e : invalid_examples) StrAppend(&examples, "\n  ", e);
    warnings.push_back(StrCat(invalid, " invalid lines skipped:", examples));
  }
  r["warnings"] = std::move(warnings);
  r["invalid_lines"] = invalid;
  r["prefix_cache_entries"] = tracker_ ? tracker_->size() : prefix_.size();
  r["semantic_lookahead"] = {{"used", lookahead_used_}, {"redone", lookahead_redone_}};
  r["prefix_model"] = tracker_ ? "tracker" : "sim";
  return r;
}

const char* RoutingName(RoutingMode mode) {
  switch (mode) {
    case RoutingMode::kKeep:
      return "keep";
    case RoutingMode::kLabels:
      return "labels";
    case RoutingMode::kPriors:
      return "priors";
    case RoutingMode::kHook:
    case RoutingMode::kModel:
      return "router";
  }
  return "?";
}

class RouterModel final : public QualityModel {
 public:
  explicit RouterModel(std::shared_ptr<const route::Router> router) : router_(std::move(router)) {
    for (const catalog::ModelSpec& spec : router_->catalog().models()) names_.push_back(spec.name);
  }
  std::string name() const override { return StrCat("router(", router_->predictor_kind(), ")"); }
  const std::vector<std::string>& models() const override { return names_; }
  absl::Status Predict(std::span<const json> requests, std::span<double> quality,
                       std::span<double> output_tokens) const override {
    return router_->Predict(requests, quality, output_tokens);
  }

 private:
  std::shared_ptr<const route::Router> router_;
  std::vector<std::string> names_;
};

}  // namespace

std::shared_ptr<const QualityModel> RouterQualityModel(
    std::shared_ptr<const route::Router> router) {
  return std::make_shared<RouterModel>(std::move(router));
}

absl::StatusOr<json> Replay(const std::string& path, const catalog::Catalog& catalog,
                            const ReplayOptions& options) {
  if (options.routing == RoutingMode::kHook && options.hook == nullptr) {
    return absl::InvalidArgumentError("replay: routing mode 'router' needs a router");
  }
  if (options.routing == RoutingMode::kModel && options.model == nullptr) {
    return absl::InvalidArgumentError("replay: routing mode 'router' needs a router");
  }
  if (!(options.quality_threshold >= 0 && options.quality_threshold <= 1)) {
    return absl::InvalidArgumentError(
        StrCat("replay: quality_threshold must be in [0, 1], got ", options.quality_threshold));
  }
  if (!(options.bucket_seconds > 0)) {
    return absl::InvalidArgumentError("replay: bucket_seconds must be > 0");
  }
  if (options.batch_size == 0) return absl::InvalidArgumentError("replay: batch_size must be > 0");
  for (const std::string& name : options.candidate_models) {
    if (catalog.Find(name) == nullptr) {
      return absl::InvalidArgumentError(
          StrCat("replay: candidate model '", name, "' is not in the catalog"));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  THRIFTY_ASSIGN_OR_RETURN(std::unique_ptr<LineReader> reader, LineReader::Open(path));

  std::shared_ptr<const embed::Embedder> embedder = options.embedder;
  if (embedder == nullptr && options.semantic) {
    THRIFTY_ASSIGN_OR_RETURN(auto hashing, embed::HashingEmbedder::Create());
    embedder = std::move(hashing);
  }

  SimClock clock;
  std::unique_ptr<cache::ExactCache> exact;
  if (options.exact) {
    cache::ExactCacheOptions eo;
    eo.max_entries = options.exact_max_entries;
    if (options.exact_ttl_seconds) eo.default_ttl = absl::Seconds(*options.exact_ttl_seconds);
    eo.clock = &clock;
    THRIFTY_ASSIGN_OR_RETURN(exact, cache::ExactCache::Create(eo));
  }
  std::unique_ptr<cache::SemanticCache> semantic;
  if (options.semantic) {
    cache::SemanticCacheOptions so;
    so.threshold = options.semantic_threshold;
    so.max_entries = options.semantic_max_entries;
    if (options.semantic_ttl_seconds) so.default_ttl = absl::Seconds(*options.semantic_ttl_seconds);
    so.ann_min_entries = options.semantic_ann_min_entries;
    so.hnsw_ef_construction = options.semantic_hnsw_ef_construction;
    so.clock = clock.Function();
    THRIFTY_ASSIGN_OR_RETURN(semantic, cache::SemanticCache::Create(embedder->dim(), so, embedder));
  }

  size_t workers = options.threads > 0 ? static_cast<size_t>(options.threads)
                                       : std::max(1u, std::thread::hardware_concurrency());
  const size_t in_flight =
      options.max_batches_in_flight > 0 ? options.max_batches_in_flight : 2 * workers + 2;
  const int64_t file_size = reader->file_size();
  // Semantic lookups run ahead on the workers (Lookahead).
  Lookahead ahead;
  ahead.semantic = semantic.get();
  ahead.exact = exact.get();
  if (!options.semantic_lookahead) ahead.semantic = nullptr;
  Simulation sim(catalog, options, clock, exact.get(), semantic.get(), &ahead);
  int64_t bytes = 0;
  int64_t next_progress = options.progress_every;
  {
    Pipeline pipeline(path, options, embedder.get(), &ahead, std::move(reader), workers, in_flight);
    while (true) {
      THRIFTY_ASSIGN_OR_RETURN(std::unique_ptr<Batch> batch, pipeline.Next());
      if (batch == nullptr) break;
      if (!batch->error.ok()) return batch->error;
      const size_t dim = embedder ? embedder->dim() : 0;
      for (Prepared& p : batch->records) {
        if (!p.valid) {
          if (!options.skip_invalid) return absl::InvalidArgumentError(p.error);
          ++sim.invalid;
          if (sim.invalid_examples.size() < 5) sim.invalid_examples.push_back(p.error);
          continue;
        }
        std::span<const float> vector;
        if (p.vector_row >= 0) {
          vector = std::span<const float>(batch->vectors).subspan(p.vector_row * dim, dim);
        }
        std::span<const double> pq, po;
        if (p.model_row >= 0) {
          const size_t m = options.model->models().size();
          pq = std::span<const double>(batch->predicted_quality).subspan(p.model_row * m, m);
          po = std::span<const double>(batch->predicted_output).subspan(p.model_row * m, m);
        }
        THRIFTY_RETURN_IF_ERROR(sim.Step(p, vector, pq, po));
        if (options.progress && sim.records() >= next_progress) {
          next_progress += options.progress_every;
          if (!options.progress(sim.records(), batch->bytes_after, file_size)) {
            return absl::CancelledError("replay: cancelled by the progress callback");
          }
        }
      }
      bytes = batch->bytes_after;
      pipeline.Recycle(std::move(batch));
    }
  }
  if (options.progress) options.progress(sim.records(), bytes, file_size);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  json result = sim.Result();
  result["routing"] = RoutingName(options.routing);
  if (options.routing == RoutingMode::kHook) result["router"] = options.hook->name();
  if (options.routing == RoutingMode::kModel) result["router"] = options.model->name();
  result["quality_threshold"] = options.quality_threshold;
  result["semantic_threshold"] =
      options.semantic ? json(options.semantic_threshold) : json(nullptr);
  result["exact_enabled"] = options.exact;
  result["semantic_enabled"] = options.semantic;
  result["prefix_cache_enabled"] = options.prefix_cache;
  json stats = json::object();
  stats["elapsed_s"] = elapsed;
  stats["requests_per_s"] = elapsed > 0 ? static_cast<double>(sim.records()) / elapsed : 0.0;
  stats["bytes"] = bytes;
  stats["threads"] = workers;
  stats["batch_size"] = options.batch_size;
  stats["max_batches_in_flight"] = in_flight;
  if (embedder) stats["embedder"] = embedder->name();
  if (exact) {
    const auto es = exact->Stats();
    stats["exact_cache"] = {{"entries", es.entries},
                            {"evictions", es.evictions},
                            {"expirations", es.expirations},
                            {"bytes", es.bytes}};
  }
  if (semantic) {
    const auto ss = semantic->stats();
    stats["semantic_cache"] = {{"entries", ss.entries},         {"evictions", ss.evictions},
                               {"expirations", ss.expirations}, {"scopes", ss.scopes},
                               {"ann_scopes", ss.ann_scopes},   {"bytes", ss.bytes}};
  }
  result["stats"] = std::move(stats);
  return result;
}

}  // namespace thrifty::replay
