#include "thrifty/request/canonical_json.h"

#include <charconv>
#include <cmath>

#include "thrifty/base/strings.h"
#include "nlohmann/json.hpp"
#include "thrifty/base/status_macros.h"

namespace thrifty::request {

void AppendJsonString(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run_start, i - run_start);
    run_start = i + 1;
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default: {
        const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(escaped, sizeof(escaped));
      }
    }
  }
  out.append(text.data() + run_start, text.size() - run_start);
  out.push_back('"');
}

bool AppendCanonicalNumber(double number, std::string& out) {
  if (!std::isfinite(number)) return false;
  char buffer[32];
  constexpr double kExactIntegerLimit = 9007199254740992.0;  // 2^53
  if (std::trunc(number) == number && std::fabs(number) < kExactIntegerLimit) {
    const auto as_integer = static_cast<int64_t>(number);  // -0.0 becomes 0
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), as_integer);
    out.append(buffer, end);
    return true;
  }
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), number);
  out.append(buffer, end);
  return true;
}

absl::Status AppendCanonicalJson(const nlohmann::json& value, std::string& out) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::null: out.append("null"); break;
    case Type::boolean: out.append(value.get<bool>() ? "true" : "false"); break;
    case Type::number_integer: StrAppend(&out, value.get<int64_t>()); break;
    case Type::number_unsigned: StrAppend(&out, value.get<uint64_t>()); break;
    case Type::number_float:
      if (!AppendCanonicalNumber(value.get<double>(), out)) {
        return absl::InvalidArgumentError(
            StrCat("JSON number must be finite, got ", value.get<double>()));
      }
      break;
    case Type::string: AppendJsonString(value.get_ref<const std::string&>(), out); break;
    case Type::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& element : value) {
        if (!first) out.push_back(',');
        first = false;
        THRIFTY_RETURN_IF_ERROR(AppendCanonicalJson(element, out));
      }
      out.push_back(']');
      break;
    }
    case Type::object: {
      // nlohmann::json objects are std::map<std::string, ...>: iteration is already sorted.
      out.push_back('{');
      bool first = true;
      for (const auto& [key, element] : value.items()) {
        if (!first) out.push_back(',');
        first = false;
        AppendJsonString(key, out);
        out.push_back(':');
        THRIFTY_RETURN_IF_ERROR(AppendCanonicalJson(element, out));
      }
      out.push_back('}');
      break;
    }
    case Type::binary:
    case Type::discarded:
      return absl::InvalidArgumentError("binary or discarded JSON values have no canonical form");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CanonicalJson(const nlohmann::json& value) {
  std::string out;
  THRIFTY_RETURN_IF_ERROR(AppendCanonicalJson(value, out));
  return out;
}

}  // namespace thrifty::request
