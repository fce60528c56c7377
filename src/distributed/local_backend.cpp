// The in-process backends: `size` ranks in one process, each a thread, exchanging messages
// through one mailbox per rank ("local"); with one rank, "self". Collectives are built from
// point-to-point messages on tags above the user range, so a user's kAnyTag never sees them.
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>

#include "backend.hpp"

namespace mll::distributed::detail {
namespace {

constexpr int kCollectiveTag = kMaxTag;  // every collective's traffic; ordered per sender

struct Message {
  int source = 0;
  int tag = 0;
  std::vector<char> bytes;
};

bool matches(const Message& m, int from, int tag) {
  const bool source_ok = from == kAnySource || m.source == from;
  const bool tag_ok = tag == kAnyTag ? m.tag < kMaxTag : m.tag == tag;
  return source_ok && tag_ok;
}

// The mailboxes of every rank. Shared by the ranks' backends; the one lock of this backend.
struct Hub {
  explicit Hub(int size) : inbox(static_cast<std::size_t>(size)) {}
  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<std::deque<Message>> inbox;
};

class LocalBackend final : public Backend {
 public:
  LocalBackend(std::shared_ptr<Hub> hub, int rank, int size)
      : hub_(std::move(hub)), rank_(rank), size_(size), host_(host_name()) {}

  int rank() const noexcept override { return rank_; }
  int size() const noexcept override { return size_; }
  int local_rank() const noexcept override { return rank_; }
  int local_size() const noexcept override { return size_; }
  const std::string& host() const noexcept override { return host_; }
  const char* name() const noexcept override { return size_ == 1 ? "self" : "local"; }

  void send(const std::vector<char>& bytes, int to, int tag, std::string_view) override {
    post(bytes, to, tag);
  }

  std::vector<char> receive(int from, int tag, std::string_view, Envelope* envelope) override {
    std::unique_lock lock(hub_->mutex);
    auto& box = hub_->inbox[static_cast<std::size_t>(rank_)];
    for (;;) {
      const auto it = std::find_if(box.begin(), box.end(),
                                   [&](const Message& m) { return matches(m, from, tag); });
      if (it != box.end()) {
        Message m = std::move(*it);
        box.erase(it);
        if (envelope) *envelope = Envelope{m.source, m.tag};
        return std::move(m.bytes);
      }
      hub_->arrived.wait(lock);
    }
  }

  std::optional<Envelope> probe(int from, int tag, std::string_view) override {
    std::lock_guard lock(hub_->mutex);
    const auto& box = hub_->inbox[static_cast<std::size_t>(rank_)];
    const auto it = std::find_if(box.begin(), box.end(),
                                 [&](const Message& m) { return matches(m, from, tag); });
    if (it == box.end()) return std::nullopt;
    return Envelope{it->source, it->tag};
  }

  void broadcast(std::vector<char>& bytes, int root, std::string_view context) override {
    if (rank_ == root) {
      for (int r = 0; r < size_; ++r) {
        if (r != root) post(bytes, r, kCollectiveTag);
      }
    } else {
      bytes = receive(root, kCollectiveTag, context, nullptr);
    }
  }

  std::pair<std::int32_t, int> max_loc(std::int32_t value, std::string_view context) override {
    const auto all = gather_to_zero(as_bytes(&value, 1), context);
    std::vector<std::int32_t> best(2, 0);
    if (rank_ == 0) {
      best = {std::numeric_limits<std::int32_t>::min(), 0};
      for (int r = 0; r < size_; ++r) {
        const auto v = from_bytes<std::int32_t>(all[static_cast<std::size_t>(r)]).at(0);
        if (v > best[0]) best = {v, r};  // strict: the lowest rank wins ties
      }
    }
    auto bytes = as_bytes(best.data(), best.size());
    broadcast(bytes, 0, context);
    const auto result = from_bytes<std::int32_t>(bytes);
    return {result.at(0), result.at(1)};
  }

  void reduce_max(std::vector<std::int32_t>& values, int root, std::string_view context) override {
    if (rank_ != root) {
      post(as_bytes(values.data(), values.size()), root, kCollectiveTag);
      return;
    }
    for (int r = 0; r < size_; ++r) {
      if (r == root) continue;
      const auto theirs = from_bytes<std::int32_t>(receive(r, kCollectiveTag, context, nullptr));
      if (theirs.size() != values.size()) {
        MLL_THROW(CommError, context, ": rank ", r, " reduced ", theirs.size(), " values, rank ",
                  root, " ", values.size());
      }
      for (std::size_t i = 0; i < values.size(); ++i) values[i] = std::max(values[i], theirs[i]);
    }
  }

  std::vector<std::uint64_t> all_gather(const std::vector<std::uint64_t>& mine,
                                        std::string_view context) override {
    const auto all = gather_to_zero(as_bytes(mine.data(), mine.size()), context);
    std::vector<char> joined;
    for (const auto& part : all) joined.insert(joined.end(), part.begin(), part.end());
    broadcast(joined, 0, context);
    return from_bytes<std::uint64_t>(joined);
  }

  void barrier(std::string_view context) override { all_gather({}, context); }

 private:
  template <typename T>
  static std::vector<char> as_bytes(const T* values, std::size_t n) {
    const auto* p = reinterpret_cast<const char*>(values);
    return std::vector<char>(p, p + n * sizeof(T));
  }
  template <typename T>
  static std::vector<T> from_bytes(const std::vector<char>& bytes) {
    std::vector<T> values(bytes.size() / sizeof(T));
    std::copy(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(values.size() * sizeof(T)),
              reinterpret_cast<char*>(values.data()));
    return values;
  }

  void post(std::vector<char> bytes, int to, int tag) {
    {
      std::lock_guard lock(hub_->mutex);
      hub_->inbox[static_cast<std::size_t>(to)].push_back(Message{rank_, tag, std::move(bytes)});
    }
    hub_->arrived.notify_all();
  }

  // Every rank's bytes on rank 0 (in rank order); empty elsewhere.
  std::vector<std::vector<char>> gather_to_zero(std::vector<char> mine, std::string_view context) {
    std::vector<std::vector<char>> all;
    if (rank_ != 0) {
      post(std::move(mine), 0, kCollectiveTag);
      return all;
    }
    all.resize(static_cast<std::size_t>(size_));
    all[0] = std::move(mine);
    for (int r = 1; r < size_; ++r) {
      all[static_cast<std::size_t>(r)] = receive(r, kCollectiveTag, context, nullptr);
    }
    return all;
  }

  std::shared_ptr<Hub> hub_;
  int rank_, size_;
  std::string host_;
};

}  // namespace

std::vector<Comm> make_local(int size) {
  auto hub = std::make_shared<Hub>(size);
  std::vector<Comm> comms;
  comms.reserve(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) comms.emplace_back(std::make_unique<LocalBackend>(hub, r, size));
  return comms;
}

std::string host_name() noexcept {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

}  // namespace mll::distributed::detail
