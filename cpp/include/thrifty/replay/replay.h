// Replay: streams a logged trace through a cost policy -- exact cache, semantic cache, router,
// prompt (prefix) cache -- on a simulated clock, and measures what the policy would have paid
// against what was paid.
//
// Pipeline (bounded memory): a reader thread cuts the file into batches of raw lines; worker
// threads parse and check each batch (simdjson; no nlohmann DOM unless an API needs the
// request), compute request keys, context keys, token counts and prefix chains, embed the final
// user messages of the semantic namespaces (one EmbedBatch per batch) and look them up in the
// semantic cache ahead of time (ReplayOptions::semantic_lookahead); the calling thread consumes
// the batches in file order and runs the simulation. At most
// `max_batches_in_flight` batches exist at once, so memory is O(batch_size * in-flight) for the
// pipeline plus what the caches hold (bounded by their own limits and TTLs).
//
// Per request, in trace order, with the clock at the request's ts:
//   1. exact cache (key: namespace + canonical request): hit -> cost 0;
//   2. semantic cache (scope: namespace + the request without its final user message): hit ->
//      cost 0; the hit is reservoir-sampled for a human audit;
//   3. routing: the model the policy would call (see RoutingMode);
//   4. cost on that model: prompt tokens, output tokens (from the model's label when the trace
//      has one, else what the logged call produced), prompt-cache reads predicted by the prefix
//      cache simulation (writes at the write price for Anthropic models);
//   5. the answer is stored in both caches.
// Savings by lever add up exactly to baseline - policy cost:
//   exact / semantic: the baseline cost of the requests they answered;
//   routing: the logged cost - the routed model's cost with the prompt-cache reads the logged
//   call had (so the lever is measured at the logged caching level);
//   prefix_cache: the routed model's cost at the logged caching level - its cost with the
//   reads the prefix cache simulation predicts (negative when the policy caches less than the
//   logged traffic did, e.g. after moving a conversation to a model whose cache is cold).
//
// Thread-safety: Replay() is reentrant; a RoutingHook is called from the simulation thread only.
#ifndef THRIFTY_REPLAY_REPLAY_H_
#define THRIFTY_REPLAY_REPLAY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "thrifty/catalog/catalog.h"
#include "thrifty/cost/ledger.h"
#include "thrifty/embed/embedder.h"
#include "thrifty/replay/prefix_cache_sim.h"
#include "thrifty/replay/trace_record.h"
#include "thrifty/route/router.h"

namespace thrifty::replay {

enum class RoutingMode {
  kKeep,    // every request goes to the model it was logged with
  kLabels,  // label oracle: the cheapest labelled model whose labelled quality meets the
            // threshold (an upper bound on what a router can do: it knows the answers)
  kPriors,  // the cheapest candidate whose catalog prior for tags.category meets the threshold
  kHook,    // a RoutingHook called per request on the simulation thread
  kModel,   // a QualityModel (the trained thrifty::route::Router): batch predictions on the
            // worker threads, then the cheapest eligible model meeting the threshold, priced
            // with replay's prefix-cache-aware cost model
};

// What a router decided for one request.
struct RouteChoice {
  std::string model;
  std::optional<double> predicted_quality;
};

// A pluggable router: replay calls it for every request that reaches routing. `cached_tokens`
// gives, per catalog model, the prompt tokens the prefix cache simulation expects to be served
// from cache, so a prefix-aware router can price models as production would.
class RoutingHook {
 public:
  virtual ~RoutingHook() = default;
  virtual std::string name() const = 0;
  virtual absl::StatusOr<RouteChoice> Route(
      const TraceRecord& record, int64_t prompt_tokens,
      const std::function<int64_t(const catalog::ModelSpec&)>& cached_tokens) = 0;
};

// Per-model quality and output-token predictions, in batches (run on the worker threads ahead
// of the simulation). Implementations must be thread-safe.
class QualityModel {
 public:
  virtual ~QualityModel() = default;
  virtual std::string name() const = 0;
  // The models, in the column order of Predict's outputs.
  virtual const std::vector<std::string>& models() const = 0;
  // Row i of the [n x models().size()] outputs is requests[i].
  virtual absl::Status Predict(std::span<const nlohmann::json> requests, std::span<double> quality,
                               std::span<double> output_tokens) const = 0;
};

// A QualityModel over a trained router (its predictor; replay applies the routing rule).
std::shared_ptr<const QualityModel> RouterQualityModel(std::shared_ptr<const route::Router> router);

struct ReplayOptions {
  // Caches.
  bool exact = true;
  std::optional<double> exact_ttl_seconds;  // none: never expires
  std::optional<int64_t> exact_max_entries = 1'000'000;
  bool semantic = true;
  double semantic_threshold = 0.90;
  std::optional<double> semantic_ttl_seconds = 86400.0;
  std::optional<size_t> semantic_max_entries = 200'000;
  size_t semantic_ann_min_entries = 2048;
  // Lower than the cache's default (160): a replay inserts every miss, and 40 keeps recall@1
  // at ~0.96 (cache/semantic_cache.h) for a fraction of the insertion cost.
  int semantic_hnsw_ef_construction = 40;
  // Namespaces whose requests use the semantic cache (empty: all). Templated prompts that
  // differ only in numbers or names (math, code) are where a semantic cache answers the wrong
  // question; production policies usually enable it per app.
  std::vector<std::string> semantic_namespaces;
  std::shared_ptr<const embed::Embedder> embedder;  // null: HashingEmbedder(dim 256)
  // Make each semantic lookup ahead of time on the worker threads, against the live cache, and
  // have the simulation thread check only the entries inserted since (and redo the lookup when
  // an entry it relied on was evicted or replaced meanwhile). The results are those of looking
  // up in trace order, but for the approximate index's own variation; false: look up on the
  // simulation thread.
  bool semantic_lookahead = true;

  // Routing.
  RoutingMode routing = RoutingMode::kLabels;
  double quality_threshold = 0.80;
  std::vector<std::string> candidate_models;  // kPriors / kLabels: restrict to these (empty: all)
  RoutingHook* hook = nullptr;                // kHook; not owned
  std::shared_ptr<const QualityModel> model;  // kModel

  // Prompt (prefix) cache.
  bool prefix_cache = true;
  PrefixCacheRules prefix_rules;
  // Use prompt::PrefixTracker -- the production tracker over the catalog's provider rules
  // (minimums, block sizes, TTLs, breakpoints) -- instead of PrefixCacheSim. A fresh tracker per
  // run, on the simulated clock. Slower (it lays out every candidate's prompt), and Anthropic
  // prompts read from cache only where the logged request has cache_control breakpoints.
  bool prefix_tracker = false;

  // Pipeline.
  int threads = 0;  // worker threads; 0: hardware concurrency
  size_t batch_size = 512;
  size_t max_batches_in_flight = 0;  // 0: 2 * threads + 2
  std::optional<int64_t> limit;      // stop after this many records
  bool skip_invalid = false;         // count and skip bad lines instead of failing

  // Report.
  size_t audit_sample_size = 50;
  uint64_t seed = 0;
  double bucket_seconds = 3600.0;
  // Called from the calling thread every `progress_every` records with (records, bytes read,
  // file size); returning false cancels the run (Cancelled).
  std::function<bool(int64_t, int64_t, int64_t)> progress;
  int64_t progress_every = 20000;

  // Spend accounting (not owned; may be null). Every simulated call is recorded into it once,
  // on the simulation thread: the model that served it (the logged model for cache hits), the
  // tokens and cost the policy paid, the trace's string-valued tags plus "namespace", the
  // cache outcome (exact / semantic / miss), the savings by lever (exact_cache,
  // semantic_cache, routing, prefix_cache) and ts = the trace's timestamp, so the ledger's
  // budgets, alerts, hourly buckets and anomaly detection run on trace time.
  cost::Ledger* ledger = nullptr;
};

// Runs the replay of the trace at `path`. The result is a JSON object documented in
// docs/replay.md (summary figures, savings_by_lever, model_mix, buckets, audit_sample, warnings).
// Errors: NotFound for a missing file, InvalidArgument naming file:line for a bad line (unless
// skip_invalid), InvalidArgument for bad options, Cancelled when progress returned false.
absl::StatusOr<nlohmann::json> Replay(const std::string& path, const catalog::Catalog& catalog,
                                      const ReplayOptions& options);

}  // namespace thrifty::replay

#endif  // THRIFTY_REPLAY_REPLAY_H_
