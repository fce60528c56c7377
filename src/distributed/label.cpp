#include "mll/distributed/label.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "compute.hpp"
#include "coordinator.hpp"
#include "finish.hpp"
#include "lifeline.hpp"
#include "mll/core/cpus.hpp"
#include "mll/core/log.hpp"
#include "mll/distributed/collective.hpp"
#include "mll/feed/crop_cache.hpp"
#include "mll/feed/inputs.hpp"
#include "mll/probe/probe_set.hpp"
#include "mll/schedule/memory.hpp"
#include "mll/store/store.hpp"
#include "protocol.hpp"
#include "worker.hpp"

namespace mll::distributed {
namespace {

// What every rank needs to compute shards: the plan's groups, the captions and the probe image
// paths. Rank 0 reads them once and sends them, so that only the writer touches the store (HDF5
// is not thread-safe, and the local backend's ranks share a process).
struct Inputs {
  std::vector<label::Group> groups;
  std::vector<std::string> captions;
  std::vector<std::string> paths;
  std::vector<std::int64_t> sizes, digests;  // what each probe image was (empty: unrecorded)
};

// Rank 0's writer state.
struct Writer {
  std::optional<store::Store> store;
  std::optional<label::WorkPlan> plan;
};

std::vector<char> encode_inputs(const label::WorkPlan& plan, const store::Store& store) {
  wire::Writer w;
  w.put<std::uint64_t>(plan.groups.size());
  for (const auto& group : plan.groups) {
    w.put<double>(group.gflops_per_image);
    w.put<std::int32_t>(group.part);
    w.put<std::int32_t>(group.parts);
    w.put<std::int64_t>(group.memory);
    w.put<std::uint64_t>(group.models.size());
    for (const auto& m : group.models) w.put(m.id);
  }
  w.put(store.captions());
  w.put(label::probe_image_paths(store));
  const auto& probe = store.probe();
  const bool recorded = !probe.image_digests.empty();
  w.put<std::uint64_t>(recorded ? probe.image_count() : 0);
  for (std::size_t i = 0; recorded && i < probe.image_count(); ++i) {
    w.put<std::int64_t>(probe::has_fingerprint(probe, i) ? probe.image_sizes[i] : -1);
    w.put<std::int64_t>(probe.image_digests[i]);
  }
  return std::move(w.buffer());
}

const zoo::ModelSpec& spec_of(const std::string& id, const std::vector<zoo::ModelSpec>& specs) {
  const auto it =
      std::find_if(specs.begin(), specs.end(), [&](const zoo::ModelSpec& s) { return s.id == id; });
  if (it == specs.end()) {
    MLL_THROW(UsageError, "model '", id, "' is not in this rank's zoo (all ranks must read the ",
              "same zoo manifest)");
  }
  return *it;
}

Inputs decode_inputs(const std::vector<char>& bytes, const std::vector<zoo::ModelSpec>& specs) {
  wire::Reader r(bytes);
  Inputs inputs;
  inputs.groups.resize(r.get<std::uint64_t>());
  for (auto& group : inputs.groups) {
    group.gflops_per_image = r.get<double>();
    group.part = r.get<std::int32_t>();
    group.parts = r.get<std::int32_t>();
    group.memory = r.get<std::int64_t>();
    group.models.resize(r.get<std::uint64_t>());
    for (auto& model : group.models) model = spec_of(r.get_string(), specs);
    group.preprocess = feed::preprocess_spec(group.models.front());
    group.key = feed::preprocess_key(group.preprocess);
  }
  inputs.captions = r.get_strings();
  inputs.paths = r.get_strings();
  const auto checked = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < checked; ++i) {
    inputs.sizes.push_back(r.get<std::int64_t>());
    inputs.digests.push_back(r.get<std::int64_t>());
  }
  return inputs;
}

// What this rank may give the models when no --memory was given: most of its GPU's free memory
// (split between the ranks of the node that label() put on the same GPU: all of them measure it
// before anything is loaded), or its share of the host memory the node has left (its ranks
// split it). 0 when unknown.
std::int64_t default_memory(const Comm& comm, const zoo::Device& device, int device_sharers) {
  if (device.is_cuda()) {
    const std::int64_t free = zoo::cuda_free_memory(device.index);
    return free > 0 ? free / std::max(1, device_sharers) / 10 * 9 : 0;
  }
  const MemoryAvailable host = available_memory();
  return host.bytes / std::max(1, comm.local_size()) / 10 * 8;
}

// Collective: the budget every rank plans with, the smallest over the ranks (rank 0 plans for
// all of them).
std::int64_t agree_memory(Comm& comm, const label::LabelOptions& options, int device_sharers) {
  if (options.memory >= 0) return options.memory;
  const std::int64_t mine = default_memory(comm, options.run.device, device_sharers);
  std::int64_t budget = 0;
  for (const auto v : comm.all_gather({static_cast<std::uint64_t>(mine)}, "memory budgets")) {
    const auto bytes = static_cast<std::int64_t>(v);
    if (bytes > 0 && (budget == 0 || bytes < budget)) budget = bytes;
  }
  if (budget > 0) {
    log::info("memory budget for the models: ", schedule::format_bytes(budget), " per rank (",
              !options.run.device.is_cuda() ? "80% of the host memory available to each rank"
              : device_sharers > 1
                  ? cat("90% of the GPU's free memory, shared by ", device_sharers, " ranks")
                  : std::string("90% of the GPU's free memory"),
              "; --memory to change)");
  }
  return budget;
}

// Rank 0, after the loop: the crops that split groups shared in `<store>.crops` (not a folder the
// user named) are removed once every model of their config is done; until then a rerun needs
// them. Throws what the store throws.
void remove_shared_crops(const store::Store& store, const label::WorkPlan& plan,
                         const label::LabelOptions& options) {
  if (!options.image_cache.empty()) return;
  std::map<std::string, image::PreprocessSpec> configs;
  std::set<std::string> unfinished;
  for (const auto& group : plan.groups) {
    if (group.parts > 1) configs.emplace(group.key, group.preprocess);
    for (const auto& spec : group.models) {
      const auto record = store.find_model(spec.id);
      if (!record || record->status != store::ModelStatus::kDone) unfinished.insert(group.key);
    }
  }
  for (auto& [key, preprocess] : configs) {
    if (unfinished.count(key)) continue;
    preprocess.fast_jpeg_decode = options.fast_decode;
    const auto removed = feed::CropCache::remove_config(options.shared_crops, preprocess);
    if (removed > 0) {
      log::info("removed the ", removed, " crop files the sub-groups of ", key, " shared (",
                options.shared_crops, ")");
    }
  }
}

// Collective: rank 0 opens the store and plans; every rank gets the inputs.
Inputs plan_everywhere(Comm& comm, const std::string& store_path,
                       const std::vector<zoo::ModelSpec>& specs, const label::LabelOptions& options,
                       Writer& writer) {
  Outcome outcome;
  std::vector<char> bytes;
  if (comm.rank() == 0) {
    outcome.run([&] {
      store::Store::OpenOptions open;
      if (options.quarantine_foreign) open.foreign_files = store::Store::ForeignFiles::kQuarantine;
      writer.store.emplace(store::Store::open(store_path, store::Store::Mode::kWrite, open));
      writer.plan.emplace(label::plan_work(*writer.store, specs, options));
      bytes = encode_inputs(*writer.plan, *writer.store);
    });
  }
  agree(comm, outcome, "planning");
  comm.broadcast(bytes, 0, "sharing the plan");
  Inputs inputs;
  outcome.run([&] { inputs = decode_inputs(bytes, specs); });
  agree(comm, outcome, "reading the plan");
  return inputs;
}

// Collective: the shards. Rank 0 coordinates, the others relay; how rank 0's loop ended is how
// every rank's ends.
// After a rank died, nothing collective can complete: PeerLost leaves without it.
void run_shards(Comm& comm, Coordinator* coordinator, label::Executor& executor, StopFlag& stop,
                const Lifeline& lifeline) {
  Outcome mine;
  {
    Mailbox mailbox;
    ComputeThread compute(executor, mailbox, stop);
    if (coordinator) {
      mine.run([&] { coordinator->run(mailbox); });
      lifeline.throw_if_lost();
      // Workers still in the loop (after rank 0's own failure) are released.
      if (mine.failed()) coordinator->abandon();
    } else {
      mine.run([&] { work(comm, mailbox, stop, lifeline); });
    }
  }
  lifeline.throw_if_lost();
  share_outcome(comm, coordinator ? mine : Outcome(), 0, "ending the labeling loop");
  if (mine.failed()) throw_error(mine.code(), mine.message());
}

}  // namespace

int ranks_on_device(int local_size, int devices, int index) {
  if (local_size < 1 || devices < 1 || index < 0 || index >= devices) {
    MLL_THROW(UsageError, "ranks_on_device: ", local_size, " ranks, GPU ", index, " of ", devices);
  }
  return (local_size - index + devices - 1) / devices;
}

label::LabelReport label(Comm& comm, const std::string& store_path,
                         const std::vector<zoo::ModelSpec>& specs, label::LabelOptions options,
                         StopFlag& stop) {
  // One device per rank: the node-local rank picks the GPU (round robin when the node has more
  // ranks than GPUs: those ranks then share the GPU's memory budget). Where each rank sees only
  // its own GPU (Slurm's --gpus-per-task), every rank's device 0 is a different GPU.
  int device_sharers = 1;
  if (comm.size() > 1 && options.run.device.is_cuda() && zoo::cuda_device_count() > 0 &&
      std::getenv("MLL_KEEP_DEVICE") == nullptr) {
    const int count = zoo::cuda_device_count();
    options.run.device.index = comm.local_rank() % count;
    if (count > 1)
      device_sharers = ranks_on_device(comm.local_size(), count, options.run.device.index);
  }
  if (comm.rank() != 0) options.progress = false;
  // Before anything else, so that a rank dying in any later phase is reported by the others.
  const Lifeline lifeline(comm);
  options.memory = agree_memory(comm, options, device_sharers);
  options.workers = comm.size();
  if (options.shared_crops.empty()) {
    options.shared_crops =
        options.image_cache.empty() ? store_path + ".crops" : options.image_cache;
  }
  Writer writer;
  Inputs inputs = plan_everywhere(comm, store_path, specs, options, writer);
  // Every failure before the loop is agreed on: a rank that left alone would say "bye" on its
  // lifeline, and the others would wait for it in the next collective.
  std::optional<label::Executor> executor;
  std::optional<Coordinator> coordinator;
  Outcome setup;
  setup.run([&] {
    executor.emplace(std::move(inputs.groups), std::move(inputs.captions), std::move(inputs.paths),
                     options, std::move(inputs.sizes), std::move(inputs.digests));
    if (comm.rank() == 0) {
      coordinator.emplace(comm, *writer.store, *writer.plan, options, stop, lifeline);
    }
  });
  agree(comm, setup, "setting up the labeling loop");
  Coordinator* const rank0 = coordinator ? &*coordinator : nullptr;
  // Models a stopped run left with every row stored are finished first.
  finish_together(comm, rank0, options.run.device, options.label_block);
  run_shards(comm, rank0, *executor, stop, lifeline);
  finish_together(comm, rank0, options.run.device, options.label_block);
  if (rank0) {
    try {
      remove_shared_crops(*writer.store, *writer.plan, options);
    } catch (const std::exception& e) {
      log::warn("shared crops not removed: ", e.what());
    }
  }
  // Shards stopped by unusable probe images: everything else is stored; the run ends 65.
  Outcome unreadable;
  if (rank0) unreadable.run([&] { rank0->throw_if_unreadable(); });
  share_outcome(comm, unreadable, 0, "reporting unreadable probe images");
  return rank0 ? rank0->report() : label::LabelReport{};
}

label::LabelReport label_here(const std::string& store_path,
                              const std::vector<zoo::ModelSpec>& specs,
                              const label::LabelOptions& options) {
  Comm comm = Comm::self();
  StopFlag stop;
  return label(comm, store_path, specs, options, stop);
}

void configure_process(const Comm& comm, label::LabelOptions& options, const std::string& log_dir,
                       const ThreadRequest& request) {
  log::set_rank(comm.size() > 1 ? comm.rank() : -1);
  if (!log_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(log_dir, ec);
    if (ec && !std::filesystem::is_directory(log_dir)) {
      MLL_THROW(UsageError, "--log-dir ", log_dir, ": cannot create the folder: ", ec.message());
    }
    log::set_file(
        (std::filesystem::path(log_dir) / ("rank-" + std::to_string(comm.rank()) + ".log"))
            .string());
  }
  // The ranks of a node share its CPUs. On a GPU the model needs one CPU thread (it launches
  // kernels) and decoding gets the rest. On the CPU the model gets half and decoding every CPU:
  // decode threads sleep while the prefetch window is full, so they only take the cores the model
  // leaves idle, and a model faster than its input no longer caps decoding at half the machine
  // (bench/label_pipeline.sh section 7: 1 decode thread of 2 CPUs left a core idle).
  const CpuBudget budget = usable_cpus();
  const int share = std::max(1, budget.cpus / std::max(1, comm.local_size()));
  int decode = request.decode, model = request.model;
  if (options.run.device.is_cuda()) {
    if (decode <= 0) decode = std::max(1, share - 1);
    if (model <= 0) model = 1;
  } else {
    if (decode <= 0) decode = request.model > 0 ? std::max(1, share - request.model) : share;
    if (model <= 0) model = std::max(1, share - share / 2);
  }
  // With nothing to decode (captions, crops read from the image cache) a CPU model takes the
  // rank's whole share, unless the thread count was asked for.
  int without_decoding = !options.run.device.is_cuda() && request.model <= 0 ? share : model;
  if (request.model <= 0 && numeric_library_threads() > 0) {
    model = std::min(model, numeric_library_threads());
    without_decoding = std::min(without_decoding, numeric_library_threads());
  }
  zoo::set_threads(model);
  options.model_threads = model;
  options.model_threads_without_decoding = without_decoding;
  options.decode_threads = decode;
  log::info("threads: model ", model, " (", options.model_threads_without_decoding,
            " with nothing to decode), decode ", decode, " (", budget.cpus, " CPU(s) from ",
            budget.source, ", ", comm.local_size(), " rank(s) on this node)");
}

}  // namespace mll::distributed
