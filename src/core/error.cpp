#include "mll/core/error.hpp"

#include <new>

namespace mll {

Error::Error(ExitCode code, std::string message, const char* file, int line)
    : std::runtime_error(message),
      code_(code),
      message_(std::move(message)),
      file_(file),
      line_(line) {}

Error& Error::add_context(const std::string& context) {
  message_ = context + ": " + message_;
  return *this;
}

ExitCode exit_code_of(const std::exception& e) noexcept {
  if (const auto* error = dynamic_cast<const Error*>(&e)) {
    return error->code();
  }
  return ExitCode::kInternal;
}

void throw_error(ExitCode code, const std::string& message) {
  switch (code) {
    case ExitCode::kUsage:
      throw UsageError(message);
    case ExitCode::kDataError:
      throw DataError(message);
    case ExitCode::kIoError:
      throw IoError(message);
    case ExitCode::kInterrupted:
      throw Interrupted(message);
    default:
      throw InternalError(message);
  }
}

}  // namespace mll
