// Private helpers shared by the zoo's libtorch translation units.
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace mll::zoo::detail {

// libtorch messages carry C++ backtraces and TorchScript call stacks; users need the one line
// that says what went wrong.
inline std::string torch_message(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string text = c10_error ? c10_error->what_without_backtrace() : e.what();
  const std::string marker = "RuntimeError: ";
  if (const auto pos = text.rfind(marker); pos != std::string::npos) {
    text = text.substr(pos + marker.size());
  }
  while (!text.empty() && (text.front() == '\n' || text.front() == ' ')) text.erase(0, 1);
  if (const auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  if (text.size() > 300) text = text.substr(0, 300) + "...";
  return text.empty() ? std::string("unknown libtorch error") : text;
}

}  // namespace mll::zoo::detail
