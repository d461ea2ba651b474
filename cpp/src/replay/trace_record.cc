#include "thrifty/replay/trace_record.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "simdjson.h"
#include "simdjson_view.h"
#include "thrifty/base/strings.h"
#include "trace_line.h"

namespace thrifty::replay {
namespace {

using nlohmann::json;
using simdjson::dom::element;
using View = internal::SimdjsonView;
using internal::AsArray;
using internal::AsObject;
using request::internal::JsonKind;

absl::Status Bad(std::string_view where, std::string_view field, std::string_view message) {
  return absl::InvalidArgumentError(StrCat(where, ": ", field, ": ", message));
}

bool IsNull(element value) { return value.type() == simdjson::dom::element_type::NULL_VALUE; }

absl::StatusOr<double> Number(element value, std::string_view where, std::string_view field,
                              double lo, double hi, std::string_view accepted) {
  double number = 0;
  if (value.get_double().get(number) != simdjson::SUCCESS || !std::isfinite(number) ||
      number < lo || number > hi) {
    return Bad(where, field, StrCat("expected ", accepted, ", got ", internal::Brief(value)));
  }
  return number;
}

// An object's members in key order; of a key given twice, the last (nlohmann's rule).
internal::Members SortedMembers(element object) {
  internal::Members members;
  internal::SortMembers(object, members);
  size_t kept = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    if (i + 1 < members.size() && members[i + 1].first == members[i].first) continue;
    members[kept++] = members[i];
  }
  members.resize(kept);
  return members;
}

absl::Status ParseLabels(element labels, std::string_view where, TraceRecord& record) {
  if (labels.type() != simdjson::dom::element_type::OBJECT) {
    return Bad(where, "labels",
               StrCat("expected an object {model: {quality, output_tokens, cost_usd}}, got ",
                      internal::Brief(labels)));
  }
  const auto models = SortedMembers(labels);
  record.labels.reserve(models.size());
  for (const auto& [model, label] : models) {
    if (label.type() != simdjson::dom::element_type::OBJECT) {
      return Bad(where, StrCat("labels.", model),
                 StrCat("expected an object with quality / output_tokens / cost_usd, got ",
                        internal::Brief(label)));
    }
    ModelLabel parsed;
    for (simdjson::dom::key_value_pair field : AsObject(label)) {
      const std::string_view key = field.key;
      if (IsNull(field.value)) continue;
      if (key == "quality") {
        auto q = Number(field.value, where, StrCat("labels.", model, ".quality"), 0.0, 1.0,
                        "a number in [0, 1]");
        if (!q.ok()) return q.status();
        parsed.quality = *q;
      } else if (key == "output_tokens") {
        auto n = Number(field.value, where, StrCat("labels.", model, ".output_tokens"), 0.0, 1e12,
                        "a non-negative integer");
        if (!n.ok()) return n.status();
        if (std::floor(*n) != *n) {
          return Bad(where, StrCat("labels.", model, ".output_tokens"),
                     StrCat("expected a non-negative integer, got ", internal::Brief(field.value)));
        }
        parsed.output_tokens = static_cast<int64_t>(*n);
      } else if (key == "cost_usd") {
        auto c = Number(field.value, where, StrCat("labels.", model, ".cost_usd"), 0.0, 1e12,
                        "a non-negative number (USD)");
        if (!c.ok()) return c.status();
        parsed.cost_usd = *c;
      }
      // Other keys (a labeller's notes, the answer text) are allowed and ignored.
    }
    record.labels.emplace_back(std::string(model), parsed);
  }
  return absl::OkStatus();
}

absl::Status ParseFields(element doc, std::string_view where, TraceRecord& record,
                         element& request_out) {
  if (doc.type() != simdjson::dom::element_type::OBJECT) {
    return absl::InvalidArgumentError(
        StrCat(where, ": a trace line must be a JSON object, got ", View::TypeName(doc)));
  }
  // One pass over the members; of a key given twice the last wins, as nlohmann parses.
  std::optional<element> ts, id, ns, tags, request, response, labels;
  for (simdjson::dom::key_value_pair field : AsObject(doc)) {
    const std::string_view key = field.key;
    if (key == "ts") {
      ts = field.value;
    } else if (key == "id") {
      id = field.value;
    } else if (key == "namespace") {
      ns = field.value;
    } else if (key == "tags") {
      tags = field.value;
    } else if (key == "request") {
      request = field.value;
    } else if (key == "response") {
      response = field.value;
    } else if (key == "labels") {
      labels = field.value;
    }
  }
  if (!ts) {
    return Bad(where, "ts", "missing; expected the call's time in seconds (e.g. Unix seconds)");
  }
  auto ts_value = Number(*ts, where, "ts", 0.0, 1e13, "a finite number of seconds >= 0");
  if (!ts_value.ok()) return ts_value.status();
  record.ts = *ts_value;

  if (id && !IsNull(*id)) {
    const JsonKind kind = View::Kind(*id);
    if (kind == JsonKind::kString) {
      record.id = std::string(View::String(*id));
    } else if (kind == JsonKind::kInt) {
      record.id = StrCat(View::Int(*id));
    } else if (kind == JsonKind::kUint) {
      record.id = StrCat(View::Uint(*id));
    } else {
      return Bad(where, "id", StrCat("expected a string, got ", internal::Brief(*id)));
    }
  }
  if (ns && !IsNull(*ns)) {
    if (View::Kind(*ns) != JsonKind::kString) return Bad(where, "namespace", "expected a string");
    record.ns = std::string(View::String(*ns));
  }
  if (tags && !IsNull(*tags)) {
    if (View::Kind(*tags) != JsonKind::kObject) {
      return Bad(where, "tags", "expected an object of tag: value");
    }
    for (const auto& [key, value] : SortedMembers(*tags)) {
      if (View::Kind(value) != JsonKind::kString) continue;
      record.tags.emplace_back(std::string(key), std::string(View::String(value)));
      if (key == "category") record.category = record.tags.back().second;
      if (key == "intent") record.intent = record.tags.back().second;
    }
  }

  if (!request || View::Kind(*request) != JsonKind::kObject) {
    return Bad(where, "request",
               "missing or not an object; expected the OpenAI chat or Anthropic messages "
               "request, including \"model\"");
  }
  element model, messages, unused;
  if (!View::Find(*request, "model", &model) || View::Kind(model) != JsonKind::kString ||
      View::String(model).empty()) {
    return Bad(where, "request.model", "missing; expected the model name the call was sent to");
  }
  record.model = std::string(View::String(model));
  if (!View::Find(*request, "messages", &messages) || View::Kind(messages) != JsonKind::kArray) {
    return Bad(where, "request.messages", "missing or not an array of messages");
  }
  const bool anthropic_shape =
      View::Find(*request, "system", &unused) || record.model.rfind("claude", 0) == 0;

  std::string provider;
  if (response && !IsNull(*response)) {
    if (View::Kind(*response) != JsonKind::kObject) {
      return Bad(where, "response", "expected an object");
    }
    element p, usage;
    if (View::Find(*response, "provider", &p) && !IsNull(p)) {
      if (View::Kind(p) != JsonKind::kString) {
        return Bad(where, "response.provider", "expected a string");
      }
      provider = std::string(View::String(p));
    }
    if (View::Find(*response, "usage", &usage) && !IsNull(usage)) {
      auto parsed = cost::UsageFromProvider(provider, internal::ToNlohmann(usage));
      if (!parsed.ok()) {
        return Bad(where, "response.usage", FromAbsl(parsed.status().message()));
      }
      record.usage = *parsed;
    }
  }
  if (provider.empty()) provider = anthropic_shape ? "anthropic" : "openai";
  record.provider = std::move(provider);

  if (labels && !IsNull(*labels)) THRIFTY_RETURN_IF_ERROR(ParseLabels(*labels, where, record));
  request_out = *request;
  return absl::OkStatus();
}

template <typename V>
std::string FinalUserTextOf(typename V::Ref request) {
  typename V::Ref messages, role, content;
  if (!V::Find(request, "messages", &messages) || V::Kind(messages) != JsonKind::kArray ||
      V::Size(messages) == 0) {
    return "";
  }
  typename V::Ref last = messages;
  (void)V::ForEachElement(messages, [&](typename V::Ref m) {
    last = m;
    return absl::OkStatus();
  });
  if (V::Kind(last) != JsonKind::kObject || !V::Find(last, "role", &role) ||
      V::Kind(role) != JsonKind::kString || V::String(role) != "user" ||
      !V::Find(last, "content", &content)) {
    return "";
  }
  if (V::Kind(content) == JsonKind::kString) return std::string(V::String(content));
  if (V::Kind(content) != JsonKind::kArray) return "";
  std::string text;
  bool agent_step = false;
  (void)V::ForEachElement(content, [&](typename V::Ref block) {
    typename V::Ref type, block_text;
    if (agent_step || V::Kind(block) != JsonKind::kObject || !V::Find(block, "type", &type) ||
        V::Kind(type) != JsonKind::kString) {
      return absl::OkStatus();
    }
    const std::string_view t = V::String(type);
    if (t == "tool_result") {
      agent_step = true;  // an agent step, not a question
      return absl::OkStatus();
    }
    if (t != "text" && t != "input_text") return absl::OkStatus();
    if (!V::Find(block, "text", &block_text) || V::Kind(block_text) != JsonKind::kString) {
      return absl::OkStatus();
    }
    if (!text.empty()) text += '\n';
    text += V::String(block_text);
    return absl::OkStatus();
  });
  return agent_step ? "" : text;
}

}  // namespace

namespace internal {

absl::Status ParseTraceLine(LineParser& parser, std::string_view line, std::string_view where,
                            TraceRecord& record, simdjson::dom::element& request) {
  parser.buffer.reserve(line.size() + simdjson::SIMDJSON_PADDING);
  parser.buffer.assign(line);
  element doc;
  if (parser.parser.parse(parser.buffer.data(), parser.buffer.size(), false).get(doc) !=
      simdjson::SUCCESS) {
    // Either not JSON (nlohmann says where and why) or JSON that simdjson does not represent
    // (an integer beyond 64 bits: nlohmann reads it as a double); the latter is re-read from
    // nlohmann's serialization.
    json parsed = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      try {
        const json again = json::parse(line.begin(), line.end());
        (void)again;
      } catch (const json::parse_error& e) {
        return absl::InvalidArgumentError(
            StrCat(where, ": malformed JSON (byte ", e.byte, "): ", e.what()));
      }
      return absl::InvalidArgumentError(StrCat(where, ": malformed JSON"));
    }
    parser.buffer = parsed.dump();
    parser.buffer.reserve(parser.buffer.size() + simdjson::SIMDJSON_PADDING);
    if (parser.parser.parse(parser.buffer.data(), parser.buffer.size(), false).get(doc) !=
        simdjson::SUCCESS) {
      return absl::InvalidArgumentError(StrCat(where, ": JSON this reader cannot represent"));
    }
  }
  return ParseFields(doc, where, record, request);
}

absl::Status NormalizeTraceLine(LineParser& parser, std::string_view line, std::string_view where,
                                TraceRecord& record, simdjson::dom::element& request) {
  json parsed = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return ParseTraceLine(parser, line, where, record, request);
  const std::string normalized = parsed.dump();
  record = TraceRecord{};
  return ParseTraceLine(parser, normalized, where, record, request);
}

std::string FinalUserText(simdjson::dom::element request) {
  return FinalUserTextOf<SimdjsonView>(request);
}

json ToNlohmann(element value) {
  switch (value.type()) {
    case simdjson::dom::element_type::NULL_VALUE:
      return nullptr;
    case simdjson::dom::element_type::BOOL:
      return value.get_bool().value_unsafe();
    case simdjson::dom::element_type::INT64: {
      const int64_t n = value.get_int64().value_unsafe();
      if (n >= 0) return static_cast<uint64_t>(n);  // nlohmann: non-negative -> unsigned
      return n;
    }
    case simdjson::dom::element_type::UINT64:
      return value.get_uint64().value_unsafe();
    case simdjson::dom::element_type::DOUBLE:
      return value.get_double().value_unsafe();
    case simdjson::dom::element_type::STRING:
      return std::string(value.get_string().value_unsafe());
    case simdjson::dom::element_type::ARRAY: {
      json out = json::array();
      for (element e : AsArray(value)) out.push_back(ToNlohmann(e));
      return out;
    }
    case simdjson::dom::element_type::OBJECT: {
      json out = json::object();
      for (simdjson::dom::key_value_pair field : AsObject(value)) {
        out[std::string(field.key)] = ToNlohmann(field.value);  // the last duplicate wins
      }
      return out;
    }
  }
  return nullptr;
}

std::string Brief(element value, size_t max_chars) {
  std::string text = simdjson::minify(value);
  if (text.size() > max_chars) text = text.substr(0, max_chars - 3) + "...";
  return text;
}

}  // namespace internal

const ModelLabel* TraceRecord::Label(std::string_view name) const {
  for (const auto& [model, label] : labels) {
    if (model == name) return &label;
  }
  return nullptr;
}

std::string FinalUserText(const json& request) {
  return FinalUserTextOf<request::internal::NlohmannView>(&request);
}

absl::StatusOr<TraceRecord> ParseTraceRecord(std::string_view line, std::string_view where) {
  thread_local internal::LineParser parser;
  TraceRecord record;
  element request;
  THRIFTY_RETURN_IF_ERROR(internal::ParseTraceLine(parser, line, where, record, request));
  record.request = internal::ToNlohmann(request);
  return record;
}

}  // namespace thrifty::replay
