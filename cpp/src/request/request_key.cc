#include "thrifty/request/request_key.h"

#include <algorithm>

#include "nlohmann/json.hpp"
#include "thrifty/base/status_macros.h"
#include "thrifty/base/strings.h"
#include "thrifty/request/canonical_json.h"
#include "xxhash.h"

namespace thrifty::request {
namespace {

using nlohmann::json;

constexpr std::string_view kKeyHeader = "thrifty.request.v1";

bool IsIgnoredTopLevel(std::string_view key) {
  return std::find(kIgnoredRequestFields.begin(), kIgnoredRequestFields.end(), key) !=
         kIgnoredRequestFields.end();
}

// An object written with its `cache_control` member dropped (content blocks, tools).
absl::Status AppendWithoutCacheControl(const json& object, std::string& out) {
  if (!object.is_object()) return AppendCanonicalJson(object, out);
  out.push_back('{');
  bool first = true;
  for (const auto& [key, element] : object.items()) {
    if (key == "cache_control") continue;
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(key, out);
    out.push_back(':');
    THRIFTY_RETURN_IF_ERROR(AppendCanonicalJson(element, out));
  }
  out.push_back('}');
  return absl::OkStatus();
}

// The text of a block list that is exactly one plain text block, else nullptr.
const std::string* SingleTextBlock(const json& blocks) {
  if (!blocks.is_array() || blocks.size() != 1 || !blocks[0].is_object()) return nullptr;
  const json& block = blocks[0];
  auto type = block.find("type");
  auto text = block.find("text");
  if (type == block.end() || *type != "text" || text == block.end() || !text->is_string()) {
    return nullptr;
  }
  for (const auto& [key, unused] : block.items()) {
    if (key != "type" && key != "text" && key != "cache_control") return nullptr;
  }
  return &text->get_ref<const std::string&>();
}

// Message content or a system prompt: a string, or a list of blocks.
absl::Status AppendContent(const json& content, std::string& out) {
  if (const std::string* text = SingleTextBlock(content)) {
    AppendJsonString(*text, out);
    return absl::OkStatus();
  }
  if (!content.is_array()) return AppendCanonicalJson(content, out);
  out.push_back('[');
  for (size_t i = 0; i < content.size(); ++i) {
    if (i > 0) out.push_back(',');
    THRIFTY_RETURN_IF_ERROR(AppendWithoutCacheControl(content[i], out));
  }
  out.push_back(']');
  return absl::OkStatus();
}

absl::Status AppendMessage(const json& message, std::string& out) {
  if (!message.is_object()) return AppendCanonicalJson(message, out);
  out.push_back('{');
  bool first = true;
  for (const auto& [key, element] : message.items()) {
    if (key == "cache_control") continue;
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(key, out);
    out.push_back(':');
    THRIFTY_RETURN_IF_ERROR(key == "content" ? AppendContent(element, out)
                                             : AppendCanonicalJson(element, out));
  }
  out.push_back('}');
  return absl::OkStatus();
}

template <typename AppendElement>
absl::Status AppendList(const json& list, std::string& out, AppendElement append_element) {
  if (!list.is_array()) return AppendCanonicalJson(list, out);
  out.push_back('[');
  for (size_t i = 0; i < list.size(); ++i) {
    if (i > 0) out.push_back(',');
    THRIFTY_RETURN_IF_ERROR(append_element(list[i], out));
  }
  out.push_back(']');
  return absl::OkStatus();
}

absl::Status AppendCanonicalRequest(const json& request, std::string& out) {
  if (!request.is_object()) {
    return absl::InvalidArgumentError(
        StrCat("request must be a JSON object (an OpenAI chat or Anthropic messages request), got ",
               request.type_name()));
  }
  out.push_back('{');
  bool first = true;
  for (const auto& [key, element] : request.items()) {
    if (IsIgnoredTopLevel(key)) continue;
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(key, out);
    out.push_back(':');
    absl::Status status;
    if (key == "messages" || key == "input") {
      status = AppendList(element, out, AppendMessage);
    } else if (key == "system") {
      status = AppendContent(element, out);
    } else if (key == "tools") {
      status = AppendList(element, out, AppendWithoutCacheControl);
    } else {
      status = AppendCanonicalJson(element, out);
    }
    if (!status.ok()) {
      return absl::InvalidArgumentError(StrCat("request field '", key, "': ", status.message()));
    }
  }
  out.push_back('}');
  return absl::OkStatus();
}

}  // namespace

std::string Key128::ToHex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = kHex[(high >> (4 * i)) & 0xF];
    out[31 - i] = kHex[(low >> (4 * i)) & 0xF];
  }
  return out;
}

Key128 HashBytes(std::string_view bytes) {
  const XXH128_hash_t hash = XXH3_128bits(bytes.data(), bytes.size());
  return Key128{hash.high64, hash.low64};
}

absl::StatusOr<std::string> CanonicalRequest(const json& request) {
  std::string out;
  THRIFTY_RETURN_IF_ERROR(AppendCanonicalRequest(request, out));
  return out;
}

absl::StatusOr<Key128> RequestKey(const json& request, std::string_view ns) {
  // One buffer per thread: keys are computed on every call, so skip the allocation.
  thread_local std::string buffer;
  buffer.clear();
  // Header and length-prefixed namespace, so no namespace can collide with another's prefix.
  StrAppend(&buffer, kKeyHeader, "\n", ns.size(), ":", ns, "\n");
  THRIFTY_RETURN_IF_ERROR(AppendCanonicalRequest(request, buffer));
  return HashBytes(buffer);
}

}  // namespace thrifty::request
