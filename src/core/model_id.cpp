#include "mll/core/model_id.hpp"

#include "mll/core/error.hpp"

namespace mll {
namespace {

bool plain_file_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lower-case digits are not canonical
}

}  // namespace

std::string model_id_problem(std::string_view id) {
  if (id.empty()) return "is empty";
  if (id.size() > kMaxModelIdBytes) return cat("is longer than ", kMaxModelIdBytes, " bytes");
  if (id.front() == '.') return "starts with '.'";
  for (const char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return "contains a space, a control character or a non-ASCII byte";
    }
    if (c == '/' || c == '\\') return cat("contains '", c, "'");
    if (c == ',') return "contains ',' (ids are comma-separated on command lines)";
  }
  // Each escaped byte takes 3 characters; the stem plus ".parts" or ".h5.tmp.<pid>" must stay a
  // legal file name (255 bytes) with room to spare.
  if (model_file_stem(id).size() > kMaxModelIdBytes) {
    return cat("has a file name (", model_file_stem(id), ") longer than ", kMaxModelIdBytes,
               " bytes");
  }
  return {};
}

void check_model_id(std::string_view id) {
  if (const std::string problem = model_id_problem(id); !problem.empty()) {
    MLL_THROW(UsageError, "invalid model id '", std::string(id), "': ", problem,
              " (docs/models.md, \"Model ids\")");
  }
}

std::string model_file_stem(std::string_view id) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string stem;
  stem.reserve(id.size());
  for (const char c : id) {
    if (plain_file_char(c)) {
      stem += c;
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    stem += '%';
    stem += kHex[u >> 4];
    stem += kHex[u & 0xf];
  }
  return stem;
}

std::optional<std::string> model_id_from_file_stem(std::string_view stem) {
  std::string id;
  for (std::size_t i = 0; i < stem.size(); ++i) {
    if (stem[i] != '%') {
      id += stem[i];
      continue;
    }
    if (i + 2 >= stem.size()) return std::nullopt;
    const int hi = hex_value(stem[i + 1]), lo = hex_value(stem[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  if (!model_id_problem(id).empty() || model_file_stem(id) != stem) return std::nullopt;
  return id;
}

}  // namespace mll
