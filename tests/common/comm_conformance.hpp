// Checks every backend of distributed::Comm must pass, run on every rank of a communicator at
// once (the local backend's ranks as threads, the MPI backend's under mpiexec). `big` is the
// length of the large messages: above the MPI backend's piece size in the MPI test, so that
// splitting and reassembly are exercised.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mll/distributed/comm.hpp"

namespace mll::test {

// Bytes whose every position depends on `seed`: a lost, reordered or truncated piece shows.
inline std::vector<char> pattern(std::size_t length, int seed) {
  std::vector<char> bytes(length);
  for (std::size_t i = 0; i < length; ++i) {
    bytes[i] = static_cast<char>((i * 131 + static_cast<std::size_t>(seed) * 7919 + i / 251) % 251);
  }
  return bytes;
}

inline std::string text(const std::vector<char>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// Point to point: every rank > 0 sends rank 0 a small message, a large one with another tag,
// and a second small one; rank 0 takes the large one first (tags select), then the small ones
// in their order, then answers each rank with a large message.
inline void check_point_to_point(distributed::Comm& comm, std::size_t big) {
  using distributed::Envelope;
  const int rank = comm.rank(), size = comm.size();
  if (rank > 0) {
    const std::string first = "first from " + std::to_string(rank);
    const std::string second = "second from " + std::to_string(rank);
    comm.send(std::vector<char>(first.begin(), first.end()), 0, 1, "test");
    comm.send(pattern(big + static_cast<std::size_t>(rank), rank), 0, 2, "test");
    comm.send(std::vector<char>(second.begin(), second.end()), 0, 1, "test");
    Envelope envelope;
    const auto reply = comm.receive(0, distributed::kAnyTag, "test", &envelope);
    EXPECT_EQ(envelope.source, 0);
    EXPECT_EQ(envelope.tag, 5);
    EXPECT_EQ(reply, pattern(big * 2 + static_cast<std::size_t>(rank), -rank));
    comm.send({}, 0, 6, "test");  // an empty message is a message
  } else {
    for (int r = 1; r < size; ++r) {
      EXPECT_EQ(comm.receive(r, 2, "test"), pattern(big + static_cast<std::size_t>(r), r)) << r;
      EXPECT_EQ(text(comm.receive(r, 1, "test")), "first from " + std::to_string(r));
      EXPECT_EQ(text(comm.receive(r, 1, "test")), "second from " + std::to_string(r));
      comm.send(pattern(big * 2 + static_cast<std::size_t>(r), -r), r, 5, "test");
    }
    for (int r = 1; r < size; ++r) {
      Envelope envelope;
      EXPECT_TRUE(comm.receive(distributed::kAnySource, 6, "test", &envelope).empty());
      EXPECT_EQ(envelope.tag, 6);
      EXPECT_GT(envelope.source, 0);
    }
  }
  comm.barrier("test");
  EXPECT_FALSE(comm.probe(distributed::kAnySource, distributed::kAnyTag, "test").has_value());
}

inline void check_collectives(distributed::Comm& comm, std::size_t big) {
  const int rank = comm.rank(), size = comm.size();
  const int root = size - 1;
  std::vector<char> bytes = rank == root ? pattern(big, 42) : std::vector<char>{'x'};
  comm.broadcast(bytes, root, "test");
  EXPECT_EQ(bytes, pattern(big, 42));

  // The maximum 7 is held by every odd rank: the lowest one wins.
  const auto [value, where] = comm.max_loc(rank % 2 == 1 ? 7 : 3, "test");
  EXPECT_EQ(value, size > 1 ? 7 : 3);
  EXPECT_EQ(where, size > 1 ? 1 : 0);
  const auto [zero, first] = comm.max_loc(0, "test");
  EXPECT_EQ(zero, 0);
  EXPECT_EQ(first, 0);

  std::vector<std::int32_t> values(big / 4 + 3);
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = static_cast<int>(i % static_cast<std::size_t>(size)) == rank
                    ? static_cast<std::int32_t>(i)
                    : -1;
  }
  comm.reduce_max(values, 0, "test");
  if (rank == 0) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      ASSERT_EQ(values[i], static_cast<std::int32_t>(i)) << i;
    }
  }

  const auto all = comm.all_gather({static_cast<std::uint64_t>(rank), 10u * rank + 1}, "test");
  ASSERT_EQ(all.size(), 2u * static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) {
    EXPECT_EQ(all[2 * r], static_cast<std::uint64_t>(r));
    EXPECT_EQ(all[2 * r + 1], 10u * r + 1);
  }
  comm.barrier("test");
}

inline void check_bad_arguments(distributed::Comm& comm) {
  EXPECT_THROW(comm.send({}, comm.size(), 1, "test"), UsageError);
  EXPECT_THROW(comm.send({}, -1, 1, "test"), UsageError);
  EXPECT_THROW(comm.send({}, 0, distributed::kMaxTag, "test"), UsageError);
  EXPECT_THROW(comm.probe(0, -7, "test"), UsageError);
  std::vector<char> bytes;
  EXPECT_THROW(comm.broadcast(bytes, comm.size(), "test"), UsageError);
}

inline void check_identity(const distributed::Comm& comm, int expected_size) {
  EXPECT_EQ(comm.size(), expected_size);
  EXPECT_GE(comm.rank(), 0);
  EXPECT_LT(comm.rank(), comm.size());
  EXPECT_GE(comm.local_rank(), 0);
  EXPECT_LT(comm.local_rank(), comm.local_size());
  EXPECT_LE(comm.local_size(), comm.size());
  EXPECT_FALSE(comm.host().empty());
}

}  // namespace mll::test
