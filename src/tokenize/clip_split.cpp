#include "clip_split.hpp"

#include <re2/re2.h>

#include <sstream>
#include <string>

#include "mll/core/error.hpp"
#include "text_clean.hpp"

namespace mll::tokenize::detail {
namespace {

std::string hex(char32_t c) {
  std::ostringstream out;
  out << std::hex << static_cast<std::uint32_t>(c);
  return out.str();
}

// open_clip's pattern, adapted to RE2 where the two engines differ:
//  - RE2's \s is ASCII-only while the regex module's is Unicode White_Space: spelled out.
//  - Only the literal alternatives are case-insensitive. Under IGNORECASE the regex module
//    neither counts U+0345 (combining ypogegrammeni, which case-folds to iota) as a letter nor
//    lets the negated class take it, so Python drops it; RE2 would fold it into \p{L}.
std::string split_pattern() {
  std::string space;
  for (const auto& [first, last] : regex_space_ranges()) {
    space += "\\x{" + hex(first) + "}-\\x{" + hex(last) + "}";
  }
  return "((?i:" + std::string(kClipStartText) + "|" + std::string(kClipEndText) +
         "|'s|'t|'re|'ve|'m|'ll|'d)|\\p{L}+|\\p{N}|[^" + space + "\\p{L}\\p{N}\\x{345}]+)";
}

RE2::Options split_options() {
  RE2::Options o;
  o.set_log_errors(false);
  return o;
}

}  // namespace

ClipSplitter::ClipSplitter() : re_(std::make_unique<RE2>(split_pattern(), split_options())) {
  MLL_CHECK(re_->ok(), "CLIP split pattern: ", re_->error());
}

ClipSplitter::~ClipSplitter() = default;

std::vector<std::string_view> ClipSplitter::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  re2::StringPiece input(text.data(), text.size());
  re2::StringPiece piece;
  // No alternative matches the empty string, so every match consumes input.
  while (RE2::FindAndConsume(&input, *re_, &piece)) {
    pieces.emplace_back(piece.data(), piece.size());
  }
  return pieces;
}

}  // namespace mll::tokenize::detail
