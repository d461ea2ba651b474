#include "thrifty/prompt/prompt_builder.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_join.h"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"
#include "thrifty/prompt/layout.h"
#include "thrifty/request/canonical_json.h"
#include "thrifty/request/request_key.h"
#include "xxhash.h"

namespace thrifty::prompt {

using catalog::CacheMode;
using nlohmann::json;
using Block = PromptBuilder::Block;
using Message = PromptBuilder::Message;
using Tool = PromptBuilder::Tool;

std::string_view ApiName(Api api) {
  switch (api) {
    case Api::kChatCompletions:
      return "chat.completions";
    case Api::kResponses:
      return "responses";
    case Api::kMessages:
      return "messages";
  }
  return "chat.completions";
}

absl::StatusOr<Api> ParseApi(std::string_view name) {
  if (name == "chat.completions" || name == "chat" || name == "chat_completions") {
    return Api::kChatCompletions;
  }
  if (name == "responses") return Api::kResponses;
  if (name == "messages") return Api::kMessages;
  return absl::InvalidArgumentError(
      StrCat("unknown api '", name, "'; accepted: chat.completions, responses, messages"));
}

namespace {

// ---------------------------------------------------------------- parsing --

std::string Str(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

json WithoutCacheControl(json value) {
  if (value.is_object()) value.erase("cache_control");
  return value;
}

// Tool-call arguments as canonical JSON text when they parse, else as given.
std::string CanonicalArguments(const std::string& arguments) {
  json parsed = json::parse(arguments, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return arguments;
  absl::StatusOr<std::string> canonical = request::CanonicalJson(parsed);
  return canonical.ok() ? *canonical : arguments;
}

json ParsedArguments(const json& arguments) {
  if (!arguments.is_string()) return arguments;
  json parsed = json::parse(arguments.get<std::string>(), nullptr, false);
  return parsed.is_discarded() ? arguments : parsed;
}

absl::StatusOr<Tool> ParseTool(const json& t, size_t i) {
  const std::string where = StrCat("tools[", i, "]");
  if (!t.is_object()) {
    return absl::InvalidArgumentError(
        StrCat(where, ": a tool definition must be a JSON object, got ", t.type_name()));
  }
  Tool tool;
  const json* body = &t;
  if (auto fn = t.find("function"); fn != t.end()) {  // OpenAI chat
    if (!fn->is_object()) {
      return absl::InvalidArgumentError(
          StrCat(where, ".function: must be a JSON object, got ", fn->type_name()));
    }
    body = &*fn;
  }
  tool.name = Str(*body, "name");
  if (tool.name.empty()) {
    return absl::InvalidArgumentError(
        StrCat(where, ": a tool needs a non-empty string 'name' (OpenAI: function.name)"));
  }
  const std::string type = Str(t, "type");
  const char* schema_key = body->contains("input_schema") ? "input_schema" : "parameters";
  if (!type.empty() && type != "function" && type != "custom" && !body->contains(schema_key)) {
    // A provider's built-in tool (web_search_..., bash_..., computer_...): kept as given.
    tool.raw = true;
    tool.extra = WithoutCacheControl(t);
    return tool;
  }
  tool.description = Str(*body, "description");
  tool.schema = json::object();
  if (auto s = body->find(schema_key); s != body->end() && !s->is_null()) {
    if (!s->is_object()) {
      return absl::InvalidArgumentError(StrCat(where, " '", tool.name, "': ", schema_key,
                                               " must be a JSON object (a JSON Schema), got ",
                                               s->type_name(), " ", s->dump().substr(0, 60)));
    }
    tool.schema = *s;
  }
  tool.extra = json::object();
  for (const auto& [key, value] : body->items()) {
    if (key != "name" && key != "description" && key != "parameters" && key != "input_schema" &&
        key != "cache_control" && key != "type") {
      tool.extra[key] = value;
    }
  }
  return tool;
}

absl::StatusOr<std::vector<Block>> ParseContent(const json& content, const std::string& where) {
  std::vector<Block> out;
  if (content.is_null()) return out;
  if (content.is_string()) {
    Block b;
    b.type = "text";
    b.text = content.get<std::string>();
    out.push_back(std::move(b));
    return out;
  }
  if (!content.is_array()) {
    return absl::InvalidArgumentError(
        StrCat(where, ": content must be a string or a list of content blocks, got ",
               content.type_name()));
  }
  for (size_t j = 0; j < content.size(); ++j) {
    const json& part = content[j];
    Block b;
    const std::string type = Str(part, "type");
    if (!part.is_object()) {
      return absl::InvalidArgumentError(
          StrCat(where, "[", j, "]: a content block must be an object, got ", part.type_name()));
    }
    if ((type == "text" || type == "input_text" || type == "output_text") &&
        part.contains("text") && part["text"].is_string()) {
      b.type = "text";
      b.text = part["text"].get<std::string>();
    } else if (type == "tool_use") {
      b.type = "tool_use";
      b.id = Str(part, "id");
      b.name = Str(part, "name");
      b.input = part.value("input", json::object());
    } else if (type == "tool_result") {
      b.type = "tool_result";
      b.id = Str(part, "tool_use_id");
      b.input = part.value("content", json(""));
      if (b.input.is_array()) {
        for (auto& item : b.input) item = WithoutCacheControl(item);
      }
      b.is_error = part.value("is_error", false);
    } else {
      b.type = "raw";
      b.raw = WithoutCacheControl(part);
    }
    out.push_back(std::move(b));
  }
  return out;
}

// One OpenAI chat or Anthropic message (or Responses item) into the neutral form.
absl::StatusOr<Message> ParseMessage(const json& m, const std::string& where) {
  if (!m.is_object()) {
    return absl::InvalidArgumentError(
        StrCat(where, ": a message must be a JSON object, got ", m.type_name()));
  }
  Message msg;
  const std::string type = Str(m, "type");
  if (!m.contains("role") && type == "function_call") {
    msg.role = "assistant";
    Block b;
    b.type = "tool_use";
    b.id = Str(m, "call_id");
    b.name = Str(m, "name");
    b.input = ParsedArguments(m.value("arguments", json("{}")));
    msg.blocks.push_back(std::move(b));
    return msg;
  }
  if (!m.contains("role") && type == "function_call_output") {
    msg.role = "user";
    Block b;
    b.type = "tool_result";
    b.id = Str(m, "call_id");
    b.input = m.value("output", json(""));
    msg.blocks.push_back(std::move(b));
    return msg;
  }
  std::string role = Str(m, "role");
  if (role.empty()) {
    return absl::InvalidArgumentError(
        StrCat(where, ": a message needs a 'role' (user, assistant, system, developer, tool)"));
  }
  if (role == "tool") {
    msg.role = "user";
    Block b;
    b.type = "tool_result";
    b.id = Str(m, "tool_call_id");
    b.input = m.value("content", json(""));
    msg.blocks.push_back(std::move(b));
    return msg;
  }
  if (role == "developer") role = "system";
  if (role != "user" && role != "assistant" && role != "system") {
    return absl::InvalidArgumentError(StrCat(where, ".role: '", role,
                                             "' is not one of user, assistant, system, "
                                             "developer, tool"));
  }
  msg.role = role;
  if (auto c = m.find("content"); c != m.end()) {
    THRIFTY_ASSIGN_OR_RETURN(msg.blocks, ParseContent(*c, where + ".content"));
  }
  if (auto calls = m.find("tool_calls"); calls != m.end() && calls->is_array()) {
    for (const json& call : *calls) {
      Block b;
      b.type = "tool_use";
      b.id = Str(call, "id");
      const json fn = call.value("function", json::object());
      b.name = Str(fn, "name");
      b.input = ParsedArguments(fn.value("arguments", json("{}")));
      msg.blocks.push_back(std::move(b));
    }
  }
  return msg;
}

std::string JoinText(const std::vector<Block>& blocks) {
  std::vector<std::string> texts;
  for (const Block& b : blocks) {
    if (b.type == "text") texts.push_back(b.text);
  }
  return absl::StrJoin(texts, "\n\n");
}

bool AllText(const std::vector<Block>& blocks) {
  return std::all_of(blocks.begin(), blocks.end(), [](const Block& b) { return b.type == "text"; });
}

std::string ResultText(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    std::vector<std::string> parts;
    for (const json& item : content) {
      if (item.is_object() && item.contains("text") && item["text"].is_string()) {
        parts.push_back(item["text"].get<std::string>());
      }
    }
    if (parts.size() == content.size()) return absl::StrJoin(parts, "\n");
  }
  return content.dump();
}

// ----------------------------------------------------------- rendering --

json RenderTool(const Tool& t, Api api) {
  if (t.raw) return t.extra;
  json out = t.extra.is_object() ? t.extra : json::object();
  switch (api) {
    case Api::kMessages:
      out["name"] = t.name;
      if (!t.description.empty()) out["description"] = t.description;
      out["input_schema"] = t.schema.empty() ? json{{"type", "object"}} : t.schema;
      return out;
    case Api::kResponses:
      out["type"] = "function";
      out["name"] = t.name;
      if (!t.description.empty()) out["description"] = t.description;
      out["parameters"] = t.schema;
      return out;
    case Api::kChatCompletions: {
      json fn = out;
      fn["name"] = t.name;
      if (!t.description.empty()) fn["description"] = t.description;
      fn["parameters"] = t.schema;
      return json{{"type", "function"}, {"function", fn}};
    }
  }
  return out;
}

json AnthropicBlock(const Block& b) {
  if (b.type == "text") return json{{"type", "text"}, {"text", b.text}};
  if (b.type == "tool_use") {
    return json{{"type", "tool_use"}, {"id", b.id}, {"name", b.name}, {"input", b.input}};
  }
  if (b.type == "tool_result") {
    json out{{"type", "tool_result"}, {"tool_use_id", b.id}, {"content", b.input}};
    if (b.is_error) out["is_error"] = true;
    return out;
  }
  return b.raw;
}

json ChatPart(const Block& b) {
  if (b.type == "text") return json{{"type", "text"}, {"text", b.text}};
  return b.raw;
}

// OpenAI chat messages for one neutral message (tool results become tool messages).
void AppendChat(const Message& m, json& out) {
  json content_parts = json::array();
  json tool_calls = json::array();
  for (const Block& b : m.blocks) {
    if (b.type == "tool_result") {
      out.push_back(
          json{{"role", "tool"}, {"tool_call_id", b.id}, {"content", ResultText(b.input)}});
    } else if (b.type == "tool_use") {
      const std::string args = b.input.is_string() ? CanonicalArguments(b.input.get<std::string>())
                                                   : request::CanonicalJson(b.input).value_or("{}");
      tool_calls.push_back(json{{"id", b.id},
                                {"type", "function"},
                                {"function", json{{"name", b.name}, {"arguments", args}}}});
    } else {
      content_parts.push_back(ChatPart(b));
    }
  }
  if (content_parts.empty() && tool_calls.empty()) return;
  json msg{{"role", m.role}};
  std::vector<Block> non_tool;
  for (const Block& b : m.blocks) {
    if (b.type != "tool_use" && b.type != "tool_result") non_tool.push_back(b);
  }
  if (content_parts.empty()) {
    msg["content"] = nullptr;
  } else if (AllText(non_tool)) {
    msg["content"] = JoinText(non_tool);
  } else {
    msg["content"] = content_parts;
  }
  if (!tool_calls.empty()) msg["tool_calls"] = tool_calls;
  out.push_back(std::move(msg));
}

void AppendResponses(const Message& m, json& out) {
  json parts = json::array();
  const bool assistant = m.role == "assistant";
  auto flush = [&]() {
    if (parts.empty()) return;
    out.push_back(json{{"role", m.role}, {"content", parts}});
    parts = json::array();
  };
  for (const Block& b : m.blocks) {
    if (b.type == "tool_use") {
      flush();
      const std::string args = b.input.is_string() ? CanonicalArguments(b.input.get<std::string>())
                                                   : request::CanonicalJson(b.input).value_or("{}");
      out.push_back(json{
          {"type", "function_call"}, {"call_id", b.id}, {"name", b.name}, {"arguments", args}});
    } else if (b.type == "tool_result") {
      flush();
      out.push_back(json{
          {"type", "function_call_output"}, {"call_id", b.id}, {"output", ResultText(b.input)}});
    } else if (b.type == "text") {
      parts.push_back(json{{"type", assistant ? "output_text" : "input_text"}, {"text", b.text}});
    } else {
      parts.push_back(b.raw);
    }
  }
  flush();
}

uint64_t Hash(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

std::string Hex16(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = digits[v & 15];
  return out;
}

// Removes the lines of `text` that hold a lint finding; returns them.
std::vector<std::string> CutLines(std::string& text, const std::vector<LintWarning>& found) {
  std::vector<std::string> moved;
  std::vector<std::string> kept;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    bool hit = false;
    for (const LintWarning& w : found) hit |= line.find(w.text) != std::string::npos;
    (hit ? moved : kept).push_back(std::move(line));
    pos = end + 1;
  }
  text = absl::StrJoin(kept, "\n");
  return moved;
}

}  // namespace

// ------------------------------------------------------------- builder --

absl::StatusOr<PromptBuilder> PromptBuilder::Create(std::shared_ptr<const catalog::Catalog> catalog,
                                                    std::string_view provider,
                                                    std::string_view model, PlanOptions options) {
  if (catalog == nullptr) return absl::InvalidArgumentError("PromptBuilder: catalog is null");
  PromptBuilder b;
  b.catalog_ = std::move(catalog);
  THRIFTY_ASSIGN_OR_RETURN(b.rules_, b.catalog_->GetProviderRules(provider));
  THRIFTY_ASSIGN_OR_RETURN(b.model_, b.catalog_->Get(model));
  const catalog::ProviderCacheRules* own = b.catalog_->FindProviderRules(b.model_->provider);
  if (own != b.rules_ && AsciiLower(b.model_->provider) != AsciiLower(provider)) {
    return absl::InvalidArgumentError(StrCat("model '", b.model_->name, "' is a ",
                                             b.model_->provider, " model, not a ", provider,
                                             " one; pass provider='", b.model_->provider, "'"));
  }
  if (options.max_breakpoints > b.rules_->max_breakpoints) {
    return absl::InvalidArgumentError(StrCat(
        "max_breakpoints=", options.max_breakpoints, " exceeds ", b.rules_->provider,
        "'s limit of ", b.rules_->max_breakpoints, " cache_control breakpoints per request"));
  }
  if (options.ttl != "auto" && b.rules_->caches() && b.rules_->FindTtl(options.ttl) == nullptr) {
    std::vector<std::string> names;
    for (const auto& t : b.rules_->ttls) names.push_back(t.name);
    return absl::InvalidArgumentError(StrCat("ttl '", options.ttl, "' is not offered by ",
                                             b.rules_->provider, "; accepted: auto, ",
                                             absl::StrJoin(names, ", ")));
  }
  if (options.cache_key_shards < 1) {
    return absl::InvalidArgumentError(
        StrCat("cache_key_shards must be >= 1, got ", options.cache_key_shards));
  }
  b.options_ = std::move(options);
  return b;
}

absl::Status PromptBuilder::CheckNotAfterUser(std::string_view what) const {
  if (user_.has_value()) {
    return absl::FailedPreconditionError(
        StrCat(what,
               "() after add_user(): the user turn is the last segment; add tools, "
               "system, documents and history before it"));
  }
  return absl::OkStatus();
}

absl::Status PromptBuilder::AddTools(const json& tools) {
  THRIFTY_RETURN_IF_ERROR(CheckNotAfterUser("add_tools"));
  if (!tools.is_array()) {
    return absl::InvalidArgumentError(
        StrCat("tools: expected a list of tool definitions, got ", tools.type_name()));
  }
  std::vector<Tool> parsed;
  for (size_t i = 0; i < tools.size(); ++i) {
    THRIFTY_ASSIGN_OR_RETURN(Tool t, ParseTool(tools[i], tools_.size() + i));
    for (const Tool& other : tools_) {
      if (other.name == t.name) {
        return absl::InvalidArgumentError(
            StrCat("tools[", tools_.size() + i, "]: duplicate tool name '", t.name, "'"));
      }
    }
    for (const Tool& other : parsed) {
      if (other.name == t.name) {
        return absl::InvalidArgumentError(
            StrCat("tools[", tools_.size() + i, "]: duplicate tool name '", t.name, "'"));
      }
    }
    parsed.push_back(std::move(t));
  }
  for (auto& t : parsed) tools_.push_back(std::move(t));
  return absl::OkStatus();
}

absl::Status PromptBuilder::AddSystem(std::string text) {
  THRIFTY_RETURN_IF_ERROR(CheckNotAfterUser("add_system"));
  system_.push_back(std::move(text));
  return absl::OkStatus();
}

absl::Status PromptBuilder::AddDocuments(const std::vector<std::string>& documents) {
  THRIFTY_RETURN_IF_ERROR(CheckNotAfterUser("add_documents"));
  documents_.insert(documents_.end(), documents.begin(), documents.end());
  return absl::OkStatus();
}

absl::Status PromptBuilder::AddHistory(const json& messages) {
  THRIFTY_RETURN_IF_ERROR(CheckNotAfterUser("add_history"));
  if (!messages.is_array()) {
    return absl::InvalidArgumentError(
        StrCat("history: expected a list of messages, got ", messages.type_name()));
  }
  std::vector<Message> parsed;
  for (size_t i = 0; i < messages.size(); ++i) {
    THRIFTY_ASSIGN_OR_RETURN(
        Message m, ParseMessage(messages[i], StrCat("history[", history_.size() + i, "]")));
    parsed.push_back(std::move(m));
  }
  for (auto& m : parsed) history_.push_back(std::move(m));
  return absl::OkStatus();
}

absl::Status PromptBuilder::AddUser(const json& content) {
  THRIFTY_RETURN_IF_ERROR(CheckNotAfterUser("add_user"));
  Message m;
  m.role = "user";
  THRIFTY_ASSIGN_OR_RETURN(m.blocks, ParseContent(content, "user"));
  if (m.blocks.empty()) {
    return absl::InvalidArgumentError("user: the user turn is empty; pass a string or blocks");
  }
  user_ = std::move(m);
  return absl::OkStatus();
}

absl::StatusOr<PromptBuilder> PromptBuilder::FromRequest(
    std::shared_ptr<const catalog::Catalog> catalog, std::string_view provider,
    std::string_view model, const json& request, PlanOptions options) {
  if (!request.is_object()) {
    return absl::InvalidArgumentError(
        StrCat("request: expected an OpenAI chat / responses or Anthropic messages request "
               "(a dict), got ",
               request.type_name()));
  }
  THRIFTY_ASSIGN_OR_RETURN(PromptBuilder b, Create(std::move(catalog), provider, model, options));
  // Breakpoints already in the request: more than the provider allows is an error now (the
  // API would reject the call); they are re-planned either way.
  int markers = request.contains("cache_control") ? 1 : 0;
  auto count = [&markers](const json& list) {
    if (!list.is_array()) return;
    for (const json& item : list) {
      if (item.is_object() && item.contains("cache_control")) ++markers;
    }
  };
  count(request.value("tools", json()));
  count(request.value("system", json()));
  if (auto msgs = request.find("messages"); msgs != request.end() && msgs->is_array()) {
    for (const json& m : *msgs) {
      if (m.is_object()) count(m.value("content", json()));
    }
  }
  if (b.rules_->mode == CacheMode::kExplicit && markers > b.rules_->max_breakpoints) {
    return absl::InvalidArgumentError(StrCat("request has ", markers,
                                             " cache_control breakpoints; ", b.rules_->provider,
                                             " allows at most ", b.rules_->max_breakpoints,
                                             " per request (tools, system and message "
                                             "blocks together)"));
  }
  json rest = request;
  if (auto tools = request.find("tools"); tools != request.end() && !tools->is_null()) {
    THRIFTY_RETURN_IF_ERROR(b.AddTools(*tools));
  }
  rest.erase("tools");
  const json* messages = nullptr;
  if (request.contains("input")) {
    b.source_api_ = Api::kResponses;
    if (auto ins = request.find("instructions"); ins != request.end() && ins->is_string()) {
      b.system_.push_back(ins->get<std::string>());
    }
    rest.erase("instructions");
    messages = &request["input"];
    rest.erase("input");
  } else {
    const bool anthropic_shape =
        request.contains("system") ||
        (b.rules_->mode == CacheMode::kExplicit && !request.contains("prompt_cache_key"));
    b.source_api_ = anthropic_shape ? Api::kMessages : Api::kChatCompletions;
    if (auto sys = request.find("system"); sys != request.end() && !sys->is_null()) {
      THRIFTY_ASSIGN_OR_RETURN(std::vector<Block> blocks, ParseContent(*sys, "request.system"));
      for (Block& blk : blocks) {
        if (blk.type != "text") {
          return absl::InvalidArgumentError("request.system: only text blocks are supported");
        }
        b.system_.push_back(std::move(blk.text));
      }
    }
    rest.erase("system");
    if (auto it = request.find("messages"); it != request.end()) messages = &*it;
    rest.erase("messages");
  }
  rest.erase("cache_control");
  std::vector<Message> parsed;
  if (messages != nullptr) {
    if (messages->is_string()) {
      Message m;
      m.role = "user";
      m.blocks.push_back(
          Block{"text", messages->get<std::string>(), "", "", json(), false, json()});
      parsed.push_back(std::move(m));
    } else if (messages->is_array()) {
      for (size_t i = 0; i < messages->size(); ++i) {
        THRIFTY_ASSIGN_OR_RETURN(Message m,
                                 ParseMessage((*messages)[i], StrCat("request.messages[", i, "]")));
        parsed.push_back(std::move(m));
      }
    } else {
      return absl::InvalidArgumentError(
          StrCat("request.messages: expected a list, got ", messages->type_name()));
    }
  }
  size_t first = 0;
  while (first < parsed.size() && parsed[first].role == "system" && AllText(parsed[first].blocks)) {
    b.system_.push_back(JoinText(parsed[first].blocks));
    ++first;
  }
  size_t end = parsed.size();
  std::optional<Message> user;
  if (end > first && parsed[end - 1].role == "user") {
    const auto& blocks = parsed[end - 1].blocks;
    const bool has_result = std::any_of(blocks.begin(), blocks.end(),
                                        [](const Block& blk) { return blk.type == "tool_result"; });
    if (!has_result) {
      user = std::move(parsed[end - 1]);
      --end;
    }
  }
  for (size_t i = first; i < end; ++i) b.history_.push_back(std::move(parsed[i]));
  b.user_ = std::move(user);
  b.passthrough_ = std::move(rest);
  return b;
}

// --------------------------------------------------------------- build --

absl::StatusOr<Plan> PromptBuilder::Build(std::optional<Api> api_opt) const {
  Plan plan;
  const catalog::ProviderCacheRules& rules = *rules_;
  const Api api = api_opt.value_or(source_api_.value_or(
      rules.mode == CacheMode::kExplicit ? Api::kMessages : Api::kChatCompletions));
  plan.api = api;
  if (api == Api::kMessages && rules.mode != CacheMode::kExplicit && rules.caches()) {
    // Allowed (e.g. an Anthropic-compatible endpoint), but no breakpoints are planned.
  }

  // Lint static segments, and move volatile lines to the tail if asked.
  std::vector<std::string> system = system_;
  std::vector<std::string> documents = documents_;
  std::vector<std::string> tail;
  auto lint = [&](std::vector<std::string>& texts, const char* name) {
    for (size_t i = 0; i < texts.size(); ++i) {
      std::vector<LintWarning> found = LintText(StrCat(name, "[", i, "]"), texts[i]);
      if (found.empty()) continue;
      if (options_.move_volatile) {
        for (std::string& line : CutLines(texts[i], found)) tail.push_back(std::move(line));
        for (LintWarning& w : found) {
          w.moved = true;
          w.message = StrCat(w.segment, " held a ", w.kind, " '", w.text,
                             "'; its line was moved to the end of the prompt");
        }
      }
      for (LintWarning& w : found) plan.warnings.push_back(std::move(w));
    }
  };
  lint(system, "system");
  lint(documents, "documents");
  std::vector<const Tool*> tools;
  for (const Tool& t : tools_) tools.push_back(&t);
  std::sort(tools.begin(), tools.end(),
            [](const Tool* a, const Tool* b) { return a->name < b->name; });
  for (const Tool* t : tools) {
    for (LintWarning& w : LintText(StrCat("tools[", t->name, "].description"), t->description)) {
      plan.warnings.push_back(std::move(w));
    }
  }

  // The user turn, with moved lines in front of it.
  std::optional<Message> user = user_;
  if (!tail.empty()) {
    Block moved;
    moved.type = "text";
    moved.text = absl::StrJoin(tail, "\n");
    if (!user.has_value()) {
      user = Message{"user", {}};
    }
    user->blocks.insert(user->blocks.begin(), std::move(moved));
  }
  std::vector<Message> messages = history_;
  if (user.has_value()) messages.push_back(*user);

  json req = passthrough_.is_object() ? passthrough_ : json::object();
  if (api != source_api_.value_or(api)) {
    // Across APIs only fields with the same meaning are kept.
    json kept = json::object();
    for (const char* key : {"temperature", "top_p", "stream", "metadata"}) {
      if (req.contains(key) && !(api != Api::kMessages && std::string(key) == "metadata")) {
        kept[key] = req[key];
      }
    }
    int64_t max_out = 0;
    for (const char* key : {"max_tokens", "max_completion_tokens", "max_output_tokens"}) {
      if (req.contains(key) && req[key].is_number_integer()) max_out = req[key].get<int64_t>();
    }
    if (max_out > 0) {
      kept[api == Api::kResponses
               ? "max_output_tokens"
               : (api == Api::kMessages ? "max_tokens" : "max_completion_tokens")] = max_out;
    }
    req = std::move(kept);
  }
  req["model"] = model_->name;
  if (auto m = passthrough_.find("model"); m != passthrough_.end()) req["model"] = *m;

  // Static prefix and the block paths in render order (for cache_control placement).
  std::vector<json::json_pointer> paths;
  json tool_list = json::array();
  for (const Tool* t : tools) tool_list.push_back(RenderTool(*t, api));
  if (!tool_list.empty()) req["tools"] = tool_list;
  size_t static_blocks = 0;
  switch (api) {
    case Api::kMessages: {
      for (size_t i = 0; i < tool_list.size(); ++i) {
        paths.push_back(json::json_pointer(StrCat("/tools/", i)));
      }
      json sys = json::array();
      for (const std::string& s : system) sys.push_back(json{{"type", "text"}, {"text", s}});
      for (const std::string& d : documents) sys.push_back(json{{"type", "text"}, {"text", d}});
      for (size_t i = 0; i < sys.size(); ++i) {
        paths.push_back(json::json_pointer(StrCat("/system/", i)));
      }
      if (!sys.empty()) req["system"] = sys;
      static_blocks = paths.size();
      // Anthropic wants alternating roles: merge neighbours with the same role.
      json msgs = json::array();
      for (const Message& m : messages) {
        const std::string role = m.role == "system" ? "user" : m.role;
        json blocks = json::array();
        for (const Block& blk : m.blocks) {
          if (m.role == "system" && blk.type == "text") {
            blocks.push_back(json{{"type", "text"}, {"text", blk.text}});
          } else {
            blocks.push_back(AnthropicBlock(blk));
          }
        }
        if (blocks.empty()) continue;
        if (!msgs.empty() && msgs.back()["role"] == role) {
          for (auto& blk : blocks) msgs.back()["content"].push_back(std::move(blk));
        } else {
          msgs.push_back(json{{"role", role}, {"content", std::move(blocks)}});
        }
      }
      for (size_t i = 0; i < msgs.size(); ++i) {
        for (size_t j = 0; j < msgs[i]["content"].size(); ++j) {
          paths.push_back(json::json_pointer(StrCat("/messages/", i, "/content/", j)));
        }
      }
      req["messages"] = std::move(msgs);
      if (!req.contains("max_tokens")) req["max_tokens"] = options_.max_tokens;
      break;
    }
    case Api::kChatCompletions: {
      json msgs = json::array();
      if (!system.empty() || !documents.empty()) {
        if (documents.empty() && system.size() == 1) {
          msgs.push_back(json{{"role", "system"}, {"content", system[0]}});
        } else {
          json parts = json::array();
          for (const auto& s : system) parts.push_back(json{{"type", "text"}, {"text", s}});
          for (const auto& d : documents) parts.push_back(json{{"type", "text"}, {"text", d}});
          msgs.push_back(json{{"role", "system"}, {"content", parts}});
        }
      }
      static_blocks =
          tool_list.size() + (msgs.empty()                    ? 0
                              : msgs[0]["content"].is_array() ? msgs[0]["content"].size()
                                                              : 1);
      for (const Message& m : messages) AppendChat(m, msgs);
      req["messages"] = std::move(msgs);
      break;
    }
    case Api::kResponses: {
      json input = json::array();
      if (!system.empty()) req["instructions"] = absl::StrJoin(system, "\n\n");
      if (!documents.empty()) {
        json parts = json::array();
        for (const auto& d : documents) parts.push_back(json{{"type", "input_text"}, {"text", d}});
        input.push_back(json{{"role", "developer"}, {"content", parts}});
      }
      static_blocks = tool_list.size() + (system.empty() ? 0 : 1) + documents.size();
      for (const Message& m : messages) AppendResponses(m, input);
      req["input"] = std::move(input);
      break;
    }
  }

  // Token positions of every block (the same layout the prefix tracker uses).
  THRIFTY_ASSIGN_OR_RETURN(Layout layout,
                           LayoutRequest(req, request::FamilyForModel(model_->name), 0));
  plan.prompt_tokens = layout.total_tokens;
  plan.static_tokens =
      static_blocks == 0
          ? 0
          : layout.blocks[std::min(static_blocks, layout.blocks.size()) - 1].end_tokens;
  const int64_t minimum = rules.MinTokensFor(model_->name);
  const bool followup =
      options_.followup < 0 ? (!history_.empty() || !tools_.empty()) : options_.followup > 0;

  if (rules.mode == CacheMode::kExplicit && api == Api::kMessages && !layout.blocks.empty() &&
      paths.size() == layout.blocks.size()) {
    const int limit =
        options_.max_breakpoints < 0 ? rules.max_breakpoints : options_.max_breakpoints;
    const double input = model_->input_per_mtok;
    const double read = model_->cached_input_per_mtok.value_or(input * rules.read_multiplier);
    auto write_price = [&](const catalog::CacheTtl& ttl) {
      const bool is_default = &ttl == rules.FindTtl("");
      if (is_default && model_->cache_write_5m_per_mtok) return *model_->cache_write_5m_per_mtok;
      if (!is_default && model_->cache_write_1h_per_mtok) return *model_->cache_write_1h_per_mtok;
      return input * ttl.write_multiplier;
    };
    // Value of caching `tokens` with `ttl`, `reads` expected reads, `written` new tokens.
    auto value = [&](int64_t tokens, int64_t written, double reads, const catalog::CacheTtl& ttl) {
      return reads * static_cast<double>(tokens) * (input - read) -
             static_cast<double>(written) * (write_price(ttl) - input);
    };
    const catalog::CacheTtl* short_ttl = rules.FindTtl("");
    // Static TTL: the option, or the TTL with the best value given the request interval.
    const catalog::CacheTtl* static_ttl = short_ttl;
    if (options_.ttl != "auto") {
      static_ttl = rules.FindTtl(options_.ttl);
    } else if (static_blocks > 0) {
      double best = -1e300;
      for (const auto& ttl : rules.ttls) {
        const double reads =
            std::min(options_.expected_reuse, static_cast<double>(ttl.seconds) /
                                                  std::max(1e-9, options_.request_interval_s));
        const double v = value(plan.static_tokens, plan.static_tokens,
                               options_.request_interval_s <= ttl.seconds ? reads : 0, ttl);
        if (v > best + 1e-12) {
          best = v;
          static_ttl = &ttl;
        }
      }
    }
    struct Candidate {
      size_t block;
      const catalog::CacheTtl* ttl;
      std::string why;
      double reads;
    };
    std::vector<Candidate> wanted;  // in priority order
    const size_t last = layout.blocks.size() - 1;
    if (static_blocks > 0) {
      // Reads that find the static prefix alive: requests further apart than the TTL find
      // it expired.
      const double interval = std::max(1e-9, options_.request_interval_s);
      const double reads = interval <= static_cast<double>(static_ttl->seconds)
                               ? std::min(options_.expected_reuse,
                                          static_cast<double>(static_ttl->seconds) / interval)
                               : 0.0;
      wanted.push_back({static_blocks - 1, static_ttl, "static_prefix", reads});
    }
    if (followup && last + 1 > static_blocks) {
      wanted.push_back({last, short_ttl, "conversation_tail", 1.0});
    }
    // Anchors at fixed multiples of `every` message blocks, nearest to the tail first.
    const size_t every = static_cast<size_t>(std::max(1, rules.lookback_blocks - 5));
    if (followup && last > static_blocks + every) {
      for (size_t m = (last - static_blocks) / every * every; m >= every; m -= every) {
        const size_t block = static_blocks + m - 1;
        if (block >= last) continue;
        wanted.push_back({block, short_ttl, "anchor", 1.0});
      }
    }
    // Other static segment ends (tools, system) help when a later static segment changes.
    std::vector<Candidate> chosen;
    std::set<size_t> used;
    for (const Candidate& c : wanted) {
      if (static_cast<int>(chosen.size()) >= limit) break;
      if (used.contains(c.block)) continue;
      const int64_t tokens = layout.blocks[c.block].end_tokens;
      if (tokens < minimum) continue;  // never on a prefix under the model's minimum
      int64_t below = 0;
      for (const Candidate& o : chosen) {
        if (o.block < c.block) below = std::max(below, layout.blocks[o.block].end_tokens);
      }
      if (c.why != "anchor" && value(tokens, tokens - below, c.reads, *c.ttl) <= 0) continue;
      chosen.push_back(c);
      used.insert(c.block);
    }
    std::sort(chosen.begin(), chosen.end(),
              [](const Candidate& a, const Candidate& b) { return a.block < b.block; });
    // A longer TTL may not follow a shorter one.
    for (size_t i = 1; i < chosen.size(); ++i) {
      if (chosen[i].ttl->seconds > chosen[i - 1].ttl->seconds) chosen[i].ttl = chosen[i - 1].ttl;
    }
    for (const Candidate& c : chosen) {
      json& block = req.at(paths[c.block]);
      if (block.is_string()) block = json{{"type", "text"}, {"text", block}};
      json cc{{"type", "ephemeral"}};
      if (c.ttl != short_ttl) cc["ttl"] = c.ttl->name;
      block["cache_control"] = cc;
      plan.breakpoints.push_back(
          PlannedBreakpoint{layout.blocks[c.block].label, static_cast<int>(c.block),
                            layout.blocks[c.block].end_tokens, c.ttl->name, c.why});
    }
    plan.cacheable_tokens = plan.breakpoints.empty() ? 0 : plan.breakpoints.back().tokens;
  } else if (rules.caches() && rules.mode != CacheMode::kExplicit) {
    plan.cacheable_tokens =
        rules.CachedFromMatched(model_->name, followup ? layout.total_tokens : plan.static_tokens);
    if (!rules.cache_key_field.empty() && api != Api::kMessages) {
      if (auto it = req.find(rules.cache_key_field); it != req.end() && it->is_string()) {
        plan.cache_key = it->get<std::string>();  // the application's own key wins
      } else {
        std::string static_bytes = StrCat(model_->name, "\x1f");
        for (size_t i = 0; i < std::min(static_blocks, layout.blocks.size()); ++i) {
          StrAppend(&static_bytes, Hex16(layout.blocks[i].chain), ",");
        }
        std::string key = StrCat("thrifty-", Hex16(Hash(static_bytes)));
        int shards = options_.cache_key_shards;
        if (options_.expected_rpm > 0 && rules.cache_key_rpm > 0) {
          shards = std::max(shards,
                            static_cast<int>(std::ceil(options_.expected_rpm /
                                                       static_cast<double>(rules.cache_key_rpm))));
        }
        if (shards > 1) {
          std::string session = options_.session;
          if (session.empty()) {
            const std::vector<Message>& source =
                history_.empty() && user_ ? std::vector<Message>{*user_} : history_;
            for (const Message& m : source) {
              if (m.role == "user") {
                session = JoinText(m.blocks);
                break;
              }
            }
          }
          StrAppend(&key, "-", Hash(session) % static_cast<uint64_t>(shards));
        }
        req[rules.cache_key_field] = key;
        plan.cache_key = key;
      }
    }
  }
  plan.request = std::move(req);
  return plan;
}

}  // namespace thrifty::prompt
