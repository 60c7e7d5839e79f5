// Publishing (daemon_impl.hpp): numbering and stamping results, answering the acknowledged
// input's senders, counters and the periodic `metrics`. The publisher thread publishes what is
// queued for it (notices, and results that met another publication under way); a worker publishes
// its own result when no one else is publishing (deliver()). Both hold publish_mutex to publish.

#include "daemon_impl.hpp"

namespace xasmap::service {

void Daemon::Impl::publish(Outgoing& o) {
  if (!o.announce) {  // a notice that did not fit in the budget: counted only
    ++unannounced;
    count(o);
    answer_sender(o, nullptr);
    return;
  }
  if (o.dropped) {
    protocol::ErrorMessage e;
    e.id = std::move(o.dropped->id);
    e.code = ErrorCode::kOverloaded;
    e.message = "dropped by the overflow policy " + config::to_string(config.input.overflow) + ": " +
                (o.dropped->budget_full
                     ? "the memory budget (input.memory_budget_bytes " +
                           std::to_string(config.input.memory_budget_bytes) + ") was full"
                     : "the input queue (input.queue_capacity " + std::to_string(config.input.queue_capacity) +
                           ") was full") +
                "; the message was " + std::to_string(o.dropped->bytes) + " bytes";
    e.time = wall_seconds();
    o.encoded.bytes = protocol::encode(e);
  }
  const Clock::time_point now = Clock::now();
  if (o.stamp) {
    const double service = micros(o.received, now);
    const double wall = wall_seconds();
    std::optional<double> end_to_end;
    if (o.acquisition_time) end_to_end = (wall - *o.acquisition_time) * 1e6;
    protocol::stamp(o.encoded, ++seq, wall, service, end_to_end);
    interval_latency.record(service);
    stage_latency[kStageService].record(service * 1e-6);
  }
  // Acknowledged input: the sender's answer is the message as published (a copy: the published
  // bytes go to ZeroMQ without one).
  std::optional<zmq::message_t> answer;
  if (!o.peer.routing_id.empty()) answer.emplace(o.encoded.bytes.data(), o.encoded.bytes.size());
  // Zero-copy: ZeroMQ frees the buffer (and its charge) when no subscriber's queue holds it. Made
  // before the first frame is sent, so that a failure to allocate leaves no topic frame waiting
  // for its body on the socket.
  auto* held = new SentBuffer{std::move(o.encoded.bytes), std::move(o.charge), &buffers};
  held->handed_over.store(true, std::memory_order_release);
  zmq::message_t body(held->bytes.data(), held->bytes.size(), [](void*, void* hint) {
    auto* h = static_cast<SentBuffer*>(hint);
    (void)h->handed_over.load(std::memory_order_acquire);
    h->charge.reset();
    h->pool->release(std::move(h->bytes));
    delete h;
  }, held);
  zmq::socket_t& sock = *output;
  sock.send(zmq::buffer(o.topic), zmq::send_flags::sndmore);
  sock.send(body, zmq::send_flags::none);
  count(o);
  if (answer) answer_sender(o, &*answer);
}

void Daemon::Impl::answer_sender(Outgoing& o, zmq::message_t* body) {
  if (o.peer.routing_id.empty()) return;
  zmq::message_t fallback;
  if (!body) {
    protocol::ErrorMessage e;
    if (!o.peer.id.empty()) e.id = o.peer.id;
    e.code = o.outcome == Outcome::kDropped ? ErrorCode::kOverloaded : ErrorCode::kInternal;
    e.message = "answered without details: the memory budget (input.memory_budget_bytes) was full";
    e.time = wall_seconds();
    const auto bytes = protocol::encode(e);
    fallback = zmq::message_t(bytes.data(), bytes.size());
    body = &fallback;
  }
  const std::uint8_t flags = static_cast<std::uint8_t>((o.peer.delimiter ? kAnswerDelimiter : 0) |
                                                       (o.outcome == Outcome::kDropped ? 0 : kAnswerRemember));
  acks_out->send(zmq::buffer(o.peer.routing_id), zmq::send_flags::sndmore);
  acks_out->send(zmq::buffer(&flags, 1), zmq::send_flags::sndmore);
  acks_out->send(zmq::buffer(o.topic), zmq::send_flags::sndmore);
  acks_out->send(*body, zmq::send_flags::sndmore);
  acks_out->send(zmq::buffer(o.peer.id), zmq::send_flags::none);
}

void Daemon::Impl::count(const Outgoing& o) {
  switch (o.outcome) {
    case Outcome::kPublished:
      ++published;
      ++interval_published;
      break;
    case Outcome::kRejected:
      ++rejected_by_code[static_cast<std::size_t>(o.code)];
      ++rejected;
      ++interval_rejected;
      break;
    case Outcome::kDropped:
      ++dropped;
      ++interval_dropped;
      break;
  }
}

auto Daemon::Impl::counters() const -> Counters {
  Counters c{};
  c.published = published.load();
  c.rejected = rejected.load();
  c.dropped = dropped.load();
  c.duplicates = duplicates.load();
  c.received = received.load();
  c.queue_depth = c.received - c.published - c.rejected - c.dropped - c.duplicates;
  return c;
}

protocol::LibrarySummary Daemon::Impl::library_summary() const {
  const auto state = current_model();
  return state ? state->summary : protocol::LibrarySummary{0, 0, 0, "none"};
}

void Daemon::Impl::publish_metrics(double interval_s) {
  protocol::MetricsMessage m;
  m.time = wall_seconds();
  m.uptime_s = std::chrono::duration<double>(Clock::now() - started).count();
  m.interval_s = interval_s;
  const Counters c = counters();
  m.received = c.received;
  m.published = c.published;
  m.rejected = c.rejected;
  m.dropped = c.dropped;
  m.queue_depth = c.queue_depth;
  m.rate_hz = interval_s > 0 ? static_cast<double>(interval_published) / interval_s : 0.0;
  m.latency_us = {interval_latency.quantile(0.5), interval_latency.quantile(0.9),
                  interval_latency.quantile(0.99), interval_latency.max(), interval_latency.count()};
  m.library = library_summary();
  m.model_generation = generation.load();
  if (const auto state = current_model()) {
    const auto t = state->tracker->snapshot();
    m.session_offset = {config::to_string(state->config.calibration.track),
                        state->session_start_ev,
                        t.tracked_ev,
                        state->applied_offset_ev(),
                        t.spread_ev,
                        static_cast<std::uint64_t>(t.samples),
                        t.counted,
                        state->search_ev()};
  }
  const auto bytes = protocol::encode(m);
  zmq::socket_t& sock = *output;
  sock.send(zmq::buffer(protocol::kTopicMetrics), zmq::send_flags::sndmore);
  sock.send(zmq::message_t(bytes.data(), bytes.size()), zmq::send_flags::none);
  if (interval_rejected + interval_dropped > 0) {
    log->warn("last {:.1f} s: {} messages rejected, {} dropped by the overflow policy", interval_s,
              interval_rejected, interval_dropped);
  }
  interval_latency.clear();
  interval_published = interval_rejected = interval_dropped = 0;
}

void Daemon::Impl::read_subscriptions() {
  if (!config.output.wait_for_subscriber) return;
  zmq::socket_t& sock = *output;
  long long n = subscriptions.load();
  const long long before = n;
  zmq::message_t m;
  while (sock.recv(m, zmq::recv_flags::dontwait)) {
    // XPUB: 1 + prefix subscribes, 0 + prefix unsubscribes (also when a subscriber leaves).
    if (m.size() == 0) continue;
    const auto kind = static_cast<const std::uint8_t*>(m.data())[0];
    if (kind == 1) ++n;
    if (kind == 0 && n > 0) --n;
  }
  if (n == before) return;
  subscriptions = n;
  if (before == 0 && n > 0) {
    log->info("output: a subscriber is subscribed ({} subscriptions); reading input", n);
  } else if (n == 0) {
    log->warn("output: no subscriber left; reading no input until one subscribes (output.wait_for_subscriber)");
  }
}

void Daemon::Impl::publish_loop() {
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(config.metrics.interval_s));
  Clock::time_point last_metrics = Clock::now();
  std::vector<Outgoing> batch;
  for (;;) {
    inject_fault("publisher");
    const auto until = last_metrics + interval;
    const auto wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()),
                                 std::chrono::milliseconds(0), std::chrono::milliseconds(100));
    // Waiting for a subscriber, the publisher looks at the subscriptions every 20 ms at least.
    outbox.pop_all(batch, config.output.wait_for_subscriber ? std::min(wait, std::chrono::milliseconds(20)) : wait);
    {
      const std::lock_guard lock(publish_mutex);
      read_subscriptions();
      for (Outgoing& o : batch) publish(o);
      const Clock::time_point now = Clock::now();
      if (now >= until) {
        publish_metrics(std::chrono::duration<double>(now - last_metrics).count());
        last_metrics = now;
      }
    }
    batch.clear();
    if (outbox.closed_and_empty()) break;
  }
  // The last word: counters that account for every message received.
  const std::lock_guard lock(publish_mutex);
  publish_metrics(std::chrono::duration<double>(Clock::now() - last_metrics).count());
  output->close();
  acks_done = true;  // every answer is in the pipe to the receiver
}

}  // namespace xasmap::service
