// Bindings for thrifty::cost::Ledger (python/thrifty/ledger.py adds the DataFrame helper and the
// defaults). Hot calls release the GIL; Python callbacks (clock, alerts, record hooks) take it
// back, and are held through a shared_ptr whose deleter takes the GIL, so the core may copy
// them freely on threads that do not hold it.
#include "thrifty/cost/ledger.h"

#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cost.h"
#include "errors.h"
#include "json_convert.h"
#include "ledger.h"
#include "register.h"
#include "thrifty/cache/redis_budget_store.h"
#include "thrifty/catalog/catalog.h"

namespace py = pybind11;

namespace thrifty::bindings {
namespace {

using cost::Ledger;

std::shared_ptr<py::object> Hold(py::object o) {
  return {new py::object(std::move(o)), [](py::object* p) {
            py::gil_scoped_acquire gil;
            delete p;
          }};
}

py::dict AlertToDict(const cost::Alert& a) {
  py::dict d;
  d["kind"] = a.kind;
  d["message"] = a.message;
  d["tag"] = a.tag;
  d["value"] = a.value;
  d["model"] = a.model;
  d["threshold"] = a.threshold;
  d["observed"] = a.observed;
  d["limit"] = a.limit;
  d["ts"] = a.ts;
  d["period_start"] = a.period_start;
  return d;
}

py::dict AnomalyToDict(const cost::Anomaly& a) {
  py::dict d;
  d["tag"] = a.tag;
  d["value"] = a.value;
  d["bucket_start"] = a.bucket_start;
  d["spend_usd"] = a.spend_usd;
  d["baseline_median_usd"] = a.baseline_median_usd;
  d["baseline_mad_usd"] = a.baseline_mad_usd;
  d["threshold_usd"] = a.threshold_usd;
  d["partial"] = a.partial;
  return d;
}

// A Python callable as an AlertCallback: exceptions are reported as unraisable, never thrown
// into the recording thread.
cost::AlertCallback AlertCallbackFromPy(const py::object& fn, const char* what) {
  if (fn.is_none()) return nullptr;
  if (!PyCallable_Check(fn.ptr())) {
    throw py::type_error(std::string(what) + " must be callable(alert: dict) or None");
  }
  auto held = Hold(fn);
  return [held](const cost::Alert& alert) {
    py::gil_scoped_acquire gil;
    try {
      (*held)(AlertToDict(alert));
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable(*held);
    }
  };
}

// Owns the strings a Python tags dict / savings dict point into.
struct Strings {
  std::vector<std::string> storage;
  std::vector<cost::Tag> tags;
  std::vector<cost::Saving> savings;
};

std::string TagString(py::handle v, const std::string& where) {
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  if (py::isinstance<py::bool_>(v) || py::isinstance<py::int_>(v) ||
      py::isinstance<py::float_>(v)) {
    return py::str(v).cast<std::string>();
  }
  throw py::type_error(where + ": a tag value must be str, int, float or bool, got " +
                       py::str(py::type::of(v).attr("__name__")).cast<std::string>());
}

void TagsFromPy(const py::object& tags, Strings* out) {
  if (tags.is_none()) return;
  if (!py::isinstance<py::dict>(tags)) {
    throw py::type_error("tags must be a dict of str -> str (e.g. {'feature': 'search'}) or None");
  }
  const auto d = tags.cast<py::dict>();
  out->storage.reserve(out->storage.size() + 2 * d.size());
  for (auto [k, v] : d) {
    if (!py::isinstance<py::str>(k)) throw py::type_error("tags: keys must be str");
    if (v.is_none()) continue;
    std::string key = k.cast<std::string>();
    std::string value = TagString(v, "tags['" + key + "']");
    out->storage.push_back(std::move(key));
    out->storage.push_back(std::move(value));
  }
  // storage is not resized below, so views stay valid.
  for (size_t i = 0; i + 1 < out->storage.size(); i += 2) {
    out->tags.push_back({out->storage[i], out->storage[i + 1]});
  }
}

cost::Usage UsageArg(const catalog::Catalog* catalog, const std::string& model,
                     const py::object& usage) {
  if (usage.is_none()) return {};
  if (py::isinstance<cost::Usage>(usage)) return usage.cast<cost::Usage>();
  const catalog::ModelSpec* spec = catalog ? catalog->Find(model) : nullptr;
  return UsageFromPy(usage, spec != nullptr ? std::string_view(spec->provider) : "");
}

cost::Period PeriodArg(const py::object& period) {
  if (py::isinstance<py::str>(period)) {
    return ValueOrThrow(cost::ParsePeriod(period.cast<std::string>()));
  }
  if (!py::isinstance<py::bool_>(period) &&
      (py::isinstance<py::int_>(period) || py::isinstance<py::float_>(period))) {
    return ValueOrThrow(cost::PeriodOfSeconds(period.cast<double>()));
  }
  ThrowStatus(absl::InvalidArgumentError(
      "period: must be 'day', 'month' or a number of seconds > 0, got a " +
      py::str(py::type::of(period).attr("__name__")).cast<std::string>()));
}

// The ledger plus the catalog it was built with (kept for usage parsing).
struct PyLedger {
  std::shared_ptr<const catalog::Catalog> catalog;
  std::unique_ptr<Ledger> ledger;
};

}  // namespace

cost::Ledger* LedgerFromPy(const py::handle& obj, std::string_view arg) {
  if (!py::isinstance<PyLedger>(obj)) {
    throw py::type_error(std::string(arg) + ": expected a thrifty.Ledger, True or None, got " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  }
  return obj.cast<PyLedger&>().ledger.get();
}

void RegisterLedger(py::module_& m) {
  py::class_<PyLedger>(m, "_Ledger",
                       "The C++ ledger behind thrifty.Ledger (see thrifty/ledger.py). "
                       "Thread-safe; record() releases the GIL.")
      .def(py::init([](std::optional<std::shared_ptr<catalog::Catalog>> catalog,
                       double bucket_seconds, int max_time_buckets, int max_tag_keys,
                       int max_tag_values, int max_models, int shards, const py::object& clock,
                       const py::object& on_alert, bool anomaly, int anomaly_baseline_buckets,
                       int anomaly_min_history, double anomaly_k, double anomaly_min_relative,
                       double anomaly_min_usd, const py::object& budget_backend) {
             cost::LedgerOptions o;
             o.bucket_seconds = bucket_seconds;
             o.max_time_buckets = max_time_buckets;
             o.max_tag_keys = max_tag_keys;
             o.max_tag_values = max_tag_values;
             o.max_models = max_models;
             o.shards = shards;
             o.anomaly.enabled = anomaly;
             o.anomaly.baseline_buckets = anomaly_baseline_buckets;
             o.anomaly.min_history = anomaly_min_history;
             o.anomaly.k = anomaly_k;
             o.anomaly.min_relative = anomaly_min_relative;
             o.anomaly.min_usd = anomaly_min_usd;
             if (!clock.is_none()) {
               if (!PyCallable_Check(clock.ptr())) {
                 throw py::type_error("clock must be a callable returning epoch seconds, or None");
               }
               auto held = Hold(clock);
               o.clock = [held]() {
                 py::gil_scoped_acquire gil;
                 return (*held)().cast<double>();
               };
             }
             o.on_alert = AlertCallbackFromPy(on_alert, "on_alert");
             auto c = catalog ? std::const_pointer_cast<const catalog::Catalog>(*catalog)
                              : std::shared_ptr<const catalog::Catalog>();
             auto ledger = ValueOrThrow(Ledger::Create(c, std::move(o)));
             if (!budget_backend.is_none()) {
               // Budgets shared through Redis; the first command dials, so a server that is
               // down now only makes the ledger fall back to local counters.
               ledger->SetSharedBudgetStore(ValueOrThrow(
                   cache::RedisBudgetStore::Create(budget_backend.cast<std::string>())));
             }
             return PyLedger{std::move(c), std::move(ledger)};
           }),
           py::arg("catalog") = py::none(), py::kw_only(), py::arg("bucket_seconds") = 3600.0,
           py::arg("max_time_buckets") = 168, py::arg("max_tag_keys") = 32,
           py::arg("max_tag_values") = 1000, py::arg("max_models") = 256, py::arg("shards") = 0,
           py::arg("clock") = py::none(), py::arg("on_alert") = py::none(),
           py::arg("anomaly") = true, py::arg("anomaly_baseline_buckets") = 24,
           py::arg("anomaly_min_history") = 6, py::arg("anomaly_k") = 4.0,
           py::arg("anomaly_min_relative") = 0.1, py::arg("anomaly_min_usd") = 0.01,
           py::arg("budget_backend") = py::none())
      .def(
          "record",
          [](PyLedger& self, const std::string& model, const py::object& usage,
             const py::object& tags, std::optional<double> cost_usd,
             std::optional<double> latency_s, const py::object& cache, const py::object& savings,
             std::optional<double> ts, uint64_t reservation) {
            cost::CallRecord call;
            call.model = model;
            call.usage = UsageArg(self.catalog.get(), model, usage);
            Strings strings;
            TagsFromPy(tags, &strings);
            std::vector<std::string> levers;
            if (!savings.is_none()) {
              if (!py::isinstance<py::dict>(savings)) {
                throw py::type_error("savings must be a dict of lever (str) -> USD, or None");
              }
              const auto d = savings.cast<py::dict>();
              levers.reserve(d.size());
              for (auto [k, v] : d) {
                levers.push_back(k.cast<std::string>());
                strings.savings.push_back({levers.back(), v.cast<double>()});
              }
            }
            call.tags = strings.tags;
            call.savings = strings.savings;
            call.cost_usd = cost_usd;
            call.latency_s = latency_s;
            if (!cache.is_none()) {
              if (py::isinstance<py::bool_>(cache)) {
                call.cache =
                    cache.cast<bool>() ? cost::CacheOutcome::kExactHit : cost::CacheOutcome::kMiss;
              } else {
                call.cache = ValueOrThrow(cost::ParseCacheOutcome(cache.cast<std::string>()));
              }
            }
            call.ts = ts;
            call.reservation = reservation;
            absl::StatusOr<double> recorded;
            {
              py::gil_scoped_release release;
              recorded = self.ledger->Record(call);
            }
            return ValueOrThrow(std::move(recorded));
          },
          py::arg("model"), py::arg("usage") = py::none(), py::arg("tags") = py::none(),
          py::arg("cost_usd") = py::none(), py::arg("latency_s") = py::none(),
          py::arg("cache") = py::none(), py::arg("savings") = py::none(),
          py::arg("ts") = py::none(), py::arg("reservation") = 0)
      .def(
          "check",
          [](PyLedger& self, const py::object& tags, double estimated_cost_usd) {
            Strings strings;
            TagsFromPy(tags, &strings);
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = self.ledger->Check(strings.tags, estimated_cost_usd);
            }
            ThrowIfError(status);
          },
          py::arg("tags"), py::arg("estimated_cost_usd"))
      .def(
          "reserve",
          [](PyLedger& self, const py::object& tags, double estimated_cost_usd) {
            Strings strings;
            TagsFromPy(tags, &strings);
            absl::StatusOr<uint64_t> id;
            {
              py::gil_scoped_release release;
              id = self.ledger->Reserve(strings.tags, estimated_cost_usd);
            }
            return ValueOrThrow(std::move(id));
          },
          py::arg("tags"), py::arg("estimated_cost_usd"))
      .def(
          "release",
          [](PyLedger& self, uint64_t reservation) {
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = self.ledger->Release(reservation);
            }
            ThrowIfError(status);
          },
          py::arg("reservation"))
      .def(
          "add_budget",
          [](PyLedger& self, const std::string& tag, const py::object& value, double limit_usd,
             const py::object& period, const py::object& on_alert, bool hard) {
            cost::BudgetSpec spec;
            spec.tag = tag;
            spec.value = value.is_none() ? "" : TagString(value, "budget value");
            spec.limit_usd = limit_usd;
            spec.period = PeriodArg(period);
            spec.hard = hard;
            spec.on_alert = AlertCallbackFromPy(on_alert, "on_alert");
            return ValueOrThrow(self.ledger->AddBudget(std::move(spec)));
          },
          py::arg("tag"), py::arg("value"), py::arg("limit_usd"), py::arg("period") = "day",
          py::arg("on_alert") = py::none(), py::arg("hard") = false)
      .def(
          "remove_budget",
          [](PyLedger& self, uint64_t id) { ThrowIfError(self.ledger->RemoveBudget(id)); },
          py::arg("budget_id"))
      .def("budgets",
           [](PyLedger& self) {
             py::list out;
             for (const cost::BudgetStatus& b : self.ledger->Budgets()) {
               py::dict d;
               d["id"] = b.id;
               d["tag"] = b.tag;
               d["value"] = b.value;
               d["limit_usd"] = b.limit_usd;
               d["period"] = b.period;
               d["hard"] = b.hard;
               d["spent_usd"] = b.spent_usd;
               d["reserved_usd"] = b.reserved_usd;
               d["period_start"] = b.period_start;
               d["period_end"] = b.period_end;
               d["shared_usd"] = b.shared_usd ? py::object(py::float_(*b.shared_usd)) : py::none();
               out.append(d);
             }
             return out;
           })
      .def(
          "add_spike_alert",
          [](PyLedger& self, const std::string& tag, std::optional<double> absolute_usd,
             std::optional<double> k, int64_t min_calls, const py::object& on_alert) {
            cost::SpikeSpec spec;
            spec.tag = tag;
            spec.absolute_usd = absolute_usd;
            spec.k = k;
            spec.min_calls = min_calls;
            spec.on_alert = AlertCallbackFromPy(on_alert, "on_alert");
            return ValueOrThrow(self.ledger->AddSpikeAlert(std::move(spec)));
          },
          py::arg("tag") = "*", py::arg("absolute_usd") = py::none(), py::arg("k") = py::none(),
          py::arg("min_calls") = 20, py::arg("on_alert") = py::none())
      .def(
          "add_drift_alert",
          [](PyLedger& self, double window_seconds, double points, int64_t min_calls,
             const py::object& on_alert) {
            cost::DriftSpec spec;
            spec.window_seconds = window_seconds;
            spec.points = points;
            spec.min_calls = min_calls;
            spec.on_alert = AlertCallbackFromPy(on_alert, "on_alert");
            return ValueOrThrow(self.ledger->AddDriftAlert(std::move(spec)));
          },
          py::arg("window_seconds") = 3600.0, py::arg("points") = 10.0, py::arg("min_calls") = 50,
          py::arg("on_alert") = py::none())
      .def("alerts",
           [](PyLedger& self) {
             py::list out;
             for (const cost::Alert& a : self.ledger->Alerts()) out.append(AlertToDict(a));
             return out;
           })
      .def("anomalies",
           [](PyLedger& self) {
             std::vector<cost::Anomaly> found;
             {
               py::gil_scoped_release release;
               found = self.ledger->Anomalies();
             }
             py::list out;
             for (const cost::Anomaly& a : found) out.append(AnomalyToDict(a));
             return out;
           })
      .def(
          "on_record",
          [](PyLedger& self, const py::object& callback) {
            if (!PyCallable_Check(callback.ptr())) {
              throw py::type_error("on_record: callback must be callable(attributes: dict)");
            }
            auto held = Hold(callback);
            self.ledger->AddRecordHook([held](const cost::RecordEvent& event) {
              const nlohmann::json attrs = cost::OtelAttributes(event);
              py::gil_scoped_acquire gil;
              try {
                (*held)(FromJson(attrs));
              } catch (py::error_already_set& e) {
                e.discard_as_unraisable(*held);
              }
            });
          },
          py::arg("callback"))
      .def(
          "log_to",
          [](PyLedger& self, const py::object& path) {
            const std::string p = path.is_none() ? "" : py::str(path).cast<std::string>();
            ThrowIfError(self.ledger->SetLogPath(p));
          },
          py::arg("path"))
      .def("snapshot",
           [](PyLedger& self) {
             nlohmann::json snap;
             {
               py::gil_scoped_release release;
               snap = self.ledger->Snapshot();
             }
             return FromJson(snap);
           })
      .def("prometheus",
           [](PyLedger& self) {
             std::string text;
             {
               py::gil_scoped_release release;
               text = self.ledger->Prometheus();
             }
             return text;
           })
      .def(
          "save",
          [](PyLedger& self, const py::object& path) {
            const std::string p = py::str(path).cast<std::string>();
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = self.ledger->Save(p);
            }
            ThrowIfError(status);
          },
          py::arg("path"))
      .def(
          "load",
          [](PyLedger& self, const py::object& path) {
            const std::string p = py::str(path).cast<std::string>();
            absl::Status status;
            {
              py::gil_scoped_release release;
              status = self.ledger->Load(p);
            }
            ThrowIfError(status);
          },
          py::arg("path"))
      .def("now", [](PyLedger& self) { return self.ledger->Now(); })
      .def_property_readonly(
          "shared_errors", [](PyLedger& self) { return self.ledger->SharedErrors(); },
          "Shared-budget store errors so far (each fell back to the local counters).")
      .def_property_readonly("bucket_seconds",
                             [](PyLedger& self) { return self.ledger->options().bucket_seconds; });
}

}  // namespace thrifty::bindings
