#include "thrifty/prompt/layout.h"

#include <string_view>
#include <utility>

#include "nlohmann/json.hpp"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"
#include "thrifty/request/canonical_json.h"
#include "xxhash.h"

namespace thrifty::prompt {
namespace {

using nlohmann::json;

class Builder {
 public:
  Builder(request::TokenizerFamily family, uint64_t seed) : family_(family), chain_(seed) {}

  // Appends one block: `header` separates kinds and roles, `body` is what the model reads.
  void Add(std::string label, std::string segment, int message_index, std::string_view header,
           std::string_view body, const json* cache_control, int64_t framing) {
    LayoutBlock block;
    block.label = std::move(label);
    block.segment = std::move(segment);
    block.message_index = message_index;
    block.start_tokens = tokens_;
    block.first_chunk = layout_.chunks.size();
    if (cache_control != nullptr && cache_control->is_object()) {
      block.breakpoint = true;
      if (auto it = cache_control->find("ttl"); it != cache_control->end() && it->is_string()) {
        block.ttl = it->get<std::string>();
      }
    }
    chain_ = XXH3_64bits_withSeed(header.data(), header.size(), chain_ ^ 0x9E3779B97F4A7C15ULL);
    tokens_ += framing;
    const uint32_t block_index = static_cast<uint32_t>(layout_.blocks.size());
    size_t pos = 0;
    do {
      size_t end = std::min(body.size(), pos + kChunkBytes);
      if (end < body.size()) {
        // Cut before a space or newline in the second half of the chunk when there is one,
        // as BPE pre-tokenizers split, so the chunks' estimates add up to the text's.
        const size_t space = body.find_last_of(" \n", end);
        if (space != std::string_view::npos && space > pos + kChunkBytes / 2) end = space;
      }
      // Never cut inside a UTF-8 sequence, so a chunk's token estimate is well defined.
      while (end < body.size() && end > pos + 1 &&
             (static_cast<unsigned char>(body[end]) & 0xC0) == 0x80) {
        --end;
      }
      const std::string_view piece = body.substr(pos, end - pos);
      chain_ = XXH3_64bits_withSeed(piece.data(), piece.size(), chain_);
      tokens_ += request::EstimateTextTokens(piece, family_);
      layout_.chunks.push_back({chain_, tokens_, block_index});
      pos = end;
    } while (pos < body.size());
    block.end_chunk = layout_.chunks.size();
    block.end_tokens = tokens_;
    block.chain = chain_;
    layout_.blocks.push_back(std::move(block));
  }

  Layout Finish() {
    layout_.total_tokens = tokens_;
    return std::move(layout_);
  }

 private:
  request::TokenizerFamily family_;
  uint64_t chain_;
  int64_t tokens_ = 0;
  Layout layout_;
};

absl::StatusOr<std::string> Canonical(const json& value) {
  if (value.is_object() && value.contains("cache_control")) {
    json copy = value;
    copy.erase("cache_control");
    return request::CanonicalJson(copy);
  }
  return request::CanonicalJson(value);
}

std::string_view StringField(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return {};
  return it->get_ref<const std::string&>();
}

// {"type": "text", "text": ..., "cache_control"?}: the model reads only the text.
bool IsPlainText(const json& part) {
  if (!part.is_object()) return false;
  auto text = part.find("text");
  if (text == part.end() || !text->is_string()) return false;
  for (const auto& [key, value] : part.items()) {
    if (key != "type" && key != "text" && key != "cache_control") return false;
  }
  return true;
}

const json* CacheControl(const json& block) {
  if (!block.is_object()) return nullptr;
  auto it = block.find("cache_control");
  return it == block.end() ? nullptr : &*it;
}

// One content block (text, image, tool_use, tool_result, input_text, ...).
absl::Status AddContentBlock(Builder& b, const json& part, std::string label, std::string segment,
                             int message_index, std::string_view role, int64_t framing) {
  const std::string_view type = StringField(part, "type");
  const std::string header = StrCat(segment, "\x1f", role, "\x1f", type);
  if (part.is_string()) {
    b.Add(std::move(label), std::move(segment), message_index, header,
          part.get_ref<const std::string&>(), nullptr, framing);
    return absl::OkStatus();
  }
  if (!part.is_object()) {
    return absl::InvalidArgumentError(
        StrCat("request.", label, ": a content block must be an object or a string, got ",
               part.type_name()));
  }
  if (IsPlainText(part)) {
    b.Add(std::move(label), std::move(segment), message_index, header,
          part["text"].get_ref<const std::string&>(), CacheControl(part), framing);
    return absl::OkStatus();
  }
  THRIFTY_ASSIGN_OR_RETURN(std::string body, Canonical(part));
  b.Add(std::move(label), std::move(segment), message_index, header, body, CacheControl(part),
        framing);
  return absl::OkStatus();
}

// A message: its content (a string or a list of blocks), then OpenAI tool calls.
absl::Status AddMessage(Builder& b, const json& message, std::string label, int index) {
  if (!message.is_object()) {
    return absl::InvalidArgumentError(
        StrCat("request.", label, ": a message must be an object, got ", message.type_name()));
  }
  const std::string role(StringField(message, "role"));
  std::string header_role = role;
  if (auto it = message.find("tool_call_id"); it != message.end() && it->is_string()) {
    StrAppend(&header_role, "\x1f", it->get<std::string>());
  }
  if (auto it = message.find("name"); it != message.end() && it->is_string()) {
    StrAppend(&header_role, "\x1f", it->get<std::string>());
  }
  int64_t framing = kMessageFraming;
  bool any = false;
  auto content = message.find("content");
  if (content != message.end() && !content->is_null()) {
    if (content->is_array()) {
      for (size_t j = 0; j < content->size(); ++j) {
        THRIFTY_RETURN_IF_ERROR(AddContentBlock(b, (*content)[j],
                                                StrCat(label, ".content[", j, "]"), "messages",
                                                index, header_role, framing));
        framing = 0;
        any = true;
      }
    } else {
      THRIFTY_RETURN_IF_ERROR(AddContentBlock(b, *content, StrCat(label, ".content"), "messages",
                                              index, header_role, framing));
      framing = 0;
      any = true;
    }
  }
  if (auto calls = message.find("tool_calls"); calls != message.end() && calls->is_array()) {
    for (size_t j = 0; j < calls->size(); ++j) {
      THRIFTY_ASSIGN_OR_RETURN(std::string body, Canonical((*calls)[j]));
      b.Add(StrCat(label, ".tool_calls[", j, "]"), "messages", index,
            StrCat("messages\x1f", header_role, "\x1ftool_call"), body, nullptr, framing);
      framing = 0;
      any = true;
    }
  }
  if (!any) {
    // A message with no content still costs its framing and its role.
    b.Add(StrCat(label, ".content"), "messages", index, StrCat("messages\x1f", header_role), "",
          nullptr, framing);
  }
  return absl::OkStatus();
}

std::string ToolLabel(const json& tool, size_t i) {
  std::string_view name = StringField(tool, "name");
  if (name.empty())
    name = StringField(tool.is_object() ? tool.value("function", json()) : json(), "name");
  return name.empty() ? StrCat("tools[", i, "]") : StrCat("tools[", name, "]");
}

}  // namespace

int Layout::breakpoint_count() const {
  int n = 0;
  for (const auto& b : blocks) n += b.breakpoint ? 1 : 0;
  return n;
}

absl::StatusOr<Layout> LayoutRequest(const json& request, request::TokenizerFamily family,
                                     uint64_t seed) {
  if (!request.is_object()) {
    return absl::InvalidArgumentError(
        StrCat("request: expected an object (OpenAI chat / responses or Anthropic messages "
               "request), got ",
               request.type_name()));
  }
  Builder b(family, seed);
  if (auto tools = request.find("tools"); tools != request.end() && !tools->is_null()) {
    if (!tools->is_array()) {
      return absl::InvalidArgumentError(
          StrCat("request.tools: expected a list of tool definitions, got ", tools->type_name()));
    }
    for (size_t i = 0; i < tools->size(); ++i) {
      const json& tool = (*tools)[i];
      THRIFTY_ASSIGN_OR_RETURN(std::string body, Canonical(tool));
      b.Add(ToolLabel(tool, i), "tools", -1, "tools", body, CacheControl(tool), i == 0 ? 8 : 0);
    }
  }
  if (auto system = request.find("system"); system != request.end() && !system->is_null()) {
    if (system->is_array()) {
      for (size_t i = 0; i < system->size(); ++i) {
        THRIFTY_RETURN_IF_ERROR(AddContentBlock(b, (*system)[i], StrCat("system[", i, "]"),
                                                "system", -1, "system", i == 0 ? 4 : 0));
      }
    } else {
      THRIFTY_RETURN_IF_ERROR(AddContentBlock(b, *system, "system", "system", -1, "system", 4));
    }
  }
  if (auto instructions = request.find("instructions");
      instructions != request.end() && instructions->is_string()) {
    THRIFTY_RETURN_IF_ERROR(
        AddContentBlock(b, *instructions, "instructions", "system", -1, "system", 4));
  }
  const json* messages = nullptr;
  std::string_view field = "messages";
  if (auto it = request.find("messages"); it != request.end()) {
    messages = &*it;
  } else if (auto input = request.find("input"); input != request.end()) {
    messages = &*input;
    field = "input";
  }
  if (messages != nullptr) {
    if (messages->is_string()) {
      json wrapped = {{"role", "user"}, {"content", *messages}};
      THRIFTY_RETURN_IF_ERROR(AddMessage(b, wrapped, StrCat(field), 0));
    } else if (messages->is_array()) {
      for (size_t i = 0; i < messages->size(); ++i) {
        const json& item = (*messages)[i];
        const std::string label = StrCat(field, "[", i, "]");
        if (item.is_object() && !item.contains("role") && item.contains("type")) {
          // A Responses input item (function_call, function_call_output, ...).
          THRIFTY_RETURN_IF_ERROR(AddContentBlock(b, item, label, "messages", static_cast<int>(i),
                                                  "item", kMessageFraming));
        } else {
          THRIFTY_RETURN_IF_ERROR(AddMessage(b, item, label, static_cast<int>(i)));
        }
      }
    } else {
      return absl::InvalidArgumentError(
          StrCat("request.", field, ": expected a list of messages, got ", messages->type_name()));
    }
  }
  Layout layout = b.Finish();
  // Anthropic automatic caching: a top-level cache_control marks the last block.
  if (const json* top = CacheControl(request); top != nullptr && !layout.blocks.empty()) {
    LayoutBlock& last = layout.blocks.back();
    last.breakpoint = true;
    if (auto it = top->find("ttl"); it != top->end() && it->is_string()) {
      last.ttl = it->get<std::string>();
    }
  }
  layout.cache_key = std::string(StringField(request, "prompt_cache_key"));
  layout.retention = std::string(StringField(request, "prompt_cache_retention"));
  return layout;
}

}  // namespace thrifty::prompt
