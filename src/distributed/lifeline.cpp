#include "lifeline.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "backend.hpp"
#include "mll/core/log.hpp"
#include "protocol.hpp"

namespace mll::distributed {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kConnectTimeoutMs = 3000;                    // per address a worker tries
constexpr auto kAcceptTimeout = std::chrono::seconds(20);  // rank 0 waiting for every worker
constexpr int kPollMs = 500;                               // the watcher's tick (the grace clock)
constexpr char kResume[] =
    "; the work committed so far is in the store: rerun the same command to resume";

// A socket or pipe end, closed on every path.
class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// The other end of one connection.
struct Peer {
  int rank = 0;
  std::string host;
  std::int64_t pid = 0;
  Fd fd;
  std::string pending;  // bytes read that do not make a whole line yet
  bool said_bye = false;
};

std::string describe(const Peer& peer) {
  return cat("rank ", peer.rank, " on host ", peer.host, " (pid ", peer.pid, ")");
}

bool send_line(const Fd& fd, const std::string& line) noexcept {
  const std::string bytes = line + "\n";
  std::size_t at = 0;
  while (at < bytes.size()) {
    const ssize_t n = ::send(fd.get(), bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    at += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads one line within `timeout_ms` (the hello of a new connection). Empty on failure.
std::string read_line(const Fd& fd, int timeout_ms) {
  std::string line;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (line.size() < 1024) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd.get(), POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return "";
    char c = 0;
    if (::read(fd.get(), &c, 1) != 1) return "";
    if (c == '\n') return line;
    line += c;
  }
  return "";
}

// Keepalive probes: a node that vanished (no FIN, no RST) is noticed after ~10 + 4 x 5 s.
void keep_alive(const Fd& fd) noexcept {
  const int on = 1, idle = 10, interval = 5, count = 4;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

// Rank 0's listening socket on every IPv4 address, on a port the kernel picks.
Fd listen_any(std::uint16_t& port, std::string& why) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof addr;
  if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd.get(), SOMAXCONN) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    why = cat("cannot listen on a TCP port: ", std::strerror(errno));
    return Fd();
  }
  port = ntohs(addr.sin_port);
  return fd;
}

// This node's IPv4 addresses, loopback last.
std::vector<std::string> ipv4_addresses() {
  std::vector<std::string> out, loopback;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return {"127.0.0.1"};
  for (const ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET || !(a->ifa_flags & IFF_UP))
      continue;
    char text[INET_ADDRSTRLEN] = {};
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) == nullptr) continue;
    ((a->ifa_flags & IFF_LOOPBACK) ? loopback : out).push_back(text);
  }
  ::freeifaddrs(list);
  out.insert(out.end(), loopback.begin(), loopback.end());
  return out;
}

// One connection attempt with a timeout. Invalid on failure, with the reason in `why`.
Fd connect_to(const std::string& address, std::uint16_t port, std::string& why) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    why = "not an IPv4 address";
    return Fd();
  }
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) {
    why = std::strerror(errno);
    return Fd();
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      why = std::strerror(errno);
      return Fd();
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int error = 0;
    socklen_t len = sizeof error;
    if (::poll(&p, 1, kConnectTimeoutMs) != 1) {
      why = "timed out";
      return Fd();
    }
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
      why = std::strerror(error != 0 ? error : errno);
      return Fd();
    }
  }
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  return fd;
}

// What rank 0 tells every worker: where to connect, and who it is.
struct Rendezvous {
  std::uint16_t port = 0;   // 0: rank 0 could not listen; no lifeline
  std::uint64_t token = 0;  // this job's: a connection from anything else is not a rank
  std::string host;
  std::int64_t pid = 0;
  std::vector<std::string> addresses;
};

std::vector<char> encode(const Rendezvous& r) {
  wire::Writer w;
  w.put<std::uint32_t>(r.port);
  w.put<std::uint64_t>(r.token);
  w.put(r.host);
  w.put<std::int64_t>(r.pid);
  w.put(r.addresses);
  return std::move(w.buffer());
}

Rendezvous decode(const std::vector<char>& bytes) {
  wire::Reader r(bytes);
  Rendezvous out;
  out.port = static_cast<std::uint16_t>(r.get<std::uint32_t>());
  out.token = r.get<std::uint64_t>();
  out.host = r.get_string();
  out.pid = r.get<std::int64_t>();
  out.addresses = r.get_strings();
  return out;
}

}  // namespace

struct Lifeline::Impl {
  int rank = 0;
  std::vector<Peer> peers;  // rank 0: every worker; a worker: rank 0
  Fd wake_read, wake_write;
  std::thread watcher;
  std::atomic<bool> any_lost{false};
  mutable std::mutex mutex;  // guards lost
  std::optional<std::string> lost;

  // Collective: the connections, or none on any rank (the reason logged) when one failed.
  void connect(Comm& comm);
  bool accept_workers(const Fd& listener, int size, std::uint64_t token, std::string& why);
  bool connect_to_rank0(const Rendezvous& r, int rank, const std::string& host, std::string& why);
  void watch() noexcept;
  void read_from(Peer& peer);
  void record(const std::string& what);
};

void Lifeline::Impl::connect(Comm& comm) {
  rank = comm.rank();
  std::string why;
  Fd listener;
  Rendezvous rendezvous;
  if (rank == 0) {
    listener = listen_any(rendezvous.port, why);
    rendezvous.host = comm.host();
    rendezvous.pid = ::getpid();
    rendezvous.addresses = ipv4_addresses();
    std::random_device random;
    rendezvous.token = (std::uint64_t{random()} << 32 | random()) ^
                       static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  }
  std::vector<char> bytes = rank == 0 ? encode(rendezvous) : std::vector<char>();
  comm.broadcast(bytes, 0, "sharing rank 0's lifeline address");
  rendezvous = decode(bytes);
  bool ok = rendezvous.port != 0;
  if (ok && rank == 0) ok = accept_workers(listener, comm.size(), rendezvous.token, why);
  if (ok && rank != 0) ok = connect_to_rank0(rendezvous, rank, comm.host(), why);
  // The wake pipe before the agreement, so that nothing can fail on one rank after it.
  int pipe_ends[2];
  if (ok && ::pipe2(pipe_ends, O_CLOEXEC) != 0) {
    why = cat("cannot create a pipe: ", std::strerror(errno));
    ok = false;
  }
  if (ok) {
    wake_read = Fd(pipe_ends[0]);
    wake_write = Fd(pipe_ends[1]);
  }
  const auto all = comm.all_gather({ok ? 1u : 0u}, "agreeing on the lifelines");
  std::string failed;
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (all[r] == 0) failed += (failed.empty() ? "" : ", ") + std::to_string(r);
  }
  if (!failed.empty()) {
    peers.clear();
    if (!ok) log::warn("no lifeline on this rank: ", why.empty() ? "rank 0 has none" : why);
    if (rank == 0) {
      log::warn("rank(s) ", failed, " have no lifeline to rank 0: a rank that dies is reported ",
                "by the launcher only");
    }
    return;
  }
  try {
    watcher = std::thread([this] { watch(); });
  } catch (const std::exception& e) {
    // Unwatched: the others see this rank's connection open until its bye, as they expect.
    log::warn("no lifeline watcher: ", e.what());
  }
}

bool Lifeline::Impl::accept_workers(const Fd& listener, int size, std::uint64_t token,
                                    std::string& why) {
  const auto deadline = Clock::now() + kAcceptTimeout;
  while (static_cast<int>(peers.size()) < size - 1 && Clock::now() < deadline) {
    pollfd p{listener.get(), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    // Non-blocking: a connection aborted after poll() must not block the accept.
    Fd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd.valid()) continue;
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    std::istringstream hello(read_line(fd, 5000));
    std::string word;
    std::uint64_t their_token = 0;
    Peer peer;
    const auto known = [&](int r) {
      return std::any_of(peers.begin(), peers.end(),
                         [&](const Peer& other) { return other.rank == r; });
    };
    if (!(hello >> word >> their_token >> peer.rank >> peer.pid >> peer.host) || word != "hello" ||
        their_token != token || peer.rank <= 0 || peer.rank >= size || known(peer.rank) ||
        !send_line(fd, "ok")) {
      continue;  // not one of this job's ranks
    }
    keep_alive(fd);
    peer.fd = std::move(fd);
    peers.push_back(std::move(peer));
  }
  if (static_cast<int>(peers.size()) == size - 1) return true;
  why = cat(size - 1 - static_cast<int>(peers.size()), " rank(s) did not connect within ",
            kAcceptTimeout.count(), " s");
  return false;
}

bool Lifeline::Impl::connect_to_rank0(const Rendezvous& r, int my_rank, const std::string& host,
                                      std::string& why) {
  std::vector<std::string> order = r.addresses;
  if (host == r.host) order.insert(order.begin(), "127.0.0.1");
  for (const auto& address : order) {
    std::string reason;
    Fd fd = connect_to(address, r.port, reason);
    if (!fd.valid()) {
      why += cat(why.empty() ? "" : "; ", address, ":", r.port, " ", reason);
      continue;
    }
    // Counted only once rank 0 answers: the address may lead to another listener.
    if (!send_line(fd, cat("hello ", r.token, " ", my_rank, " ", ::getpid(), " ", host)) ||
        read_line(fd, 5000) != "ok") {
      why += cat(why.empty() ? "" : "; ", address, ":", r.port, " did not answer as rank 0");
      continue;
    }
    keep_alive(fd);
    Peer peer;
    peer.rank = 0;
    peer.host = r.host;
    peer.pid = r.pid;
    peer.fd = std::move(fd);
    peers.push_back(std::move(peer));
    why.clear();
    return true;
  }
  return false;
}

void Lifeline::Impl::watch() noexcept {
  std::optional<Clock::time_point> lost_at;
  for (;;) {
    std::vector<pollfd> fds{{wake_read.get(), POLLIN, 0}};
    std::vector<Peer*> polled;
    for (auto& peer : peers) {
      if (!peer.fd.valid()) continue;
      fds.push_back({peer.fd.get(), POLLIN, 0});
      polled.push_back(&peer);
    }
    const int n = ::poll(fds.data(), fds.size(), kPollMs);
    if (n > 0 && fds[0].revents != 0) return;  // the lifeline is ending
    for (std::size_t k = 0; n > 0 && k < polled.size(); ++k) {
      if (fds[k + 1].revents != 0) read_from(*polled[k]);
    }
    if (any_lost && !lost_at) lost_at = Clock::now();
    if (lost_at && Clock::now() - *lost_at > kGrace) {
      log::error("still running ", kGrace.count(), " s after a rank was lost (waiting in a ",
                 "call that cannot return); exiting with 74");
      std::_Exit(static_cast<int>(ExitCode::kIoError));
    }
  }
}

void Lifeline::Impl::read_from(Peer& peer) {
  char buffer[4096];
  const ssize_t n = ::read(peer.fd.get(), buffer, sizeof buffer);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n > 0) {
    peer.pending.append(buffer, static_cast<std::size_t>(n));
    for (auto end = peer.pending.find('\n'); end != std::string::npos;
         end = peer.pending.find('\n')) {
      const std::string line = peer.pending.substr(0, end);
      peer.pending.erase(0, end + 1);
      if (line == "bye") peer.said_bye = true;
      if (line.rfind("lost ", 0) == 0) record(line.substr(5));  // rank 0 passing a loss on
    }
    return;
  }
  peer.fd.reset();  // end of file, or the connection reset: the process is gone
  if (!peer.said_bye) {
    record(cat(describe(peer), " ended before the job did (killed, crashed or its node lost)"));
  }
}

void Lifeline::Impl::record(const std::string& what) {
  {
    std::lock_guard lock(mutex);
    if (lost) return;
    lost = what;
  }
  any_lost = true;
  detail::mark_world_broken();
  log::error(what, kResume);
  if (rank != 0) return;
  for (auto& peer : peers) {
    if (peer.fd.valid() && !peer.said_bye) send_line(peer.fd, "lost " + what);
  }
}

Lifeline::Lifeline(Comm& comm) : impl_(std::make_unique<Impl>()) {
  if (comm.size() > 1 && std::string(comm.backend()) == "mpi") impl_->connect(comm);
}

Lifeline::~Lifeline() {
  if (impl_->any_lost && impl_->watcher.joinable()) {
    // After a loss the watcher's deadline must hold until the process ends, whatever runs after
    // labeling (reporting, destructors): it keeps running, with its state, deliberately leaked.
    impl_->watcher.detach();
    static_cast<void>(impl_.release());
    return;
  }
  if (impl_->watcher.joinable()) {
    const char stop = 1;
    [[maybe_unused]] const ssize_t n = ::write(impl_->wake_write.get(), &stop, 1);  // cannot fail
    impl_->watcher.join();
  }
  for (auto& peer : impl_->peers) {
    if (peer.fd.valid()) send_line(peer.fd, "bye");
  }
}

bool Lifeline::watching() const noexcept { return impl_->watcher.joinable(); }

std::optional<std::string> Lifeline::lost() const {
  if (!impl_->any_lost) return std::nullopt;
  std::lock_guard lock(impl_->mutex);
  return impl_->lost;
}

void Lifeline::throw_if_lost() const {
  if (const auto what = lost()) {
    MLL_THROW(PeerLost, *what, kResume);
  }
}

}  // namespace mll::distributed
