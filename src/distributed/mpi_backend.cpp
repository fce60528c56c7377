// The MPI backend: the only file of mll that includes <mpi.h> or names MPI_COMM_WORLD.
//
// Error policy (docs/errors.md): the backend works on a duplicate of MPI_COMM_WORLD whose error
// handler is MPI_ERRORS_RETURN, checks every return code, and turns a failure into CommError
// (exit 74) carrying the caller's context and MPI's error string. Whether a dead peer surfaces as
// an error code or ends the job is up to the MPI library (Open MPI usually aborts the job), so
// nothing relies on seeing one; the store stays valid either way.
//
// Large messages: MPI counts are int. A point-to-point message travels as a first piece holding
// the total length (uint64) and up to `max_piece - 8` bytes of payload, then further pieces of
// at most `max_piece` bytes with the same tag, which MPI's non-overtaking rule keeps in order.
// Broadcasts send the length first, then pieces. `max_piece` is INT_MAX unless a test asks for
// less.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "backend.hpp"
#include "mll/distributed/session.hpp"

namespace mll::distributed {
namespace {

void check(int rc, const char* call, std::string_view context) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) length = 0;
  MLL_THROW(CommError, context, ": ", call, " failed: ",
            length > 0 ? std::string(text, static_cast<std::size_t>(length))
                       : "error " + std::to_string(rc));
}

int source_of(int from) { return from == kAnySource ? MPI_ANY_SOURCE : from; }
int tag_of(int tag) { return tag == kAnyTag ? MPI_ANY_TAG : tag; }

class MpiBackend final : public detail::Backend {
 public:
  MpiBackend(std::size_t max_piece) : max_piece_(std::clamp<std::size_t>(max_piece, 16, INT_MAX)) {
    const std::string_view context = "setting up the MPI communicator";
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup", context);
    try {
      describe(context);
    } catch (...) {
      MPI_Comm_free(&comm_);
      throw;
    }
  }

  ~MpiBackend() override {
    int finalized = 1;
    if (detail::world_broken()) return;  // a rank died: freeing may wait for it
    if (MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Comm_free(&comm_);
  }

 private:
  // Error handler, ranks and node of the duplicate.
  void describe(std::string_view context) {
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", context);
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank", context);
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", context);
    MPI_Comm node = MPI_COMM_NULL;
    check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type", context);
    const int rc_rank = MPI_Comm_rank(node, &local_rank_);
    const int rc_size = MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
    check(rc_rank, "MPI_Comm_rank", context);
    check(rc_size, "MPI_Comm_size", context);
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    int length = 0;
    check(MPI_Get_processor_name(name, &length), "MPI_Get_processor_name", context);
    host_.assign(name, static_cast<std::size_t>(length));
  }

 public:
  int rank() const noexcept override { return rank_; }
  int size() const noexcept override { return size_; }
  int local_rank() const noexcept override { return local_rank_; }
  int local_size() const noexcept override { return local_size_; }
  const std::string& host() const noexcept override { return host_; }
  const char* name() const noexcept override { return "mpi"; }

  void send(const std::vector<char>& bytes, int to, int tag, std::string_view context) override {
    const std::uint64_t total = bytes.size();
    const std::size_t first = std::min<std::size_t>(bytes.size(), max_piece_ - sizeof total);
    std::vector<char> piece(sizeof total + first);
    std::memcpy(piece.data(), &total, sizeof total);
    std::copy(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(first),
              piece.begin() + sizeof total);
    check(MPI_Send(piece.data(), static_cast<int>(piece.size()), MPI_BYTE, to, tag, comm_),
          "MPI_Send", context);
    for (std::size_t at = first; at < bytes.size(); at += max_piece_) {
      const std::size_t n = std::min(max_piece_, bytes.size() - at);
      check(MPI_Send(bytes.data() + at, static_cast<int>(n), MPI_BYTE, to, tag, comm_), "MPI_Send",
            context);
    }
  }

  std::vector<char> receive(int from, int tag, std::string_view context,
                            Envelope* envelope) override {
    MPI_Status status;
    check(MPI_Probe(source_of(from), tag_of(tag), comm_, &status), "MPI_Probe", context);
    int count = 0;
    check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count", context);
    std::vector<char> piece(static_cast<std::size_t>(count));
    check(MPI_Recv(piece.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, comm_,
                   MPI_STATUS_IGNORE),
          "MPI_Recv", context);
    std::uint64_t total = 0;
    if (piece.size() < sizeof total) {
      MLL_THROW(CommError, context, ": a message of ", piece.size(), " bytes has no length");
    }
    std::memcpy(&total, piece.data(), sizeof total);
    std::vector<char> bytes(piece.begin() + sizeof total, piece.end());
    if (bytes.size() > total) {
      MLL_THROW(CommError, context, ": a message is longer than its stated ", total, " bytes");
    }
    bytes.resize(static_cast<std::size_t>(total));
    for (std::size_t at = piece.size() - sizeof total; at < bytes.size(); at += max_piece_) {
      const std::size_t n = std::min<std::size_t>(max_piece_, bytes.size() - at);
      check(MPI_Recv(bytes.data() + at, static_cast<int>(n), MPI_BYTE, status.MPI_SOURCE,
                     status.MPI_TAG, comm_, MPI_STATUS_IGNORE),
            "MPI_Recv", context);
    }
    if (envelope) *envelope = Envelope{status.MPI_SOURCE, status.MPI_TAG};
    return bytes;
  }

  std::optional<Envelope> probe(int from, int tag, std::string_view context) override {
    int flag = 0;
    MPI_Status status;
    check(MPI_Iprobe(source_of(from), tag_of(tag), comm_, &flag, &status), "MPI_Iprobe", context);
    if (!flag) return std::nullopt;
    return Envelope{status.MPI_SOURCE, status.MPI_TAG};
  }

  void broadcast(std::vector<char>& bytes, int root, std::string_view context) override {
    std::uint64_t total = bytes.size();
    check(MPI_Bcast(&total, 1, MPI_UINT64_T, root, comm_), "MPI_Bcast", context);
    bytes.resize(static_cast<std::size_t>(total));
    for (std::size_t at = 0; at < bytes.size(); at += max_piece_) {
      const std::size_t n = std::min(max_piece_, bytes.size() - at);
      check(MPI_Bcast(bytes.data() + at, static_cast<int>(n), MPI_BYTE, root, comm_), "MPI_Bcast",
            context);
    }
  }

  std::pair<std::int32_t, int> max_loc(std::int32_t value, std::string_view context) override {
    struct {
      int value;
      int rank;
    } mine{value, rank_}, best{0, 0};
    check(MPI_Allreduce(&mine, &best, 1, MPI_2INT, MPI_MAXLOC, comm_), "MPI_Allreduce", context);
    return {best.value, best.rank};
  }

  void reduce_max(std::vector<std::int32_t>& values, int root, std::string_view context) override {
    const std::size_t step = max_piece_ / sizeof(std::int32_t);
    for (std::size_t at = 0; at < values.size(); at += step) {
      const int n = static_cast<int>(std::min(step, values.size() - at));
      std::int32_t* data = values.data() + at;
      const int rc = rank_ == root
                         ? MPI_Reduce(MPI_IN_PLACE, data, n, MPI_INT32_T, MPI_MAX, root, comm_)
                         : MPI_Reduce(data, nullptr, n, MPI_INT32_T, MPI_MAX, root, comm_);
      check(rc, "MPI_Reduce", context);
    }
  }

  std::vector<std::uint64_t> all_gather(const std::vector<std::uint64_t>& mine,
                                        std::string_view context) override {
    if (mine.size() > static_cast<std::size_t>(INT_MAX) / static_cast<std::size_t>(size_)) {
      MLL_THROW(CommError, context, ": ", mine.size(), " values per rank are too many to gather");
    }
    std::vector<std::uint64_t> all(mine.size() * static_cast<std::size_t>(size_));
    check(MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_UINT64_T, all.data(),
                        static_cast<int>(mine.size()), MPI_UINT64_T, comm_),
          "MPI_Allgather", context);
    return all;
  }

  void barrier(std::string_view context) override {
    check(MPI_Barrier(comm_), "MPI_Barrier", context);
  }

 private:
  std::size_t max_piece_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::string host_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Session

bool Session::mpi_built() noexcept { return true; }

void Session::start_mpi() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;  // started by someone else (a test's main): theirs to finalise
  int provided = 0;
  // MPI's own errors at start-up are fatal (no communicator to attach a handler to yet).
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  started_ = true;
  if (provided < MPI_THREAD_FUNNELED) {
    MLL_THROW(CommError, "the MPI library does not support MPI_THREAD_FUNNELED");
  }
}

void Session::finish_mpi() noexcept {
  int finalized = 1;
  // After a rank died MPI_Finalize may wait for it forever; the launcher ends the job anyway.
  if (detail::world_broken()) return;
  if (started_ && MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Finalize();
  started_ = false;
}

Comm Session::mpi_world(std::size_t max_piece) {
  return Comm(std::make_unique<MpiBackend>(max_piece));
}

}  // namespace mll::distributed
