#include "mailbox.hpp"

namespace mll::distributed {

std::optional<label::Shard> Mailbox::ask(int loaded_group) {
  std::unique_lock lock(mutex_);
  if (closed_) return std::nullopt;
  request_ = loaded_group;
  news_ = true;
  changed_.notify_all();
  changed_.wait(lock, [&] { return answer_.has_value() || closed_; });
  if (!answer_) return std::nullopt;
  auto shard = std::move(*answer_);
  answer_.reset();
  return shard;
}

void Mailbox::post(label::ShardResult result) {
  std::lock_guard lock(mutex_);
  results_.push_back(std::move(result));
  news_ = true;
  changed_.notify_all();
}

void Mailbox::fail(Failure failure) {
  std::lock_guard lock(mutex_);
  if (!failure_) failure_ = std::move(failure);
  news_ = true;
  changed_.notify_all();
}

void Mailbox::finish() {
  std::lock_guard lock(mutex_);
  finished_ = true;
  news_ = true;
  changed_.notify_all();
}

std::optional<int> Mailbox::take_request() {
  std::lock_guard lock(mutex_);
  auto request = request_;
  request_.reset();
  return request;
}

std::deque<label::ShardResult> Mailbox::take_results() {
  std::lock_guard lock(mutex_);
  return std::exchange(results_, {});
}

std::optional<Failure> Mailbox::take_failure() {
  std::lock_guard lock(mutex_);
  return std::exchange(failure_, std::nullopt);
}

void Mailbox::answer(std::optional<label::Shard> shard) {
  std::lock_guard lock(mutex_);
  answer_ = std::move(shard);
  changed_.notify_all();
}

bool Mailbox::drained() const {
  std::lock_guard lock(mutex_);
  return finished_ && results_.empty() && !failure_ && !request_;
}

void Mailbox::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  changed_.notify_all();
}

void Mailbox::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return news_; });
  news_ = false;
}

}  // namespace mll::distributed
