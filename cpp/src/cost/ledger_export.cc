// Ledger views and exports: snapshot dict, Prometheus text, OpenTelemetry attributes, JSONL
// lines, and the versioned save/load file.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "absl/time/time.h"
#include "ledger_state.h"
#include "thrifty/cost/ledger.h"

namespace thrifty::cost {
namespace {

constexpr std::string_view kFormat = "thrifty.ledger";
constexpr int kVersion = 1;

using json = nlohmann::json;

std::pair<std::string, std::string> SplitComposite(const std::string& composite) {
  const size_t sep = composite.find(kSep);
  return {composite.substr(0, sep), composite.substr(sep + 1)};
}

double Nano(int64_t nano) { return static_cast<double>(nano) * 1e-9; }

json AggregateView(const Aggregate& a) {
  json savings = json::object();
  for (const auto& [lever, nano] : a.savings_nano) savings[lever] = Nano(nano);
  json latency = {{"count", a.latency_s.count()}};
  if (a.latency_s.count() > 0) {
    latency["mean"] = a.latency_s.sum() / static_cast<double>(a.latency_s.count());
    latency["p50"] = a.latency_s.Quantile(0.5);
    latency["p95"] = a.latency_s.Quantile(0.95);
    latency["p99"] = a.latency_s.Quantile(0.99);
  } else {
    latency["mean"] = latency["p50"] = latency["p95"] = latency["p99"] = nullptr;
  }
  return {{"calls", a.calls},
          {"cost_usd", a.cost_usd()},
          {"input_tokens", a.tokens.input_tokens},
          {"cached_input_tokens", a.tokens.cached_input_tokens},
          {"cache_write_tokens", a.tokens.cache_write_5m_tokens + a.tokens.cache_write_1h_tokens},
          {"output_tokens", a.tokens.output_tokens},
          {"reasoning_tokens", a.tokens.reasoning_tokens},
          {"cache",
           {{"none", a.cache[0]},
            {"miss", a.cache[1]},
            {"exact", a.cache[2]},
            {"semantic", a.cache[3]}}},
          {"savings_usd", savings},
          {"latency_s", latency}};
}

// Lossless form for persistence.
json AggregateState(const Aggregate& a) {
  const Usage& t = a.tokens;
  return {{"calls", a.calls},
          {"cost_nano", a.cost_nano},
          {"tokens",
           {t.input_tokens, t.cached_input_tokens, t.cache_write_5m_tokens, t.cache_write_1h_tokens,
            t.output_tokens, t.reasoning_tokens}},
          {"cache", {a.cache[0], a.cache[1], a.cache[2], a.cache[3]}},
          {"savings_nano", a.savings_nano},
          {"latency_s", a.latency_s.ToJson()}};
}

absl::StatusOr<Aggregate> AggregateFromState(const json& j) {
  Aggregate a;
  a.calls = j.at("calls").get<int64_t>();
  a.cost_nano = j.at("cost_nano").get<int64_t>();
  const auto t = j.at("tokens").get<std::vector<int64_t>>();
  const auto c = j.at("cache").get<std::vector<int64_t>>();
  if (t.size() != 6 || c.size() != kCacheOutcomes) {
    return absl::DataLossError("an aggregate has the wrong number of token or cache counters");
  }
  a.tokens = Usage{t[0], t[1], t[2], t[3], t[4], t[5]};
  for (int i = 0; i < kCacheOutcomes; ++i) a.cache[i] = c[static_cast<size_t>(i)];
  for (const auto& [lever, nano] : j.at("savings_nano").items()) {
    a.savings_nano[lever] = nano.get<int64_t>();
  }
  auto sketch = QuantileSketch::FromJson(j.at("latency_s"));
  if (!sketch.ok()) return sketch.status();
  a.latency_s = *std::move(sketch);
  if (a.calls < 0 || a.cost_nano < 0 || !ValidateUsage(a.tokens).ok()) {
    return absl::DataLossError("an aggregate has negative counters");
  }
  return a;
}

// Prometheus number: shortest round-trip form; NaN / +Inf spelled as the format wants.
std::string PromNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

std::string PromEscape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class PromWriter {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  void Sample(std::string_view name,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              double value) {
    out_.append(name);
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        StrAppend(&out_, k, "=\"", PromEscape(v), "\"");
      }
      out_ += '}';
    }
    StrAppend(&out_, " ", PromNumber(value), "\n");
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Merged views.

namespace {

struct Merged {
  Aggregate total;
  std::map<std::string, Aggregate> by_model;
  std::map<std::string, Aggregate> by_tag;  // composite
  std::map<int64_t, Aggregate> by_time;
};

}  // namespace

Aggregate Ledger::MergedTotal() {
  Aggregate total;
  for (auto& shard : shards_) {
    MutexLock l(&shard->mu);
    total.Merge(shard->total);
  }
  return total;
}

nlohmann::json Ledger::Snapshot() {
  Merged m;
  for (auto& shard : shards_) {
    MutexLock l(&shard->mu);
    m.total.Merge(shard->total);
    for (const auto& [k, a] : shard->by_model) m.by_model[k].Merge(a);
    for (const auto& [k, a] : shard->by_tag) m.by_tag[k].Merge(a);
    for (const auto& [b, a] : shard->by_time) m.by_time[b].Merge(a);
  }
  json out;
  out["total_cost_usd"] = m.total.cost_usd();
  out["calls"] = m.total.calls;
  out["total"] = AggregateView(m.total);
  json by_model = json::object();
  for (const auto& [k, a] : m.by_model) by_model[k] = AggregateView(a);
  out["by_model"] = std::move(by_model);
  json by_tag = json::object();
  for (const auto& [k, a] : m.by_tag) {
    auto [key, value] = SplitComposite(k);
    by_tag[key][value] = AggregateView(a);
  }
  out["by_tag"] = std::move(by_tag);
  json by_time = json::array();
  const int64_t latest = latest_bucket_.load(std::memory_order_relaxed);
  for (const auto& [b, a] : m.by_time) {
    if (b <= latest - options_.max_time_buckets) continue;
    json row = AggregateView(a);
    row["start"] = static_cast<double>(b) * options_.bucket_seconds;
    row["end"] = static_cast<double>(b + 1) * options_.bucket_seconds;
    by_time.push_back(std::move(row));
  }
  out["by_time"] = std::move(by_time);
  json budgets = json::array();
  for (const BudgetStatus& b : Budgets()) {
    budgets.push_back({{"id", b.id},
                       {"tag", b.tag},
                       {"value", b.value},
                       {"limit_usd", b.limit_usd},
                       {"period", b.period},
                       {"hard", b.hard},
                       {"spent_usd", b.spent_usd},
                       {"reserved_usd", b.reserved_usd},
                       {"period_start", b.period_start},
                       {"period_end", b.period_end},
                       {"shared_usd", b.shared_usd ? json(*b.shared_usd) : json(nullptr)}});
  }
  out["budgets"] = std::move(budgets);
  out["alerts"] = Alerts().size();
  out["bucket_seconds"] = options_.bucket_seconds;
  out["dropped"] = {{"tags", dropped_tags_.load()}, {"time_records", dropped_time_records_.load()}};
  return out;
}

// ---------------------------------------------------------------------------------------------
// Prometheus.

std::string Ledger::Prometheus() {
  const json snap = Snapshot();
  PromWriter w;
  auto per_model = [&](std::string_view name, std::string_view type, std::string_view help,
                       auto&& value) {
    w.Family(name, type, help);
    for (const auto& [model, agg] : snap["by_model"].items()) {
      w.Sample(name, {{"model", model}}, value(agg));
    }
  };
  per_model("thrifty_llm_calls_total", "counter", "LLM calls recorded, by model.",
            [](const json& a) { return a["calls"].get<double>(); });
  per_model("thrifty_llm_cost_usd_total", "counter", "Spend in USD, by model.",
            [](const json& a) { return a["cost_usd"].get<double>(); });
  w.Family("thrifty_llm_tokens_total", "counter",
           "Tokens by model and type (input = uncached prompt tokens).");
  for (const auto& [model, agg] : snap["by_model"].items()) {
    for (const char* type : {"input", "cached_input", "cache_write", "output", "reasoning"}) {
      w.Sample("thrifty_llm_tokens_total", {{"model", model}, {"type", type}},
               agg[std::string(type) + "_tokens"].get<double>());
    }
  }
  w.Family("thrifty_llm_latency_seconds", "summary",
           "Call latency by model (quantiles within 1% relative error).");
  for (const auto& [model, agg] : snap["by_model"].items()) {
    const json& lat = agg["latency_s"];
    if (lat["count"].get<int64_t>() == 0) continue;
    for (const auto& [q, field] : {std::pair{"0.5", "p50"}, {"0.95", "p95"}, {"0.99", "p99"}}) {
      w.Sample("thrifty_llm_latency_seconds", {{"model", model}, {"quantile", q}},
               lat[field].get<double>());
    }
    w.Sample("thrifty_llm_latency_seconds_sum", {{"model", model}},
             lat["mean"].get<double>() * lat["count"].get<double>());
    w.Sample("thrifty_llm_latency_seconds_count", {{"model", model}}, lat["count"].get<double>());
  }
  w.Family("thrifty_llm_cache_total", "counter",
           "Calls by response-cache outcome (none = cache not consulted).");
  for (const auto& [outcome, n] : snap["total"]["cache"].items()) {
    w.Sample("thrifty_llm_cache_total", {{"outcome", outcome}}, n.get<double>());
  }
  w.Family("thrifty_llm_savings_usd_total", "counter", "USD saved, by cost lever.");
  for (const auto& [lever, usd] : snap["total"]["savings_usd"].items()) {
    w.Sample("thrifty_llm_savings_usd_total", {{"lever", lever}}, usd.get<double>());
  }
  w.Family("thrifty_llm_tag_calls_total", "counter", "LLM calls by tag key and value.");
  for (const auto& [key, values] : snap["by_tag"].items()) {
    for (const auto& [value, agg] : values.items()) {
      w.Sample("thrifty_llm_tag_calls_total", {{"tag", key}, {"value", value}},
               agg["calls"].get<double>());
    }
  }
  w.Family("thrifty_llm_tag_cost_usd_total", "counter", "Spend in USD by tag key and value.");
  for (const auto& [key, values] : snap["by_tag"].items()) {
    for (const auto& [value, agg] : values.items()) {
      w.Sample("thrifty_llm_tag_cost_usd_total", {{"tag", key}, {"value", value}},
               agg["cost_usd"].get<double>());
    }
  }
  for (const auto& [family, help, field] :
       {std::tuple{"thrifty_llm_budget_spent_usd", "Spend in the budget's current period.",
                   "spent_usd"},
        std::tuple{"thrifty_llm_budget_limit_usd", "The budget's limit per period.",
                   "limit_usd"}}) {
    w.Family(family, "gauge", help);
    for (const json& b : snap["budgets"]) {
      w.Sample(family,
               {{"tag", b["tag"].get_ref<const std::string&>()},
                {"value", b["value"].get_ref<const std::string&>()},
                {"period", b["period"].get_ref<const std::string&>()}},
               b[field].get<double>());
    }
  }
  w.Family("thrifty_llm_alerts", "gauge", "Alerts kept in the ledger's alert log.");
  w.Sample("thrifty_llm_alerts", {}, snap["alerts"].get<double>());
  return w.Take();
}

// ---------------------------------------------------------------------------------------------
// OpenTelemetry attributes and JSONL.

nlohmann::json OtelAttributes(const RecordEvent& e) {
  const Usage& u = *e.usage;
  json a = {
      {"gen_ai.request.model", e.model},
      {"gen_ai.usage.input_tokens", u.prompt_tokens()},
      {"gen_ai.usage.output_tokens", u.output_tokens},
      {"gen_ai.usage.cache_read.input_tokens", u.cached_input_tokens},
      {"gen_ai.usage.cache_creation.input_tokens",
       u.cache_write_5m_tokens + u.cache_write_1h_tokens},
      {"gen_ai.usage.reasoning.output_tokens", u.reasoning_tokens},
      {"thrifty.cost_usd", e.cost_usd},
      {"thrifty.cache", CacheOutcomeName(e.cache)},
      {"thrifty.ts", e.ts},
  };
  if (!e.provider.empty()) a["gen_ai.provider.name"] = e.provider;
  if (e.latency_s) a["thrifty.latency_s"] = *e.latency_s;
  for (const Tag& t : e.tags) a[StrCat("thrifty.tag.", t.key)] = t.value;
  for (const Saving& s : e.savings) a[StrCat("thrifty.savings_usd.", s.lever)] = s.usd;
  return a;
}

std::string JsonlLine(const RecordEvent& e) {
  const Usage& u = *e.usage;
  json tags = json::object();
  for (const Tag& t : e.tags) tags[std::string(t.key)] = t.value;
  json savings = json::object();
  for (const Saving& s : e.savings) savings[std::string(s.lever)] = s.usd;
  json line = {{"ts", e.ts},
               {"model", e.model},
               {"tags", tags},
               {"usage",
                {{"input_tokens", u.input_tokens},
                 {"cached_input_tokens", u.cached_input_tokens},
                 {"cache_write_5m_tokens", u.cache_write_5m_tokens},
                 {"cache_write_1h_tokens", u.cache_write_1h_tokens},
                 {"output_tokens", u.output_tokens},
                 {"reasoning_tokens", u.reasoning_tokens}}},
               {"cost_usd", e.cost_usd},
               {"latency_s", e.latency_s ? json(*e.latency_s) : json(nullptr)},
               {"cache", CacheOutcomeName(e.cache)},
               {"savings_usd", savings}};
  if (!e.provider.empty()) line["provider"] = e.provider;
  return line.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------------
// Persistence.

absl::Status Ledger::Save(const std::string& path) {
  json out;
  out["format"] = kFormat;
  out["version"] = kVersion;
  out["saved_at"] = Now();
  out["bucket_seconds"] = options_.bucket_seconds;
  out["latest_bucket"] = latest_bucket_.load();
  out["evaluated_bucket"] = evaluated_bucket_.load();
  out["dropped"] = {dropped_tags_.load(), dropped_time_records_.load()};
  Merged m;
  for (auto& shard : shards_) {
    MutexLock l(&shard->mu);
    m.total.Merge(shard->total);
    for (const auto& [k, a] : shard->by_model) m.by_model[k].Merge(a);
    for (const auto& [k, a] : shard->by_tag) m.by_tag[k].Merge(a);
    for (const auto& [b, a] : shard->by_time) m.by_time[b].Merge(a);
  }
  out["total"] = AggregateState(m.total);
  json models = json::array(), tags = json::array(), times = json::array();
  for (const auto& [k, a] : m.by_model) models.push_back({k, AggregateState(a)});
  for (const auto& [k, a] : m.by_tag) {
    auto [key, value] = SplitComposite(k);
    tags.push_back({key, value, AggregateState(a)});
  }
  for (const auto& [b, a] : m.by_time) times.push_back({b, AggregateState(a)});
  out["by_model"] = std::move(models);
  out["by_tag"] = std::move(tags);
  out["by_time"] = std::move(times);
  json series = json::array();
  for (auto& stripe : stripes_) {
    MutexLock l(&stripe->mu);
    for (const auto& [composite, s] : stripe->map) {
      json slots = json::array();
      for (const auto& [b, nano] : s.slots) {
        if (b != kNoBucket) slots.push_back({b, nano});
      }
      series.push_back({composite, s.first_bucket, std::move(slots)});
    }
  }
  out["series"] = std::move(series);
  json budgets = json::array();
  {
    ReaderMutexLock l(&budgets_mu_);
    for (const auto& b : budgets_) {
      MutexLock bl(&b->mu);
      budgets.push_back({{"key", b->RestoreKey()},
                         {"period_index", b->period},
                         {"settled_nano", b->settled_nano},
                         {"fired", b->fired}});
    }
    // Restored spend of budgets not re-added yet survives another save.
    for (const auto& [key, state] : restored_budgets_) {
      if (std::none_of(budgets.begin(), budgets.end(),
                       [&](const json& j) { return j["key"] == key; })) {
        budgets.push_back(state);
      }
    }
  }
  out["budgets"] = std::move(budgets);

  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) {
      return absl::InvalidArgumentError(StrCat("ledger save '", path, "': cannot write ", tmp));
    }
    f << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    f.flush();
    if (!f) return absl::DataLossError(StrCat("ledger save '", path, "': write failed"));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return absl::DataLossError(
        StrCat("ledger save '", path, "': rename from ", tmp, " failed: ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status Ledger::Load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(StrCat("ledger load '", path, "': cannot open the file"));
  std::stringstream buffer;
  buffer << f.rdbuf();
  const std::string text = buffer.str();
  json in = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object()) {
    return absl::DataLossError(StrCat("ledger load '", path,
                                      "': not a complete JSON document (corrupt or truncated; ",
                                      text.size(), " bytes)"));
  }
  if (in.value("format", "") != kFormat) {
    return absl::DataLossError(
        StrCat("ledger load '", path, "': not a thrifty ledger file (format '", kFormat, "')"));
  }
  if (in.value("version", 0) != kVersion) {
    return absl::DataLossError(StrCat("ledger load '", path, "': version ", in.value("version", 0),
                                      " (accepted: ", kVersion, ")"));
  }
  Merged m;
  absl::flat_hash_map<std::string, Series> series;
  absl::flat_hash_map<std::string, json> budgets;
  int64_t latest = kNoBucket, evaluated = kNoBucket, dropped_tags = 0, dropped_time = 0;
  try {
    if (in.at("bucket_seconds").get<double>() != options_.bucket_seconds) {
      return absl::FailedPreconditionError(StrCat(
          "ledger load '", path, "': saved with bucket_seconds ",
          in.at("bucket_seconds").get<double>(), ", this ledger uses ", options_.bucket_seconds));
    }
    latest = in.at("latest_bucket").get<int64_t>();
    evaluated = in.at("evaluated_bucket").get<int64_t>();
    dropped_tags = in.at("dropped").at(0).get<int64_t>();
    dropped_time = in.at("dropped").at(1).get<int64_t>();
    auto agg = [&](const json& j) -> Aggregate {
      auto a = AggregateFromState(j);
      if (!a.ok()) throw std::runtime_error(std::string(a.status().message()));
      return *std::move(a);
    };
    m.total = agg(in.at("total"));
    for (const json& row : in.at("by_model"))
      m.by_model[row.at(0).get<std::string>()] = agg(row.at(1));
    for (const json& row : in.at("by_tag")) {
      m.by_tag[StrCat(row.at(0).get<std::string>(), std::string(1, kSep),
                      row.at(1).get<std::string>())] = agg(row.at(2));
    }
    for (const json& row : in.at("by_time")) m.by_time[row.at(0).get<int64_t>()] = agg(row.at(1));
    const auto n = static_cast<int64_t>(options_.max_time_buckets);
    for (const json& row : in.at("series")) {
      Series s;
      s.first_bucket = row.at(1).get<int64_t>();
      s.slots.assign(static_cast<size_t>(n), {kNoBucket, 0});
      for (const json& slot : row.at(2)) {
        const auto b = slot.at(0).get<int64_t>();
        auto& dst = s.slots[static_cast<size_t>(((b % n) + n) % n)];
        if (b > dst.first) dst = {b, slot.at(1).get<int64_t>()};
      }
      series[row.at(0).get<std::string>()] = std::move(s);
    }
    for (const json& b : in.at("budgets")) {
      b.at("period_index").get<int64_t>();
      b.at("settled_nano").get<int64_t>();
      b.at("fired").get<int>();
      budgets[b.at("key").get<std::string>()] = b;
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(StrCat("ledger load '", path, "': malformed content: ", e.what()));
  }

  // Everything parsed: swap it in.
  for (size_t i = 0; i < shards_.size(); ++i) {
    Shard& shard = *shards_[i];
    MutexLock l(&shard.mu);
    shard.total = Aggregate{};
    shard.by_model.clear();
    shard.by_tag.clear();
    shard.by_time.clear();
    if (i != 0) continue;
    shard.total = m.total;
    for (auto& [k, a] : m.by_model) shard.by_model[k] = std::move(a);
    for (auto& [k, a] : m.by_tag) shard.by_tag[k] = std::move(a);
    for (auto& [b, a] : m.by_time) shard.by_time[b] = std::move(a);
  }
  // Lock order elsewhere is stripe -> keys_mu_, so the stripes are refilled first.
  absl::flat_hash_map<std::string, int64_t> key_values;
  int64_t models = 0;
  std::vector<absl::flat_hash_map<std::string, Series>> per_stripe(stripes_.size());
  for (auto& [composite, s] : series) {
    if (!composite.empty() && composite[0] == kModelMark) {
      ++models;
    } else {
      ++key_values[SplitComposite(composite).first];
    }
    per_stripe[absl::HashOf(composite) % stripes_.size()][composite] = std::move(s);
  }
  for (size_t i = 0; i < stripes_.size(); ++i) {
    MutexLock l(&stripes_[i]->mu);
    stripes_[i]->map = std::move(per_stripe[i]);
  }
  {
    MutexLock k(&keys_mu_);
    key_values_ = std::move(key_values);
    models_ = models;
  }
  latest_bucket_.store(latest);
  evaluated_bucket_.store(evaluated);
  dropped_tags_.store(dropped_tags);
  dropped_time_records_.store(dropped_time);
  MutexLock l(&budgets_mu_);
  restored_budgets_ = std::move(budgets);
  for (const auto& b : budgets_) {
    MutexLock bl(&b->mu);
    auto it = restored_budgets_.find(b->RestoreKey());
    if (it == restored_budgets_.end()) continue;
    b->period = it->second.at("period_index").get<int64_t>();
    b->settled_nano = it->second.at("settled_nano").get<int64_t>();
    b->fired = it->second.at("fired").get<int>();
  }
  return absl::OkStatus();
}

}  // namespace thrifty::cost
