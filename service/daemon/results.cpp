// Results that are not estimates (daemon_impl.hpp): rejections and drops, and the hand-off of every
// result to the publisher within the memory budget.

#include "daemon_impl.hpp"

namespace xasmap::service {

void Daemon::Impl::reject(ErrorCode code, std::optional<std::string> id, std::string field, std::string message,
                          Clock::time_point t_received, Peer peer) {
  protocol::ErrorMessage e;
  e.id = std::move(id);
  e.code = code;
  e.field = std::move(field);
  e.message = std::move(message);
  e.time = wall_seconds();
  log->debug("rejected {}: {}: {}", e.id ? "'" + *e.id + "'" : "a message without id",
             protocol::to_string(code), e.message);
  Outgoing out;
  out.topic = protocol::kTopicError;
  out.outcome = Outcome::kRejected;
  out.code = code;
  out.encoded.bytes = protocol::encode(e);
  out.received = t_received;
  out.peer = std::move(peer);
  send(std::move(out));
}

void Daemon::Impl::charge(Outgoing& out) {
  const std::size_t cost = std::max(out.encoded.bytes.capacity() + kMessageOverhead, kNoticeBytes);
  if (out.topic != protocol::kTopicError) {
    budget.force_acquire(cost);
  } else if (!budget.try_acquire(cost)) {
    out.announce = false;
    out.encoded.bytes = {};
  }
  if (out.announce) out.charge = BudgetCharge(&budget, cost);
}

void Daemon::Impl::send(Outgoing&& out) {
  charge(out);
  outbox.push(std::move(out), OverflowPolicy::kBlock, [] { return true; });
}

void Daemon::Impl::deliver(Outgoing&& out) {
  charge(out);
  // Workers are joined before the publisher closes the output (stop_threads), so the sockets are
  // open whenever a worker gets here.
  std::unique_lock lock(publish_mutex, std::try_to_lock);
  if (lock.owns_lock()) {
    try {
      publish(out);
    } catch (const std::exception& e) {
      // As on the publisher thread, a failure of publishing itself (no memory, a socket error) is
      // logged and counted; the message is not answered a second time (work_loop's catch would
      // reject it with an internal error after it may have been published and counted).
      ++thread_failures;
      log->error("publishing a result failed: {}", e.what());
    }
    return;
  }
  outbox.push(std::move(out), OverflowPolicy::kBlock, [] { return true; });
}

void Daemon::Impl::drop(Job&& job, bool budget_full) {
  Outgoing out;
  out.topic = protocol::kTopicError;
  out.outcome = Outcome::kDropped;
  out.received = job.received;
  if (budget.try_acquire(kNoticeBytes)) {
    out.charge = BudgetCharge(&budget, kNoticeBytes);
    out.dropped = Outgoing::Dropped{
        protocol::peek_id(static_cast<const std::uint8_t*>(job.payload.data()), job.payload.size()),
        job.payload.size(), budget_full};
  } else {
    out.announce = false;
  }
  out.peer = std::move(job.peer);
  job = Job{};  // the payload and its charge are given back now
  outbox.push(std::move(out), OverflowPolicy::kBlock, [] { return true; });
}

bool Daemon::Impl::admit(std::size_t cost) {
  if (budget.try_acquire(cost)) return true;
  switch (policy) {
    case OverflowPolicy::kBlock:
      budget.acquire_waiting(cost, [this] { return !stop_receiving.load(); });
      return true;
    case OverflowPolicy::kDropOldest:
      while (auto oldest = queue.pop(std::chrono::milliseconds(0))) {
        drop(std::move(*oldest), true);
        if (budget.try_acquire(cost)) return true;
      }
      return false;
    case OverflowPolicy::kDropNewest:
      return false;
  }
  return false;
}

}  // namespace xasmap::service
