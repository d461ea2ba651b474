#include "thrifty/replay/trace_record.h"

#include <cmath>
#include <string>

#include "fast_json.h"
#include "thrifty/base/strings.h"

namespace thrifty::replay {
namespace {

using nlohmann::json;

absl::Status Bad(std::string_view where, std::string_view field, std::string_view message) {
  return absl::InvalidArgumentError(StrCat(where, ": ", field, ": ", message));
}

std::string Brief(const json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

absl::StatusOr<double> Number(const json& value, std::string_view where, std::string_view field,
                              double lo, double hi, std::string_view accepted) {
  if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < lo ||
      value.get<double>() > hi) {
    return Bad(where, field, StrCat("expected ", accepted, ", got ", Brief(value)));
  }
  return value.get<double>();
}

absl::Status ParseLabels(const json& labels, std::string_view where, TraceRecord& record) {
  if (!labels.is_object()) {
    return Bad(where, "labels",
               StrCat("expected an object {model: {quality, output_tokens, cost_usd}}, got ",
                      Brief(labels)));
  }
  record.labels.reserve(labels.size());
  for (const auto& [model, label] : labels.items()) {
    const std::string field = StrCat("labels.", model);
    if (!label.is_object()) {
      return Bad(
          where, field,
          StrCat("expected an object with quality / output_tokens / cost_usd, got ", Brief(label)));
    }
    ModelLabel parsed;
    for (const auto& [key, value] : label.items()) {
      if (value.is_null()) continue;
      if (key == "quality") {
        auto q = Number(value, where, StrCat(field, ".quality"), 0.0, 1.0, "a number in [0, 1]");
        if (!q.ok()) return q.status();
        parsed.quality = *q;
      } else if (key == "output_tokens") {
        auto n = Number(value, where, StrCat(field, ".output_tokens"), 0.0, 1e12,
                        "a non-negative integer");
        if (!n.ok()) return n.status();
        if (std::floor(*n) != *n) {
          return Bad(where, StrCat(field, ".output_tokens"),
                     StrCat("expected a non-negative integer, got ", Brief(value)));
        }
        parsed.output_tokens = static_cast<int64_t>(*n);
      } else if (key == "cost_usd") {
        auto c = Number(value, where, StrCat(field, ".cost_usd"), 0.0, 1e12,
                        "a non-negative number (USD)");
        if (!c.ok()) return c.status();
        parsed.cost_usd = *c;
      }
      // Other keys (a labeller's notes, the answer text) are allowed and ignored.
    }
    record.labels.emplace_back(model, parsed);
  }
  return absl::OkStatus();
}

}  // namespace

const ModelLabel* TraceRecord::Label(std::string_view name) const {
  for (const auto& [model, label] : labels) {
    if (model == name) return &label;
  }
  return nullptr;
}

std::string FinalUserText(const json& request) {
  auto messages = request.find("messages");
  if (messages == request.end() || !messages->is_array() || messages->empty()) return "";
  const json& last = messages->back();
  if (!last.is_object()) return "";
  auto role = last.find("role");
  if (role == last.end() || !role->is_string() || role->get_ref<const std::string&>() != "user") {
    return "";
  }
  auto content = last.find("content");
  if (content == last.end()) return "";
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array()) return "";
  std::string text;
  for (const json& block : *content) {
    if (!block.is_object()) continue;
    auto type = block.find("type");
    if (type == block.end() || !type->is_string()) continue;
    const auto& t = type->get_ref<const std::string&>();
    if (t == "tool_result") return "";  // an agent step, not a question
    if (t != "text" && t != "input_text") continue;
    auto it = block.find("text");
    if (it == block.end() || !it->is_string()) continue;
    if (!text.empty()) text += '\n';
    text += it->get_ref<const std::string&>();
  }
  return text;
}

absl::StatusOr<TraceRecord> ParseTraceRecord(std::string_view line, std::string_view where) {
  std::optional<json> fast = internal::FastJsonParse(line);
  json doc = fast ? *std::move(fast)
                  : json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    // Re-parse with exceptions only on the error path, for the position and reason.
    try {
      (void)json::parse(line.begin(), line.end());
    } catch (const json::parse_error& e) {
      return absl::InvalidArgumentError(
          StrCat(where, ": malformed JSON (byte ", e.byte, "): ", e.what()));
    }
    return absl::InvalidArgumentError(StrCat(where, ": malformed JSON"));
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        StrCat(where, ": a trace line must be a JSON object, got ", doc.type_name()));
  }
  TraceRecord record;

  auto ts = doc.find("ts");
  if (ts == doc.end()) {
    return Bad(where, "ts", "missing; expected the call's time in seconds (e.g. Unix seconds)");
  }
  auto ts_value = Number(*ts, where, "ts", 0.0, 1e13, "a finite number of seconds >= 0");
  if (!ts_value.ok()) return ts_value.status();
  record.ts = *ts_value;

  if (auto id = doc.find("id"); id != doc.end() && !id->is_null()) {
    if (id->is_string()) {
      record.id = id->get<std::string>();
    } else if (id->is_number_integer()) {
      record.id = id->dump();
    } else {
      return Bad(where, "id", StrCat("expected a string, got ", Brief(*id)));
    }
  }
  if (auto ns = doc.find("namespace"); ns != doc.end() && !ns->is_null()) {
    if (!ns->is_string()) return Bad(where, "namespace", "expected a string");
    record.ns = ns->get<std::string>();
  }
  if (auto tags = doc.find("tags"); tags != doc.end() && !tags->is_null()) {
    if (!tags->is_object()) return Bad(where, "tags", "expected an object of tag: value");
    for (const auto& [key, value] : tags->items()) {
      if (value.is_string()) record.tags.emplace_back(key, value.get<std::string>());
    }
    if (auto c = tags->find("category"); c != tags->end() && c->is_string()) {
      record.category = c->get<std::string>();
    }
    if (auto i = tags->find("intent"); i != tags->end() && i->is_string()) {
      record.intent = i->get<std::string>();
    }
  }

  auto request = doc.find("request");
  if (request == doc.end() || !request->is_object()) {
    return Bad(where, "request",
               "missing or not an object; expected the OpenAI chat or Anthropic messages "
               "request, including \"model\"");
  }
  auto model = request->find("model");
  if (model == request->end() || !model->is_string() ||
      model->get_ref<const std::string&>().empty()) {
    return Bad(where, "request.model", "missing; expected the model name the call was sent to");
  }
  record.model = model->get<std::string>();
  auto messages = request->find("messages");
  if (messages == request->end() || !messages->is_array()) {
    return Bad(where, "request.messages", "missing or not an array of messages");
  }
  const bool anthropic_shape = request->contains("system") || record.model.rfind("claude", 0) == 0;

  std::string provider;
  if (auto response = doc.find("response"); response != doc.end() && !response->is_null()) {
    if (!response->is_object()) return Bad(where, "response", "expected an object");
    if (auto p = response->find("provider"); p != response->end() && !p->is_null()) {
      if (!p->is_string()) return Bad(where, "response.provider", "expected a string");
      provider = p->get<std::string>();
    }
    if (auto usage = response->find("usage"); usage != response->end() && !usage->is_null()) {
      auto parsed = cost::UsageFromProvider(provider, *usage);
      if (!parsed.ok()) {
        return Bad(where, "response.usage", FromAbsl(parsed.status().message()));
      }
      record.usage = *parsed;
    }
  }
  if (provider.empty()) provider = anthropic_shape ? "anthropic" : "openai";
  record.provider = std::move(provider);

  if (auto labels = doc.find("labels"); labels != doc.end() && !labels->is_null()) {
    absl::Status status = ParseLabels(*labels, where, record);
    if (!status.ok()) return status;
  }
  record.request = std::move(*request);
  return record;
}

}  // namespace thrifty::replay
