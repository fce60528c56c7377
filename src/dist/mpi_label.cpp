#include "mll/dist/mpi_label.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "mll/core/error.hpp"
#include "mll/core/log.hpp"
#include "mll/core/progress.hpp"
#include "mll/core/signals.hpp"
#include "mll/dist/scheduler.hpp"
#include "mll/label/inputs.hpp"
#include "mll/label/labels.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/runner.hpp"
#include "reduce.hpp"
#include "wire.hpp"

namespace mll::dist {
namespace {

enum Tag : int {
  kRequest = 1,  // worker -> 0: int32 loaded group
  kAssign,       // 0 -> worker: shard bytes, or empty = no more work
  kResult,       // worker -> 0: result bytes
  kError,        // worker -> 0: int32 exit code + message
  kStop,         // 0 -> worker: stop after the current batch
  kStopRequest,  // worker -> 0: this rank received a stop signal
  kBlock,        // 0 -> worker: image embeddings of one summary-label block (floats)
};

// MPI for the whole process: initialised once, finalised at exit.
class Runtime {
 public:
  static Runtime& get() {
    static Runtime runtime;
    return runtime;
  }
  void init() {
    if (initialised_) return;
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    if (provided < MPI_THREAD_FUNNELED) {
      MLL_THROW(InternalError, "the MPI library does not support MPI_THREAD_FUNNELED");
    }
    initialised_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
  }
  ~Runtime() {
    int finalised = 0;
    if (initialised_ && MPI_Finalized(&finalised) == MPI_SUCCESS && !finalised) MPI_Finalize();
  }
  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  int local_rank() const noexcept { return local_rank_; }
  int local_size() const noexcept { return local_size_; }

 private:
  bool initialised_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

// Collective: `root`'s bytes on every rank (length first, so the receivers can size them).
void broadcast_bytes(std::vector<char>& bytes, int root) {
  std::uint64_t length = bytes.size();
  MPI_Bcast(&length, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
  bytes.resize(length);
  MPI_Bcast(bytes.data(), static_cast<int>(length), MPI_BYTE, root, MPI_COMM_WORLD);
}

void send_bytes(std::vector<char>& bytes, int to, int tag) {
  MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, to, tag, MPI_COMM_WORLD);
}

std::vector<char> receive_bytes(int from, int tag, MPI_Status* status_out = nullptr) {
  MPI_Status status;
  MPI_Probe(from, tag, MPI_COMM_WORLD, &status);
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  std::vector<char> bytes(static_cast<std::size_t>(count));
  MPI_Recv(bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD,
           MPI_STATUS_IGNORE);
  if (status_out) *status_out = status;
  return bytes;
}

// Between a rank's main thread (all MPI) and its compute thread (the Executor).
struct Channel {
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<int> request;  // compute -> main: wants work (its loaded group)
  std::optional<std::optional<label::Shard>> answer;  // main -> compute: a shard or "no more"
  std::deque<label::ShardResult> results;             // compute -> main
  std::optional<std::pair<ExitCode, std::string>> error;
  bool finished = false;
};

void compute_loop(label::Executor& executor, Channel& channel) {
  try {
    for (;;) {
      std::optional<label::Shard> shard;
      {
        std::unique_lock lock(channel.mutex);
        channel.request = executor.loaded_group();
        channel.changed.notify_all();
        channel.changed.wait(lock, [&] { return channel.answer.has_value(); });
        shard = std::move(*channel.answer);
        channel.answer.reset();
      }
      if (!shard) break;
      auto result = executor.run(*shard);
      std::lock_guard lock(channel.mutex);
      channel.results.push_back(std::move(result));
      channel.changed.notify_all();
    }
  } catch (const Error& e) {
    std::lock_guard lock(channel.mutex);
    channel.error = std::make_pair(e.code(), std::string(e.what()));
  } catch (const std::exception& e) {
    std::lock_guard lock(channel.mutex);
    channel.error = std::make_pair(ExitCode::kInternal, std::string(e.what()));
  }
  std::lock_guard lock(channel.mutex);
  channel.finished = true;
  channel.changed.notify_all();
}

// Rebuilds the plan's groups on a worker rank from the model ids rank 0 broadcast.
std::vector<label::Group> groups_from(wire::Reader& r, const std::vector<zoo::ModelSpec>& specs) {
  std::vector<label::Group> groups(r.get<std::uint64_t>());
  for (auto& group : groups) {
    const auto models = r.get<std::uint64_t>();
    for (std::uint64_t k = 0; k < models; ++k) {
      const std::string id = r.get_string();
      const auto it = std::find_if(specs.begin(), specs.end(),
                                   [&](const zoo::ModelSpec& s) { return s.id == id; });
      if (it == specs.end()) {
        MLL_THROW(UsageError, "model '", id, "' is not in this rank's zoo (all ranks must ",
                  "read the same zoo manifest)");
      }
      group.models.push_back(*it);
    }
    group.preprocess = label::preprocess_spec(group.models.front());
    group.key = label::preprocess_key(group.preprocess);
  }
  return groups;
}

void sleep_briefly() { std::this_thread::sleep_for(std::chrono::milliseconds(1)); }

[[noreturn]] void rethrow(ExitCode code, const std::string& message) {
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

// ---------------------------------------------------------------------------------------------
// Rank 0

class Coordinator {
 public:
  Coordinator(store::Store& store, const label::WorkPlan& plan, const label::LabelOptions& options,
              int size)
      : store_(store), plan_(plan), committer_(store, plan, options), size_(size) {
    std::vector<int> groups;
    std::vector<double> work;
    for (const auto& shard : plan.shards) {
      groups.push_back(shard.group);
      const double rows = static_cast<double>(shard.end - shard.begin);
      work.push_back(rows * plan.groups[static_cast<std::size_t>(shard.group)].gflops_per_image);
      if (shard.kind == store::UnitKind::kImage) total_images_ += shard.end - shard.begin;
    }
    scheduler_ = std::make_unique<Scheduler>(groups, work);
    if (options.progress && total_images_ > 0) {
      progress_ = std::make_unique<Progress>("label", total_images_, "images");
    }
  }

  // The next shard for a worker (models that failed meanwhile removed), or nothing.
  std::optional<label::Shard> next(int loaded_group) {
    while (!stopping_) {
      const auto index = scheduler_->next(loaded_group);
      if (!index) return std::nullopt;
      label::Shard shard = plan_.shards[*index];
      for (std::size_t k = shard.models.size(); k-- > 0;) {
        if (committer_.failed(shard.models[k])) {
          shard.models.erase(shard.models.begin() + static_cast<std::ptrdiff_t>(k));
          shard.needed.erase(shard.needed.begin() + static_cast<std::ptrdiff_t>(k));
        }
      }
      if (!shard.models.empty()) return shard;
    }
    return std::nullopt;
  }

  void accept(const label::ShardResult& result) {
    committer_.commit(result);
    std::int64_t images = 0;
    for (const auto& run : result.rows) {
      if (run.kind == store::UnitKind::kImage) images = std::max(images, run.end - run.begin);
    }
    if (progress_) progress_->advance(images);
    if (result.stopped) stop(0);
    // One rank finishes models as they complete; several share the work at the end
    // (finish_together).
    if (size_ == 1) committer_.finish_complete();
  }

  void fail(ExitCode code, const std::string& message) {
    if (!error_) error_ = std::make_pair(code, message);
    stop(0);
  }

  // Stops handing out work; tells every active worker rank to stop after its batch.
  void stop(int signal_number) {
    if (signal_number != 0 && stop_signal_ == 0) stop_signal_ = signal_number;
    if (stopping_) return;
    stopping_ = true;
    request_stop(stop_signal_ != 0 ? stop_signal_ : SIGTERM);  // the local compute thread
    for (int r = 1; r < size_; ++r) {
      if (active_.count(r)) {
        int dummy = 0;
        MPI_Send(&dummy, 1, MPI_INT, r, kStop, MPI_COMM_WORLD);
      }
    }
  }

  void run(Channel& local) {
    for (int r = 1; r < size_; ++r) active_.insert(r);
    bool local_active = true;
    while (local_active || !active_.empty()) {
      bool busy = false;
      if (stop_requested() && !stopping_) stop(stop_signal());
      // The local compute thread.
      {
        std::unique_lock lock(local.mutex);
        while (!local.results.empty()) {
          auto result = std::move(local.results.front());
          local.results.pop_front();
          lock.unlock();
          accept(result);
          lock.lock();
          busy = true;
        }
        if (local.error) {
          auto [code, message] = *local.error;
          local.error.reset();
          lock.unlock();
          fail(code, "rank 0: " + message);
          lock.lock();
        }
        if (local.request && !local.answer) {
          const int loaded = *local.request;
          local.request.reset();
          lock.unlock();
          auto shard = next(loaded);
          lock.lock();
          local.answer = std::move(shard);
          local.changed.notify_all();
          busy = true;
        }
        if (local.finished) local_active = false;
      }
      // Worker ranks.
      int flag = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
      if (flag) {
        busy = true;
        const int from = status.MPI_SOURCE;
        const std::vector<char> bytes = receive_bytes(from, status.MPI_TAG);
        wire::Reader r(bytes);
        switch (status.MPI_TAG) {
          case kRequest: {
            auto shard = next(r.get<std::int32_t>());
            wire::Writer w;
            if (shard) {
              wire::put_shard(w, *shard);
            } else {
              active_.erase(from);  // an empty assignment ends the worker
            }
            send_bytes(w.buffer(), from, kAssign);
            break;
          }
          case kResult:
            accept(wire::get_result(r));
            break;
          case kError: {
            const auto code = static_cast<ExitCode>(r.get<std::int32_t>());
            fail(code, "rank " + std::to_string(from) + ": " + r.get_string());
            break;
          }
          case kStopRequest:
            stop(r.get<std::int32_t>());
            break;
          default:
            MLL_THROW(InternalError, "unexpected message tag ", status.MPI_TAG);
        }
      }
      if (!busy) sleep_briefly();
    }
    if (size_ == 1) committer_.finish_complete();
    if (progress_) progress_->finish();
    if (error_) rethrow(error_->first, error_->second);
    if (stop_signal_ != 0) {
      MLL_THROW(Interrupted, "stopped by signal ", stop_signal_,
                " after committing the finished rows; rerun the same command to continue");
    }
  }

  // When rank 0 itself fails outside the loop: make every worker rank stop and leave.
  void abandon() {
    stopping_ = true;
    for (int r = 1; r < size_; ++r) {
      if (!active_.count(r)) continue;
      int dummy = 0;
      MPI_Send(&dummy, 1, MPI_INT, r, kStop, MPI_COMM_WORLD);
    }
    // Answer each remaining request with "no more work" so that no rank waits forever.
    while (!active_.empty()) {
      MPI_Status status;
      const std::vector<char> bytes = receive_bytes(MPI_ANY_SOURCE, MPI_ANY_TAG, &status);
      if (status.MPI_TAG == kRequest) {
        std::vector<char> none;
        send_bytes(none, status.MPI_SOURCE, kAssign);
        active_.erase(status.MPI_SOURCE);
      }
    }
  }

  const label::LabelReport& report() const noexcept { return committer_.report(); }
  label::Committer& committer() noexcept { return committer_; }
  const store::Store& store() const noexcept { return store_; }

 private:
  store::Store& store_;
  const label::WorkPlan& plan_;
  label::Committer committer_;
  int size_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Progress> progress_;
  std::int64_t total_images_ = 0;
  std::set<int> active_;
  bool stopping_ = false;
  int stop_signal_ = 0;
  std::optional<std::pair<ExitCode, std::string>> error_;
};

// ---------------------------------------------------------------------------------------------
// Ranks 1..N-1: relay between the compute thread and rank 0.

void worker_main_loop(Channel& channel) {
  bool stop_reported = false, done = false;
  for (;;) {
    bool busy = false;
    if (stop_requested() && !stop_reported) {
      wire::Writer w;
      w.put<std::int32_t>(stop_signal());
      send_bytes(w.buffer(), 0, kStopRequest);
      stop_reported = true;
    }
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(0, kStop, MPI_COMM_WORLD, &flag, &status);
    if (flag) {
      int dummy = 0;
      MPI_Recv(&dummy, 1, MPI_INT, 0, kStop, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      request_stop(SIGTERM);
      stop_reported = true;  // rank 0 already knows
    }
    std::unique_lock lock(channel.mutex);
    while (!channel.results.empty()) {
      auto result = std::move(channel.results.front());
      channel.results.pop_front();
      lock.unlock();
      wire::Writer w;
      wire::put_result(w, result);
      send_bytes(w.buffer(), 0, kResult);
      lock.lock();
      busy = true;
    }
    if (channel.error) {
      auto [code, message] = *channel.error;
      channel.error.reset();
      lock.unlock();
      wire::Writer w;
      w.put<std::int32_t>(static_cast<std::int32_t>(code));
      w.put(message);
      send_bytes(w.buffer(), 0, kError);
      lock.lock();
      busy = true;
    }
    if (channel.request && !channel.answer && !done) {
      const int loaded = *channel.request;
      channel.request.reset();
      lock.unlock();
      wire::Writer w;
      w.put<std::int32_t>(loaded);
      send_bytes(w.buffer(), 0, kRequest);
      // Wait for the assignment; a stop may arrive first.
      std::optional<label::Shard> shard;
      for (;;) {
        MPI_Status s;
        const std::vector<char> bytes = receive_bytes(0, MPI_ANY_TAG, &s);
        if (s.MPI_TAG == kStop) {
          request_stop(SIGTERM);
          continue;
        }
        MLL_CHECK(s.MPI_TAG == kAssign, "unexpected message tag ", s.MPI_TAG);
        if (!bytes.empty()) {
          wire::Reader r(bytes);
          shard = wire::get_shard(r);
        } else {
          done = true;
        }
        break;
      }
      lock.lock();
      channel.answer = std::move(shard);
      channel.changed.notify_all();
      busy = true;
    }
    if (channel.finished && channel.results.empty() && !channel.error) {
      if (!done) {
        // The compute thread ended on an error it already reported; rank 0 answers our
        // next request with "no more work", so ask once to be released cleanly.
        lock.unlock();
        wire::Writer w;
        w.put<std::int32_t>(-1);
        send_bytes(w.buffer(), 0, kRequest);
        for (;;) {
          MPI_Status s;
          receive_bytes(0, MPI_ANY_TAG, &s);
          if (s.MPI_TAG == kAssign) break;
        }
      }
      return;
    }
    lock.unlock();
    if (!busy) sleep_briefly();
  }
}

// ---------------------------------------------------------------------------------------------
// All ranks, after the shards: summary labels.

// Collective: every rank learns the worst error any rank had (the lowest such rank's message)
// and throws it; returns when no rank had one.
void agree(std::int32_t code, const std::string& message) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  struct {
    int code;
    int rank;
  } mine{code, rank}, worst{0, 0};
  MPI_Allreduce(&mine, &worst, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD);
  if (worst.code == 0) return;
  std::vector<char> text(message.begin(), message.end());
  broadcast_bytes(text, worst.rank);
  rethrow(static_cast<ExitCode>(worst.code),
          "rank " + std::to_string(worst.rank) + ": " + std::string(text.begin(), text.end()));
}

template <class F>
void on_this_rank(F&& step, std::int32_t& code, std::string& message) {
  try {
    step();
  } catch (const Error& e) {
    code = static_cast<std::int32_t>(e.code());
    message = e.what();
  } catch (const std::exception& e) {
    code = static_cast<std::int32_t>(ExitCode::kInternal);
    message = e.what();
  }
}

// Collective: rank 0's matrix on every rank.
void broadcast_matrix(store::Matrix& m) {
  std::int64_t shape[2] = {m.rows, m.dim};
  MPI_Bcast(shape, 2, MPI_INT64_T, 0, MPI_COMM_WORLD);
  m.rows = shape[0];
  m.dim = shape[1];
  m.values.resize(static_cast<std::size_t>(m.rows * m.dim));
  MPI_Bcast(m.values.data(), static_cast<int>(m.values.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
}

// Collective. Finishes the models whose rows are all stored, sharing the expensive step of
// their summary labels (predicting the node of every probe image, a P x N x d product) among
// the ranks: block b of `block` images goes to rank b mod size. Rank 0 reads the embeddings (it
// is the writer; other ranks do not depend on seeing its newest files, which a network file
// system may show late) and sends each rank its blocks; the predictions meet on rank 0 through a
// Reducer (NCCL between GPUs, MPI otherwise), and rank 0 counts them and finishes the model. The
// blocks lie on a fixed grid, so the labels do not depend on the number of ranks. Called before
// the shards (models a stopped run left complete but pending) and after them. `coordinator` is
// rank 0's, null elsewhere.
void finish_together(Coordinator* coordinator, const zoo::Device& device, std::int64_t block) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::int32_t code = 0;
  std::string message;
  std::vector<std::string> models;
  std::int64_t images = 0;
  if (rank == 0) {
    on_this_rank([&] { models = coordinator->committer().complete_models(); }, code, message);
    images = static_cast<std::int64_t>(coordinator->store().probe().image_count());
  }
  agree(code, message);
  {
    wire::Writer w;
    w.put<std::int64_t>(images);
    w.put<std::uint64_t>(models.size());
    for (const auto& id : models) w.put(id);
    broadcast_bytes(w.buffer(), 0);
    wire::Reader r(w.buffer());
    images = r.get<std::int64_t>();
    models.resize(r.get<std::uint64_t>());
    for (auto& id : models) id = r.get_string();
  }
  if (models.empty()) return;
  const std::unique_ptr<Reducer> reducer = make_reducer(device);
  if (rank == 0) {
    log::info("summary labels of ", models.size(), " model(s) on ", size, " ranks (",
              reducer->name(), " reduction)");
  }
  const std::int64_t blocks = (images + block - 1) / block;
  for (const auto& id : models) {
    store::Matrix text;
    if (rank == 0) {
      on_this_rank([&] { text = label::node_text_embeddings(coordinator->store(), id); }, code,
                   message);
    }
    agree(code, message);
    broadcast_matrix(text);
    std::vector<std::int32_t> predicted(static_cast<std::size_t>(images), -1);
    const auto rows_of = [&](std::int64_t b) {
      return std::make_pair(b * block, std::min(images, (b + 1) * block));
    };
    for (std::int64_t first = 0; first < blocks; first += size) {
      // Block first + r goes to rank r.
      if (rank == 0) {
        std::vector<store::Matrix> rows(static_cast<std::size_t>(size));
        on_this_rank(
            [&] {
              for (int r = 0; r < size && first + r < blocks; ++r) {
                const auto [begin, end] = rows_of(first + r);
                rows[static_cast<std::size_t>(r)] =
                    coordinator->store().read_image_embeddings(id, begin, end);
              }
            },
            code, message);
        // After a failed read every rank still gets its message (empty) and meets in agree().
        std::vector<MPI_Request> requests;
        for (int r = 1; r < size && first + r < blocks; ++r) {
          auto& values = rows[static_cast<std::size_t>(r)].values;
          requests.emplace_back();
          MPI_Isend(values.data(), code == 0 ? static_cast<int>(values.size()) : 0, MPI_FLOAT, r,
                    kBlock, MPI_COMM_WORLD, &requests.back());
        }
        if (code == 0) {
          on_this_rank(
              [&] {
                label::predict_rows(rows[0], text, id, predicted.data() + rows_of(first).first);
              },
              code, message);
        }
        MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE);
      } else if (first + rank < blocks) {
        MPI_Status status;
        MPI_Probe(0, kBlock, MPI_COMM_WORLD, &status);
        int count = 0;
        MPI_Get_count(&status, MPI_FLOAT, &count);
        store::Matrix rows;
        rows.dim = text.dim;
        rows.rows = text.dim > 0 ? count / text.dim : 0;
        rows.values.resize(static_cast<std::size_t>(count));
        MPI_Recv(rows.values.data(), count, MPI_FLOAT, 0, kBlock, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        if (count > 0) {
          on_this_rank(
              [&] {
                label::predict_rows(rows, text, id, predicted.data() + rows_of(first + rank).first);
              },
              code, message);
        }
      }
      agree(code, message);
    }
    on_this_rank([&] { reducer->max_to_root(predicted); }, code, message);
    agree(code, message);
    if (rank == 0) {
      on_this_rank(
          [&] {
            coordinator->committer().finish(
                id, label::labels_from_predictions(coordinator->store(), predicted));
          },
          code, message);
    }
    agree(code, message);
  }
}

}  // namespace

bool launched_by_mpi() noexcept {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

int world_rank() noexcept { return Runtime::get().rank(); }
int world_size() noexcept { return Runtime::get().size(); }

label::LabelReport label_distributed(const std::string& store_path,
                                     const std::vector<zoo::ModelSpec>& specs,
                                     label::LabelOptions options, const DistOptions& dist) {
  Runtime& mpi = Runtime::get();
  mpi.init();
  const int rank = mpi.rank(), size = mpi.size();
  log::set_rank(size > 1 ? rank : -1);
  if (!dist.log_dir.empty()) {
    log::set_file(
        (std::filesystem::path(dist.log_dir) / ("rank-" + std::to_string(rank) + ".log")).string());
  }
  // One device per rank: the node-local rank picks the GPU; CPU ranks share the cores.
  if (options.run.device.is_cuda() && zoo::cuda_device_count() > 0 &&
      std::getenv("MLL_KEEP_DEVICE") == nullptr) {
    options.run.device.index = mpi.local_rank() % zoo::cuda_device_count();
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int share = std::max(1, cores / std::max(1, mpi.local_size()));
  zoo::set_threads(std::min(share, std::max(1, zoo::threads())));
  options.decode_threads = std::max(1, std::min(options.decode_threads, share));
  if (rank != 0) options.progress = false;

  // Rank 0 plans (it is the only writer); the plan's groups and an error status go to all.
  std::optional<store::Store> store;
  std::optional<label::WorkPlan> plan;
  std::vector<char> bytes;
  std::int32_t status_code = 0;
  std::string status_message;
  if (rank == 0) {
    try {
      store.emplace(store::Store::open(store_path, store::Store::Mode::kWrite));
      plan.emplace(label::plan_work(*store, specs, options));
      wire::Writer w;
      w.put<std::uint64_t>(plan->groups.size());
      for (const auto& group : plan->groups) {
        w.put<std::uint64_t>(group.models.size());
        for (const auto& m : group.models) w.put(m.id);
      }
      bytes = std::move(w.buffer());
    } catch (const Error& e) {
      status_code = static_cast<std::int32_t>(e.code());
      status_message = e.what();
    }
  }
  {
    wire::Writer w;
    w.put<std::int32_t>(status_code);
    w.put(status_message);
    w.put<std::uint64_t>(bytes.size());
    auto& header = w.buffer();
    header.insert(header.end(), bytes.begin(), bytes.end());
    broadcast_bytes(header, 0);
    wire::Reader r(header);
    status_code = r.get<std::int32_t>();
    status_message = r.get_string();
    const auto plan_length = r.get<std::uint64_t>();
    bytes.assign(header.end() - static_cast<std::ptrdiff_t>(plan_length), header.end());
  }
  if (status_code != 0) rethrow(static_cast<ExitCode>(status_code), status_message);

  // Every rank reads captions and probe paths from the index (a consistent snapshot: the index
  // is only ever replaced by rename).
  std::vector<label::Group> groups;
  std::vector<std::string> captions, paths;
  {
    const store::Store reader = store::Store::open(store_path, store::Store::Mode::kRead);
    captions = reader.captions();
    paths = label::probe_image_paths(reader);
  }
  if (rank == 0) {
    groups = plan->groups;
  } else {
    wire::Reader r(bytes);
    groups = groups_from(r, specs);
  }
  label::Executor executor(std::move(groups), std::move(captions), std::move(paths), options);
  std::optional<Coordinator> coordinator;
  if (rank == 0) coordinator.emplace(*store, *plan, options, size);
  // Models a stopped run left with every row stored are finished first, by all ranks.
  if (size > 1)
    finish_together(coordinator ? &*coordinator : nullptr, options.run.device, options.label_block);
  Channel channel;
  std::thread compute([&] { compute_loop(executor, channel); });
  struct Join {
    std::thread& thread;
    Channel& channel;
    ~Join() {
      {
        std::lock_guard lock(channel.mutex);
        if (!channel.answer) channel.answer = std::optional<label::Shard>();  // release it
        channel.changed.notify_all();
      }
      request_stop(SIGTERM);
      thread.join();
    }
  } join{compute, channel};

  // Rank 0 coordinates; afterwards it tells every rank how the run ended, so that all ranks
  // exit with the same code (75 after a stop signal, the error's code after a failure).
  label::LabelReport report;
  std::int32_t final_code = 0;
  std::string final_message;
  if (rank == 0) {
    try {
      coordinator->run(channel);
    } catch (const Error& e) {
      // Errors found inside run() were already spread; rank 0's own failure (e.g. the store
      // cannot be written) must still release the workers before leaving.
      if (e.code() == ExitCode::kIoError || e.code() == ExitCode::kInternal) coordinator->abandon();
      final_code = static_cast<std::int32_t>(e.code());
      final_message = e.what();
    }
  } else {
    worker_main_loop(channel);
  }
  wire::Writer w;
  w.put<std::int32_t>(final_code);
  w.put(final_message);
  broadcast_bytes(w.buffer(), 0);
  wire::Reader r(w.buffer());
  final_code = r.get<std::int32_t>();
  final_message = r.get_string();
  if (final_code != 0) rethrow(static_cast<ExitCode>(final_code), final_message);
  if (size > 1) {
    finish_together(coordinator ? &*coordinator : nullptr, options.run.device, options.label_block);
  }
  if (coordinator) report = coordinator->report();
  return report;
}

}  // namespace mll::dist
