// The pre-tokenizing split of CLIP: open_clip's regex, run by RE2. Internal to the module; its
// own class so that tests can check it code point by code point against Python's regex module.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace mll::tokenize::detail {

inline constexpr std::string_view kClipStartText = "<start_of_text>";
inline constexpr std::string_view kClipEndText = "<end_of_text>";

class ClipSplitter {
 public:
  ClipSplitter();
  ~ClipSplitter();
  ClipSplitter(const ClipSplitter&) = delete;
  ClipSplitter& operator=(const ClipSplitter&) = delete;

  // The pieces regex.findall(pattern, text, IGNORECASE) returns, as views into `text`, which
  // must be valid UTF-8. Thread-safe. Does not throw except std::bad_alloc.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  std::unique_ptr<re2::RE2> re_;
};

}  // namespace mll::tokenize::detail
