// Private to the distributed module: the messages of the labeling protocol and their binary
// encoding (plan groups, shards, shard results). All ranks run the same build, so native byte
// order is fine.
//
// The protocol (rank 0 coordinates, docs/labeling.md):
//   worker -> 0  kRequest      int32 loaded group (-1: none): "give me work"
//   0 -> worker  kAssign       a shard, or empty: "no more work, leave"
//   worker -> 0  kResult       a shard's result (rows, failures, parity reports, stopped)
//   worker -> 0  kError        int32 exit code + message: the worker's compute thread failed
//   0 -> worker  kStop         empty: stop after the current batch
//   worker -> 0  kStopRequest  int32 signal: this rank received a stop signal
//   0 -> worker  kBlock        image embeddings of one summary-label block (finish phase)
// Every worker sends requests until it receives an empty assignment, so rank 0 knows when each
// rank has left the loop.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "mll/core/error.hpp"
#include "mll/label/job.hpp"

namespace mll::distributed {

enum Tag : int {
  kRequest = 1,
  kAssign,
  kResult,
  kError,
  kStop,
  kStopRequest,
  kBlock,
};

namespace wire {

class Writer {
 public:
  template <typename T>
  void put(T value) {
    const auto* bytes = reinterpret_cast<const char*>(&value);
    buffer_.insert(buffer_.end(), bytes, bytes + sizeof(T));
  }
  void put(const std::string& text) {
    put<std::uint64_t>(text.size());
    buffer_.insert(buffer_.end(), text.begin(), text.end());
  }
  void put(const std::vector<std::string>& texts) {
    put<std::uint64_t>(texts.size());
    for (const auto& text : texts) put(text);
  }
  void put(const std::vector<float>& values) {
    put<std::uint64_t>(values.size());
    const auto* bytes = reinterpret_cast<const char*>(values.data());
    buffer_.insert(buffer_.end(), bytes, bytes + values.size() * sizeof(float));
  }
  std::vector<char>& buffer() { return buffer_; }

 private:
  std::vector<char> buffer_;
};

class Reader {
 public:
  explicit Reader(const std::vector<char>& buffer) : buffer_(buffer) {}
  template <typename T>
  T get() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, buffer_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  std::string get_string() {
    const auto n = get<std::uint64_t>();
    need(n);
    std::string text(buffer_.data() + at_, n);
    at_ += n;
    return text;
  }
  std::vector<std::string> get_strings() {
    std::vector<std::string> texts(get<std::uint64_t>());
    for (auto& text : texts) text = get_string();
    return texts;
  }
  std::vector<float> get_floats() {
    const auto n = get<std::uint64_t>();
    need(n * sizeof(float));
    std::vector<float> values(n);
    std::memcpy(values.data(), buffer_.data() + at_, n * sizeof(float));
    at_ += n * sizeof(float);
    return values;
  }

 private:
  void need(std::size_t n) const {
    MLL_CHECK(at_ + n <= buffer_.size(), "truncated message between ranks");
  }
  const std::vector<char>& buffer_;
  std::size_t at_ = 0;
};

inline void put_shard(Writer& w, const label::Shard& s) {
  w.put<std::int32_t>(s.group);
  w.put<std::int32_t>(s.kind == store::UnitKind::kText ? 0 : 1);
  w.put<std::int64_t>(s.begin);
  w.put<std::int64_t>(s.end);
  w.put<std::uint64_t>(s.models.size());
  for (std::size_t k = 0; k < s.models.size(); ++k) {
    w.put(s.models[k]);
    w.put<std::uint64_t>(s.needed[k].size());
    for (const auto& [b, e] : s.needed[k]) {
      w.put<std::int64_t>(b);
      w.put<std::int64_t>(e);
    }
  }
}

inline label::Shard get_shard(Reader& r) {
  label::Shard s;
  s.group = r.get<std::int32_t>();
  s.kind = r.get<std::int32_t>() == 0 ? store::UnitKind::kText : store::UnitKind::kImage;
  s.begin = r.get<std::int64_t>();
  s.end = r.get<std::int64_t>();
  const auto models = r.get<std::uint64_t>();
  for (std::uint64_t k = 0; k < models; ++k) {
    s.models.push_back(r.get_string());
    const auto ranges = r.get<std::uint64_t>();
    s.needed.emplace_back();
    for (std::uint64_t i = 0; i < ranges; ++i) {
      const auto b = r.get<std::int64_t>();
      const auto e = r.get<std::int64_t>();
      s.needed.back().emplace_back(b, e);
    }
  }
  return s;
}

inline void put_result(Writer& w, const label::ShardResult& result) {
  w.put<std::uint8_t>(result.stopped ? 1 : 0);
  w.put(result.unreadable);
  w.put<std::int64_t>(result.images_decoded);
  w.put<double>(result.forward_seconds);
  w.put<std::uint64_t>(result.failures.size());
  for (const auto& [model, message] : result.failures) {
    w.put(model);
    w.put(message);
  }
  w.put<std::uint64_t>(result.parity.size());
  for (const auto& [model, report] : result.parity) {
    w.put(model);
    w.put(report);
  }
  w.put<std::uint64_t>(result.rows.size());
  for (const auto& run : result.rows) {
    w.put(run.model);
    w.put<std::int32_t>(run.kind == store::UnitKind::kText ? 0 : 1);
    w.put<std::int64_t>(run.begin);
    w.put<std::int64_t>(run.end);
    w.put<std::int64_t>(run.dim);
    w.put(run.rows);
  }
}

inline label::ShardResult get_result(Reader& r) {
  label::ShardResult result;
  result.stopped = r.get<std::uint8_t>() != 0;
  result.unreadable = r.get_string();
  result.images_decoded = r.get<std::int64_t>();
  result.forward_seconds = r.get<double>();
  const auto failures = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < failures; ++i) {
    auto model = r.get_string();
    auto message = r.get_string();
    result.failures.emplace_back(std::move(model), std::move(message));
  }
  const auto parity = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < parity; ++i) {
    auto model = r.get_string();
    auto report = r.get_string();
    result.parity.emplace_back(std::move(model), std::move(report));
  }
  const auto runs = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < runs; ++i) {
    label::ModelRows run;
    run.model = r.get_string();
    run.kind = r.get<std::int32_t>() == 0 ? store::UnitKind::kText : store::UnitKind::kImage;
    run.begin = r.get<std::int64_t>();
    run.end = r.get<std::int64_t>();
    run.dim = r.get<std::int64_t>();
    run.rows = r.get_floats();
    result.rows.push_back(std::move(run));
  }
  return result;
}

}  // namespace wire
}  // namespace mll::distributed
