// Errors and exit codes.
//
// Every failure that reaches the user is one of the typed exceptions below; the application maps
// its type to a sysexits-style exit code (docs/errors.md) and prints its message as one line.
// Nothing here is collective; nothing here throws except the throw helpers themselves.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mll {

// Process exit codes. The numbers follow sysexits.h so that schedulers and scripts can tell a
// user's mistake from a broken file from a preemption.
enum class ExitCode : int {
  kOk = 0,
  kUsage = 64,        // bad command line or config file
  kDataError = 65,    // an input file exists but its content is wrong
  kInternal = 70,     // a bug in mll: an invariant did not hold
  kIoError = 74,      // a file could not be read or written
  kInterrupted = 75,  // stopped by a signal after committing its work: requeue and rerun
};

// Base of every mll error. Carries the source location that raised it (shown with -v) and a
// chain of context phrases added while the error travels up ("reading graph.h5").
class Error : public std::runtime_error {
 public:
  Error(ExitCode code, std::string message, const char* file = "", int line = 0);

  ExitCode code() const noexcept { return code_; }
  const char* file() const noexcept { return file_; }
  int line() const noexcept { return line_; }

  // Prefixes the message with "context: ". Returns *this so that handlers can rethrow.
  Error& add_context(const std::string& context);

  const char* what() const noexcept override { return message_.c_str(); }

 private:
  ExitCode code_;
  std::string message_;
  const char* file_;
  int line_;
};

#define MLL_DEFINE_ERROR(Name, Code)                                        \
  class Name : public Error {                                               \
   public:                                                                  \
    explicit Name(std::string message, const char* file = "", int line = 0) \
        : Error(Code, std::move(message), file, line) {}                    \
  }

MLL_DEFINE_ERROR(UsageError, ExitCode::kUsage);
MLL_DEFINE_ERROR(DataError, ExitCode::kDataError);
MLL_DEFINE_ERROR(IoError, ExitCode::kIoError);
MLL_DEFINE_ERROR(InternalError, ExitCode::kInternal);
MLL_DEFINE_ERROR(Interrupted, ExitCode::kInterrupted);

#undef MLL_DEFINE_ERROR

// Concatenates any streamable values into a string: cat("line ", 12, ": bad wnid").
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

// The exit code for any exception: mll errors carry theirs; std::bad_alloc and other standard
// exceptions are reported as internal errors.
ExitCode exit_code_of(const std::exception& e) noexcept;

// Throws the error type of `code` (UsageError for 64, ..., InternalError for 70 and any code
// without a type of its own) with `message`: how an error that crossed a process boundary as
// (code, message) is raised again on the other side.
[[noreturn]] void throw_error(ExitCode code, const std::string& message);

}  // namespace mll

// Throws Type with the concatenated message and the current source location.
#define MLL_THROW(Type, ...) throw Type(::mll::cat(__VA_ARGS__), __FILE__, __LINE__)

// An always-on assertion for invariants (also in release builds): failure is a bug in mll.
// MLL_CHECK(cond) or MLL_CHECK(cond, message parts...).
#define MLL_CHECK(...) MLL_CHECK_IMPL(__VA_ARGS__, "")
#define MLL_CHECK_IMPL(cond, ...)                                                          \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      throw ::mll::InternalError(::mll::cat("invariant failed: " #cond ". ", __VA_ARGS__), \
                                 __FILE__, __LINE__);                                      \
    }                                                                                      \
  } while (false)
