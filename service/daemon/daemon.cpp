#include "daemon.hpp"

#include <msgpack.hpp>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <chrono>
#include <cmath>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "bounded_queue.hpp"
#include "clock.hpp"
#include "curve.hpp"
#include "latency_histogram.hpp"
#include "memory_budget.hpp"
#include "model_builder.hpp"
#include "pixel_chunks.hpp"
#include "xasmap/core/embedding.hpp"
#include "xasmap/core/model.hpp"
#include "xasmap/core/session_offset.hpp"
#include "xasmap/core/text.hpp"
#include "xasmap/core/version.hpp"
#include "xasmap/protocol/control.hpp"
#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::service {

namespace {

using Clock = std::chrono::steady_clock;
using protocol::ErrorCode;

constexpr auto kPollPeriod = std::chrono::milliseconds(50);

double micros(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::micro>(to - from).count();
}

// A topic as printable text for messages: at most 64 characters, other bytes as \xNN.
std::string printable(std::string_view bytes) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (bytes.size() > 64) out += "...";
  return out;
}

// What one queued or published message costs beyond its bytes: ZeroMQ's message entries and
// content block for both frames, our wrapper, allocator headers and the heap fragmentation between
// results that ZeroMQ holds. Measured with a subscriber that never reads (tests/service/
// daemon_test.py, memory): about 900 bytes a held result beyond the capacity of its buffer.
constexpr std::size_t kMessageOverhead = 1024;
// What a drop notice or an error message is charged: a small map with the id, code and text.
constexpr std::size_t kNoticeBytes = 512 + kMessageOverhead;
// ZeroMQ's receive buffer under a drop policy, in messages: ZeroMQ's default, enough to ride out
// the receiver's scheduling pauses without holding a flood.
constexpr int kDropReceiveHwm = 1000;
// ZeroMQ's receive batch (ZMQ_IN_BATCH_SIZE, 8 KiB by default): smaller messages share one.
constexpr std::size_t kReceiveBatchBytes = 8192;

// The sender of a message on the acknowledged input (pattern router): its answer goes back to it
// once published (docs/protocol.md, Delivery guarantees).
struct Peer {
  std::string routing_id;  // empty: the input is not acknowledged (sub, pull)
  bool delimiter = false;  // the sender put an empty frame before the topic (a REQ-style envelope)
  std::string id;          // the message's id as the receiver read it, for de-duplication
};

struct Job {
  zmq::message_t payload;
  Clock::time_point received;
  BudgetCharge charge;  // payload.size() + kMessageOverhead, until the message is answered
  Peer peer;
};

enum class Outcome { kPublished, kRejected, kDropped };

// A result on its way to the publisher.
struct Outgoing {
  std::string_view topic;
  Outcome outcome = Outcome::kPublished;
  protocol::Encoded encoded;       // estimate and estimate_map carry stamp offsets
  bool stamp = false;
  Clock::time_point received;
  std::optional<double> acquisition_time;
  // A message dropped by the overflow policy: its error is built by the publisher, off the
  // receiver's path, from the id and sizes only (the payload is freed at once).
  struct Dropped {
    std::optional<std::string> id;
    std::size_t bytes = 0;      // the dropped message's frame 1
    bool budget_full = false;   // input.memory_budget_bytes was full (else input.queue_capacity)
  };
  std::optional<Dropped> dropped;
  // Whether the message is sent: an error or drop notice is sent only when its bytes fit in the
  // memory budget; otherwise it is counted (status 'unannounced') and not sent.
  bool announce = true;
  BudgetCharge charge;  // the encoded bytes, until ZeroMQ has freed them
  Peer peer;            // acknowledged input: who is answered once this is published
};

struct ModelState {
  Model model;
  config::Config config;
  BuildReport report;
  protocol::LibrarySummary summary;
  std::uint64_t generation = 1;
  // The session's energy offset: where it started (the config's calibration section), and the
  // tracker fed by every single spectrum's estimate (docs/estimation.md).
  double session_start_ev = 0;
  std::string session_from;
  std::shared_ptr<SessionOffsetTracker> tracker;
  // Mixed valence (estimation.mixture: auto): the charges' 3d holes, and where they came from.
  bool mixture = false;
  MixtureOptions mixture_options;
  std::string mixture_from;

  // The offset estimates are made on.
  double applied_offset_ev() const {
    return config.calibration.track == config::OffsetTracking::kApply ? tracker->tracked_ev() : session_start_ev;
  }
  // How far around it the session offset is searched: calibration.search_ev until the offset is
  // known (calibrated on a reference at start-up, or tracked and applied from enough confident
  // estimates), then 0.
  double search_ev() const {
    const config::CalibrationConfig& c = config.calibration;
    if (c.search_ev <= 0.0 || !c.reference_file.empty()) return 0.0;
    if (c.track == config::OffsetTracking::kApply && tracker->settled()) return 0.0;
    return c.search_ev;
  }
};

OverflowPolicy policy_of(config::Overflow o) {
  switch (o) {
    case config::Overflow::kDropOldest:
      return OverflowPolicy::kDropOldest;
    case config::Overflow::kDropNewest:
      return OverflowPolicy::kDropNewest;
    case config::Overflow::kBlock:
      return OverflowPolicy::kBlock;
  }
  return OverflowPolicy::kDropOldest;
}

ErrorCode code_of(RejectReason r) {
  switch (r) {
    case RejectReason::kNonFinite:
      return ErrorCode::kNonFinite;
    case RejectReason::kTooFewPoints:
      return ErrorCode::kTooFewPoints;
    case RejectReason::kNonMonotonic:
      return ErrorCode::kNonMonotonicEnergy;
    case RejectReason::kTooLittleOverlap:
      return ErrorCode::kInsufficientOverlap;
    case RejectReason::kFlat:
      return ErrorCode::kFlatSpectrum;
    case RejectReason::kEnergyUnit:
      return ErrorCode::kEnergyUnit;
    case RejectReason::kNoEdge:
      return ErrorCode::kNoEdge;
  }
  return ErrorCode::kInternal;
}

// The input field a preprocessing rejection is about.
const char* field_of(RejectReason r) {
  switch (r) {
    case RejectReason::kNonFinite:
    case RejectReason::kFlat:
    case RejectReason::kNoEdge:
      return "intensity";
    case RejectReason::kEnergyUnit:
    case RejectReason::kTooFewPoints:
    case RejectReason::kNonMonotonic:
    case RejectReason::kTooLittleOverlap:
      return "energy";
  }
  return "";
}

std::string describe_endpoint(zmq::socket_t& s, const std::string& configured) {
  try {
    const std::string last = s.get(zmq::sockopt::last_endpoint);
    if (!last.empty()) return last;
  } catch (const zmq::error_t&) {
  }
  return configured;
}

using Packer = msgpack::packer<msgpack::sbuffer>;

// A non-negative integer from the environment; 0 when unset or not a number. For test hooks only.
int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end != v && n > 0 && n < 3'600'000 ? static_cast<int>(n) : 0;
}

}  // namespace

struct Daemon::Impl {
  Impl(config::Config cfg, std::filesystem::path file, config::Overrides ov,
       std::shared_ptr<spdlog::logger> logger)
      : config(std::move(cfg)),
        config_file(std::move(file)),
        overrides(std::move(ov)),
        log(std::move(logger)),
        queue(static_cast<std::size_t>(config.input.queue_capacity)),
        outbox(static_cast<std::size_t>(-1) / 2),
        budget(static_cast<std::size_t>(config.input.memory_budget_bytes)),
        policy(policy_of(config.input.overflow)),
        workers_count(config.input.workers > 0
                          ? config.input.workers
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))) {
    limits.max_points = static_cast<std::size_t>(config.input.max_points);
    limits.max_stack_pixels = static_cast<std::size_t>(config.input.max_stack_pixels);
    limits.max_array_elements = 64 * limits.max_points;
  }

  // ---- configuration and state ----
  const config::Config config;  // the start-up config; endpoints and queue never change
  const std::filesystem::path config_file;
  const config::Overrides overrides;
  std::shared_ptr<spdlog::logger> log;
  protocol::DecodeLimits limits;
  const Clock::time_point started = Clock::now();

  zmq::context_t context{1};
  // CURVE (docs/operations.md): each socket's keys, read at start-up, and the ZAP handler that
  // admits the clients of the sockets that bind; created before them, closed after them.
  CurveSide input_curve, output_curve, control_curve;
  std::optional<CurveAuthenticator> authenticator;
  std::optional<zmq::socket_t> input, output, control;
  // Acknowledged input (pattern router): the publisher hands each answer to the receiver, which
  // owns the ROUTER, through this inproc pipe (PUSH acks_out -> PULL acks_in).
  const bool acknowledged = config.input.pattern == config::InputPattern::kRouter;
  std::optional<zmq::socket_t> acks_in, acks_out;
  std::atomic<bool> reading_done{false};  // the receiver reads no more input
  std::atomic<bool> acks_done{false};     // the publisher has handed over its last answer
  // The receiver's own (no lock): ids accepted and not yet answered, and the last
  // input.dedup_ids ids answered, oldest first.
  std::unordered_set<std::string> ids_in_flight, ids_answered;
  std::deque<std::string> ids_answered_order;
  std::string output_endpoint, control_endpoint;  // set before the threads start
  mutable std::mutex input_endpoint_mutex;
  std::string input_endpoint;  // guarded by input_endpoint_mutex: known only once the model is built

  BoundedQueue<Job> queue;
  BoundedQueue<Outgoing> outbox;
  PixelChunks chunks;  // stack pixels waiting for the workers (the one compute pool)
  MemoryBudget budget;  // input.memory_budget_bytes

  // Output buffers go round: a worker takes one, ZeroMQ gives it back once sent (from its I/O
  // thread: ~Impl() ends the context before the pool and the budget go). The pool keeps buffers of
  // up to 64 KiB, 4 MiB in all, outside the budget.
  class BufferPool {
   public:
    std::vector<std::uint8_t> acquire() {
      std::lock_guard lock(mutex_);
      if (free_.empty()) return {};
      std::vector<std::uint8_t> b = std::move(free_.back());
      free_.pop_back();
      pooled_bytes_ -= b.capacity();
      return b;
    }
    void release(std::vector<std::uint8_t>&& b) {
      if (b.capacity() == 0 || b.capacity() > kMaxBuffer) return;  // keep small buffers only
      std::lock_guard lock(mutex_);
      if (pooled_bytes_ + b.capacity() > kMaxPooled) return;
      pooled_bytes_ += b.capacity();
      free_.push_back(std::move(b));
    }

   private:
    static constexpr std::size_t kMaxBuffer = 64 << 10, kMaxPooled = 4 << 20;
    std::mutex mutex_;
    std::vector<std::vector<std::uint8_t>> free_;
    std::size_t pooled_bytes_ = 0;
  } buffers;
  const OverflowPolicy policy;
  const int workers_count;
  // Test hook: $XASMAPD_TEST_DRAIN_PAUSE_MS holds drain() between refusing reloads and stopping
  // the receiver, so that tests can look into that window (tests/service/daemon_test.py, drain).
  const int drain_pause_ms = env_int("XASMAPD_TEST_DRAIN_PAUSE_MS");

  mutable std::mutex model_mutex;
  std::shared_ptr<const ModelState> model_state;  // guarded by model_mutex
  std::atomic<std::uint64_t> generation{0};

  std::atomic<std::uint64_t> received{0}, published{0}, rejected{0}, dropped{0};
  std::atomic<std::uint64_t> duplicates{0};  // acknowledged input: resends of ids in flight or answered
  std::atomic<std::uint64_t> unannounced{0};  // errors and drop notices counted but not sent (budget full)
  std::atomic<bool> ready{false}, stop_receiving{false}, stop_control{false};
  std::atomic<bool> shutdown_requested{false}, reloading{false};
  std::mutex reload_mutex;
  std::jthread reload_thread;      // guarded by reload_mutex
  bool stopping = false;           // guarded by reload_mutex
  std::string last_reload_error;   // guarded by reload_mutex
  std::string last_reload_result;  // guarded by reload_mutex

  // Every thread the daemon starts is owned here (declared after everything they use, so they
  // are gone before it is), runs its loop under guarded(), and is stopped and joined by drain()
  // or, when run() leaves early or by an exception, by ~Impl().
  std::jthread receiver, publisher, controller;
  std::vector<std::jthread> workers;
  std::atomic<std::uint64_t> thread_failures{0};  // exceptions that escaped a thread's loop

  // Test hook: $XASMAPD_TEST_FAULT, a comma-separated list of receiver, worker, publisher, control
  // and run, throws once in each named place (tests/service/daemon_test.py, faults).
  const std::string test_faults = std::getenv("XASMAPD_TEST_FAULT") ? std::getenv("XASMAPD_TEST_FAULT") : "";
  std::mutex fault_mutex;
  std::vector<std::string> faults_fired;  // guarded by fault_mutex
  void inject_fault(const std::string& where) {
    if (test_faults.empty() || ("," + test_faults + ",").find("," + where + ",") == std::string::npos) return;
    {
      std::lock_guard lock(fault_mutex);
      if (std::find(faults_fired.begin(), faults_fired.end(), where) != faults_fired.end()) return;
      faults_fired.push_back(where);
    }
    throw std::runtime_error("test fault injected in " + where);
  }

  // Runs a thread's loop; an exception that escapes it (a ZeroMQ error, bad_alloc, a bug) is
  // logged and counted, and the loop is started again after a pause (0.1 s, doubling to 5 s), so
  // that the thread neither dies silently nor ends the process. The loops return normally once
  // their stop condition holds, so a restarted loop still stops.
  template <class Loop>
  void guarded(const char* name, Loop loop) {
    auto pause = std::chrono::milliseconds(100);
    for (;;) {
      try {
        loop();
        return;
      } catch (const std::exception& e) {
        log->error("the {} thread failed: {}; restarting it in {} ms", name, e.what(), pause.count());
      } catch (...) {
        log->error("the {} thread failed (an unknown exception); restarting it in {} ms", name, pause.count());
      }
      ++thread_failures;
      std::this_thread::sleep_for(pause);
      pause = std::min<std::chrono::milliseconds>(2 * pause, std::chrono::seconds(5));
    }
  }

  // Stops every thread and joins it; safe to call more than once.
  void stop_threads() {
    {
      std::lock_guard lock(reload_mutex);
      stopping = true;
      stop_receiving = true;
      ready = false;
      reload_thread.request_stop();  // a reload still building gives up (ReloadCancelled)
    }
    shutdown_requested = true;
    // The receiver stops reading; on the acknowledged input it goes on answering senders until
    // the publisher has handed over its last answer, so it is joined after the publisher.
    while (receiver.joinable() && !reading_done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    queue.close();
    for (auto& w : workers) {
      if (w.joinable()) w.join();
    }
    outbox.close();
    if (publisher.joinable()) publisher.join();
    acks_done = true;
    if (receiver.joinable()) receiver.join();
    stop_control = true;
    if (controller.joinable()) controller.join();
    if (authenticator) authenticator->stop();
    std::jthread pending;
    {
      std::lock_guard lock(reload_mutex);
      pending = std::move(reload_thread);
    }
    if (pending.joinable()) pending.join();
  }

  // The context ends here, while the buffer pool and the budget still exist: ZeroMQ frees the
  // messages it still holds (and so calls back into them) until it has ended.
  ~Impl() {
    stop_threads();
    input.reset();
    output.reset();
    control.reset();
    acks_in.reset();
    acks_out.reset();
    authenticator.reset();
    context.close();
  }

  std::shared_ptr<const ModelState> current_model() const {
    std::lock_guard lock(model_mutex);
    return model_state;
  }

  // ---- results ----
  void reject(ErrorCode code, std::optional<std::string> id, std::string field, std::string message,
              Clock::time_point t_received, Peer peer = {}) {
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
    out.encoded.bytes = protocol::encode(e);
    out.received = t_received;
    out.peer = std::move(peer);
    send(std::move(out));
  }

  // Queues `out` for the publisher with its bytes charged to the budget: a result always (its
  // message was accepted), an error or drop notice only when it fits (otherwise it is counted and
  // not sent), so that a subscriber that never reads cannot pile notices up in ZeroMQ's queue.
  void send(Outgoing&& out) {
    const std::size_t cost = std::max(out.encoded.bytes.capacity() + kMessageOverhead, kNoticeBytes);
    if (out.topic != protocol::kTopicError) {
      budget.force_acquire(cost);
    } else if (!budget.try_acquire(cost)) {
      out.announce = false;
      out.encoded.bytes = {};
    }
    if (out.announce) out.charge = BudgetCharge(&budget, cost);
    outbox.push(std::move(out), OverflowPolicy::kBlock, [] { return true; });
  }

  // Answers a message dropped by the overflow policy: counted, and announced with its id and size
  // when the notice fits in the budget (else its id is not even read: the receiver keeps up).
  void drop(Job&& job, bool budget_full) {
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

  // Takes `cost` bytes of the budget for a new message, per input.overflow: block waits for room
  // (until the daemon stops); drop_oldest drops queued messages, oldest first, until it fits.
  // False when it does not fit: under drop_newest, or when the queue holds too little to free (the
  // bytes are in stacks being computed, results, or ZeroMQ's send queue): the new one is dropped.
  bool admit(std::size_t cost) {
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

  // ---- receiver ----
  void receive_loop() {
    zmq::socket_t& sock = *input;
    const std::string& topic = config.input.topic;
    const auto max_bytes = static_cast<std::size_t>(config.input.max_message_bytes);
    std::vector<zmq::message_t> frames;
    while (!stop_receiving.load()) {
      inject_fault("receiver");
      zmq::pollitem_t items[2] = {{sock.handle(), 0, ZMQ_POLLIN, 0},
                                  {acknowledged ? acks_in->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, acknowledged ? 2 : 1, kPollPeriod);
      if (acknowledged) answer_senders();
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      for (int burst = 0; burst < 4096 && !stop_receiving.load(); ++burst) {
        zmq::message_t first;
        if (!sock.recv(first, zmq::recv_flags::dontwait)) break;
        const Clock::time_point t = Clock::now();
        ++received;
        // Up to 4 frames are kept (a routing id, an empty delimiter, the topic, the payload); the
        // rest of a longer message is read and counted only. A multipart message arrives whole.
        frames.clear();
        int count = 1;
        bool more = first.more();
        frames.push_back(std::move(first));
        while (more) {
          zmq::message_t extra;
          (void)sock.recv(extra);
          ++count;
          more = extra.more();
          if (frames.size() < 4) frames.push_back(std::move(extra));
        }
        Peer peer;
        std::size_t at = 0;  // the first frame of the message proper
        if (acknowledged) {
          peer.routing_id = frames[0].to_string();
          at = 1;
          if (frames.size() >= 4 && frames[1].size() == 0) {
            peer.delimiter = true;
            at = 2;
          }
          count -= static_cast<int>(at);
        }
        if (count != 2) {
          reject(ErrorCode::kBadFrames, std::nullopt, "",
                 "the message has " + std::to_string(count) + (count == 1 ? " frame" : " frames") +
                     "; protocol v1 messages have exactly 2: the topic and a msgpack map",
                 t, std::move(peer));
          continue;
        }
        zmq::message_t& head = frames[at];
        zmq::message_t payload = std::move(frames[at + 1]);
        if (head.to_string_view() != topic) {
          reject(ErrorCode::kBadFrames, std::nullopt, "topic",
                 "topic '" + printable(head.to_string_view()) + "' is not the input topic '" + topic + "'", t,
                 std::move(peer));
          continue;
        }
        if (acknowledged && !accept_once(sock, peer, payload)) {
          ++duplicates;
          continue;
        }
        if (payload.size() > max_bytes) {
          reject(ErrorCode::kTooLarge,
                 protocol::peek_id(static_cast<const std::uint8_t*>(payload.data()), payload.size()),
                 "", "the message is " + std::to_string(payload.size()) +
                         " bytes; the limit (input.max_message_bytes) is " + std::to_string(max_bytes),
                 t, std::move(peer));
          continue;
        }
        if (payload.size() < kReceiveBatchBytes) {
          // ZeroMQ decodes small messages into a shared receive batch, which stays allocated while any
          // of them is: a copy of its own makes a queued message hold only its own bytes.
          payload = zmq::message_t(payload.data(), payload.size());
        }
        const std::size_t cost = payload.size() + kMessageOverhead;
        if (!admit(cost)) {
          drop(Job{std::move(payload), t, {}, std::move(peer)}, true);
          continue;
        }
        auto r = queue.push(Job{std::move(payload), t, BudgetCharge(&budget, cost), std::move(peer)}, policy,
                            [this] { return !stop_receiving.load(); });
        if (r.dropped) drop(std::move(*r.dropped), false);
      }
    }
    reading_done = true;
    if (acknowledged) {
      // What was accepted is still being answered: its answers go to their senders until the
      // publisher has handed over the last one.
      for (;;) {
        const bool last = acks_done.load();
        answer_senders();
        if (last) break;
        zmq::pollitem_t item{acks_in->handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, kPollPeriod);
      }
    }
    sock.close();
  }

  // Acknowledged input: whether a message is new. A message whose id is in flight is passed over
  // (its answer is coming); one whose id was answered lately gets a `duplicate` reply instead of
  // a second estimate; a new id is in flight from here until its answer is handed to its sender.
  // A message without an id cannot be matched, and is always new; so is one whose id is longer
  // than kMaxDedupIdBytes, so that the remembered ids stay small (at most input.dedup_ids of them).
  static constexpr std::size_t kMaxDedupIdBytes = 256;
  bool accept_once(zmq::socket_t& sock, Peer& peer, const zmq::message_t& payload) {
    peer.id = protocol::peek_id(static_cast<const std::uint8_t*>(payload.data()), payload.size()).value_or("");
    if (peer.id.size() > kMaxDedupIdBytes) peer.id.clear();
    if (peer.id.empty()) return true;
    if (ids_in_flight.count(peer.id)) return false;
    if (ids_answered.count(peer.id)) {
      msgpack::sbuffer b;
      Packer pk(b);
      pk.pack_map(3);
      pk.pack("type");
      pk.pack(protocol::kTopicDuplicate);
      pk.pack("id");
      pk.pack(peer.id);
      pk.pack("message");
      pk.pack(std::string("already answered; its estimate was published then, and is not made again"));
      sock.send(zmq::buffer(peer.routing_id), zmq::send_flags::sndmore);
      if (peer.delimiter) sock.send(zmq::message_t(), zmq::send_flags::sndmore);
      sock.send(zmq::buffer(protocol::kTopicDuplicate), zmq::send_flags::sndmore);
      sock.send(zmq::message_t(b.data(), b.size()), zmq::send_flags::none);
      return false;
    }
    ids_in_flight.insert(peer.id);
    return true;
  }

  // Flags of an answer on its way from the publisher to the receiver.
  static constexpr std::uint8_t kAnswerDelimiter = 1;  // the sender's envelope had an empty frame
  static constexpr std::uint8_t kAnswerRemember = 2;   // the id is answered for good (not a drop)

  // Acknowledged input: sends the answers the publisher handed over to their senders (routing id,
  // [empty frame,] topic, the message as published), and moves their ids from in flight to
  // answered. A sender that has gone is passed over by ZeroMQ (it resends to the next daemon).
  void answer_senders() {
    zmq::socket_t& sock = *input;
    for (int n = 0; n < 4096; ++n) {
      zmq::message_t routing_id;
      if (!acks_in->recv(routing_id, zmq::recv_flags::dontwait)) return;
      zmq::message_t flags, answer_topic, body, id;
      (void)acks_in->recv(flags);
      (void)acks_in->recv(answer_topic);
      (void)acks_in->recv(body);
      (void)acks_in->recv(id);
      const std::uint8_t f = flags.size() == 1 ? *static_cast<const std::uint8_t*>(flags.data()) : 0;
      sock.send(routing_id, zmq::send_flags::sndmore);
      if (f & kAnswerDelimiter) sock.send(zmq::message_t(), zmq::send_flags::sndmore);
      sock.send(answer_topic, zmq::send_flags::sndmore);
      sock.send(body, zmq::send_flags::none);
      if (id.size() == 0) continue;
      std::string key = id.to_string();
      ids_in_flight.erase(key);
      if ((f & kAnswerRemember) && config.input.dedup_ids > 0 && ids_answered.insert(key).second) {
        ids_answered_order.push_back(std::move(key));
        if (ids_answered_order.size() > static_cast<std::size_t>(config.input.dedup_ids)) {
          ids_answered.erase(ids_answered_order.front());
          ids_answered_order.pop_front();
        }
      }
    }
  }

  // ---- workers ----
  void work_loop() {
    std::shared_ptr<const ModelState> state;
    std::uint64_t seen = 0;
    for (;;) {
      inject_fault("worker");
      // Pixels of stacks in flight first: the one compute pool serves them before new input.
      if (chunks.run_one()) continue;
      auto job = queue.pop(std::chrono::milliseconds(100), [this] { return chunks.pending(); });
      // A reloaded model is taken up on the next job or within 100 ms when idle, so that an idle
      // worker does not keep an old model alive.
      if (generation.load(std::memory_order_acquire) != seen) {
        state = current_model();
        seen = state->generation;
      }
      if (!job) {
        if (queue.closed_and_empty() && !chunks.pending()) return;
        continue;
      }
      try {
        process(*job, *state);
      } catch (const std::exception& e) {
        // A bug, not bad input: still answered, never silent.
        log->error("internal error on a message: {}", e.what());
        reject(ErrorCode::kInternal,
               protocol::peek_id(static_cast<const std::uint8_t*>(job->payload.data()), job->payload.size()),
               "", std::string("internal error: ") + e.what(), job->received, std::move(job->peer));
      }
    }
  }

  // The job's peer is moved into its answer only when that is sent, so that an exception before
  // (caught in work_loop) still answers the sender.
  void process(Job& job, const ModelState& state) {
    const Clock::time_point t0 = Clock::now();
    protocol::SpectrumMessage m;
    try {
      m = protocol::decode_spectrum(static_cast<const std::uint8_t*>(job.payload.data()),
                                    job.payload.size(), limits);
    } catch (const protocol::ProtocolError& e) {
      reject(e.code(), e.id(), e.field(), e.detail(), job.received, std::move(job.peer));
      return;
    }
    if (!m.stack && !m.intensity_f4.empty()) {
      // One spectrum is small (at most input.max_points values): widened here, not in the decoder.
      m.intensity.assign(m.intensity_f4.begin(), m.intensity_f4.end());
      m.intensity_f4 = {};
    }
    const Clock::time_point t1 = Clock::now();
    protocol::Latency latency;
    latency.queue = micros(job.received, t0);
    latency.decode = micros(t0, t1);
    if (m.time) latency.end_to_end = 0.0;  // stamped at publication
    if (m.stack) {
      // A stack in flight holds its decoded intensities (4 or 8 bytes a value, as sent) and its
      // maps (a float per pixel for each parameter, its uncertainty or confidence, and novelty)
      // besides its payload: charged to the budget until it is answered.
      const std::size_t decoded = m.intensity.capacity() * sizeof(double) + m.intensity_f4.capacity() * sizeof(float);
      // (Mixed valence adds the mean valence, its sd and a fraction map per charge.)
      const std::size_t mixture_maps = state.mixture ? 2 + state.model.class_values().size() : 0;
      const std::size_t maps = m.pixels() * sizeof(float) * (2 * state.model.parameters().size() + 1 + mixture_maps);
      budget.force_acquire(decoded + maps);
      const BudgetCharge in_flight(&budget, decoded + maps);
      process_stack(m, state, job.received, t1, latency, job.peer);
    } else {
      process_single(m, state, job.received, t1, latency, job.peer);
    }
  }

  // A worker's reusable state: after the first messages, estimating and encoding one allocate
  // nothing (the decode and ZeroMQ's own message bookkeeping aside).
  struct WorkerScratch {
    Prepared prepared;
    Estimate estimate;
    OffsetSearchScratch search;
    Mixture mixture;
    protocol::EstimateMessage message;
  };

  void process_single(protocol::SpectrumMessage& m, const ModelState& state, Clock::time_point received_at,
                      Clock::time_point t1, protocol::Latency latency, Peer& peer) {
    static thread_local WorkerScratch w;
    const Model& model = state.model;
    const auto n = static_cast<Eigen::Index>(m.energy.size());
    const double session = state.applied_offset_ev();
    const double search = state.search_ev();
    try {
      const Eigen::Map<const Eigen::VectorXd> energy(m.energy.data(), n), intensity(m.intensity.data(), n);
      if (search > 0.0) {
        // The session offset is not known yet: search it (energy_shift_ev is the whole offset).
        estimate_over_offsets(model, energy, intensity, session, search, w.search, w.estimate);
        if (state.mixture) {
          w.mixture = mixture_over_offsets(model, energy, intensity, session, search, w.estimate,
                                           state.mixture_options, w.prepared);
          cap_class_confidence(w.mixture, w.estimate);
        }
      } else {
        preprocess_into(energy, intensity, model.options().preprocess, w.prepared, session);
        model.estimate_into(w.prepared, w.estimate);
        if (state.mixture) {
          w.mixture = model.mixture(w.prepared, w.estimate, state.mixture_options);
          cap_class_confidence(w.mixture, w.estimate);
        }
        w.estimate.energy_shift_ev += session;  // the whole offset: the session's and the spectrum's own
      }
      if (state.config.calibration.track != config::OffsetTracking::kOff) state.tracker->observe(w.estimate);
    } catch (const PreprocessError& err) {
      std::string text = err.what();
      // The sender chooses the unit; xasmap feed converts files with --energy-unit keV.
      if (err.reason() == RejectReason::kEnergyUnit) text += "; send energies in eV";
      reject(code_of(err.reason()), m.id, field_of(err.reason()), text, received_at, std::move(peer));
      return;
    }
    latency.compute = micros(t1, Clock::now());

    protocol::EstimateMessage& em = w.message;
    em.id.swap(m.id);
    protocol::to_estimate_message(model.parameters(), w.estimate, em);
    if (state.mixture) {
      if (!em.mixture) em.mixture.emplace();
      protocol::to_mixture_entry_into(model.parameters(), w.mixture, *em.mixture);
    } else {
      em.mixture.reset();
    }
    em.latency = latency;
    em.meta.swap(m.meta);

    Outgoing out;
    out.topic = protocol::kTopicEstimate;
    out.encoded.bytes = buffers.acquire();
    protocol::encode_into(em, out.encoded);
    out.stamp = true;
    out.received = received_at;
    out.acquisition_time = m.time;
    out.peer = std::move(peer);
    send(std::move(out));
  }

  // The offset a stack is estimated on: the applied session offset, or while that is not known
  // (ModelState::search_ev), the median whole offset of up to 16 pixels spread over the stack,
  // each searched (estimate_over_offsets), over those whose estimates are confident
  // (track_min_confidence) and inside the library; at least 3 must be, else the applied offset
  // stands. Pixels, not the mean spectrum: a stack of several phases has a mean that none of them
  // is. Stacks do not feed the tracker: a session of stacks alone searches each one.
  double stack_offset_ev(const protocol::SpectrumMessage& m, const ModelState& state, const Eigen::VectorXd& energy,
                         bool f4) {
    const double session = state.applied_offset_ev();
    const double search = state.search_ev();
    if (search <= 0.0) return session;
    constexpr std::size_t kSampled = 16;
    const std::size_t pixels = m.pixels();
    const auto n = energy.size();
    OffsetSearchScratch scratch;
    Estimate e;
    Eigen::VectorXd pixel(n);
    std::vector<double> found;
    for (std::size_t k = 0; k < std::min(kSampled, pixels); ++k) {
      const auto px = static_cast<Eigen::Index>((2 * k + 1) * pixels / (2 * std::min(kSampled, pixels)));
      if (f4) {
        pixel = Eigen::Map<const Eigen::VectorXf>(m.intensity_f4.data() + px * n, n).cast<double>();
      } else {
        pixel = Eigen::Map<const Eigen::VectorXd>(m.intensity.data() + px * n, n);
      }
      try {
        estimate_over_offsets(state.model, energy, pixel, session, search, scratch, e);
      } catch (const PreprocessError&) {
        continue;  // the pixel's own estimate will say why
      }
      const double p = e.class_probability.empty()
                           ? 1.0
                           : *std::max_element(e.class_probability.begin(), e.class_probability.end());
      if (e.in_library && p >= state.config.calibration.track_min_confidence) found.push_back(e.energy_shift_ev);
    }
    if (found.size() < 3) return session;
    const auto mid = found.begin() + static_cast<std::ptrdiff_t>(found.size() / 2);
    std::nth_element(found.begin(), mid, found.end());
    return *mid;
  }

  void process_stack(protocol::SpectrumMessage& m, const ModelState& state, Clock::time_point received_at,
                     Clock::time_point t1, protocol::Latency latency, Peer& peer) {
    const Model& model = state.model;
    const auto& params = model.parameters();
    const std::size_t pixels = m.pixels();
    const auto n_energy = static_cast<Eigen::Index>(m.energy.size());
    const float nan = std::numeric_limits<float>::quiet_NaN();

    protocol::EstimateMapMessage mm;
    for (const ParameterInfo& p : params) {
      mm.params.emplace_back(p.name, std::vector<float>(pixels, nan));
      (p.categorical ? mm.confidence : mm.uncertainty).emplace_back(p.name, std::vector<float>(pixels, nan));
      if (!p.category_names.empty()) mm.categories.emplace_back(p.name, p.category_names);
    }
    mm.novelty.assign(pixels, nan);
    // Mixed valence: the mean valence beside the parameters, and each charge's atom fraction.
    std::size_t valence = 0;
    const std::vector<double>& charges = model.class_values();  // one fraction map each
    if (state.mixture) {
      valence = mm.params.size();
      mm.params.emplace_back("valence", std::vector<float>(pixels, nan));
      mm.uncertainty.emplace_back("valence", std::vector<float>(pixels, nan));
      for (double c : charges) mm.fractions.emplace_back(protocol::fraction_key(c), std::vector<float>(pixels, nan));
    }
    std::atomic<std::uint64_t> rejected_pixels{0};
    const Eigen::VectorXd energy = Eigen::Map<const Eigen::VectorXd>(m.energy.data(), n_energy);
    const bool f4 = !m.intensity_f4.empty();  // float storage: each pixel is widened on its own
    const double session = stack_offset_ev(m, state, energy, f4);  // one offset for the whole stack

    // Chunks of about a quarter of a worker's share (at least 16 pixels), so that every worker can
    // help and none is left with a long tail.
    const std::size_t chunk = std::max<std::size_t>(16, pixels / (4 * static_cast<std::size_t>(workers_count)));
    chunks.run(pixels, chunk, [&](std::size_t begin_px, std::size_t end_px) {
      static thread_local Prepared prepared;
      static thread_local Estimate e;
      static thread_local Eigen::VectorXd pixel;  // an f4 pixel as double
      const auto begin = static_cast<Eigen::Index>(begin_px), end = static_cast<Eigen::Index>(end_px);
      for (Eigen::Index px = begin; px < end; ++px) {
        try {
          if (f4) {
            pixel = Eigen::Map<const Eigen::VectorXf>(m.intensity_f4.data() + px * n_energy, n_energy).cast<double>();
          }
          preprocess_into(energy,
                          f4 ? Eigen::Ref<const Eigen::VectorXd>(pixel)
                             : Eigen::Ref<const Eigen::VectorXd>(
                                   Eigen::Map<const Eigen::VectorXd>(m.intensity.data() + px * n_energy, n_energy)),
                          model.options().preprocess, prepared, session);
          model.estimate_into(prepared, e);
          const auto i = static_cast<std::size_t>(px);
          if (state.mixture) {
            const Mixture x = model.mixture(prepared, e, state.mixture_options);
            cap_class_confidence(x, e);
            mm.params[valence].second[i] = static_cast<float>(x.mean_value);
            mm.uncertainty.back().second[i] = static_cast<float>(x.mean_value_sd);
            for (auto& [key, f] : mm.fractions) f[i] = 0.0f;
            for (const MixtureComponent& c : x.components) {
              const auto k = static_cast<std::size_t>(
                  std::lower_bound(charges.begin(), charges.end(), c.class_value) - charges.begin());
              if (k < charges.size()) mm.fractions[k].second[i] = static_cast<float>(c.fraction);
            }
          }
          std::size_t ci = 0, ui = 0;
          for (std::size_t p = 0; p < params.size(); ++p) {
            mm.params[p].second[i] = static_cast<float>(e.values[p]);
            if (params[p].categorical) {
              mm.confidence[ci++].second[i] = static_cast<float>(e.confidence[p]);
            } else {
              mm.uncertainty[ui++].second[i] = static_cast<float>(e.uncertainty[p]);
            }
          }
          mm.novelty[i] = static_cast<float>(e.novelty);
        } catch (const PreprocessError&) {
          ++rejected_pixels;
        }
      }
    }, [this] { queue.wake(); });
    latency.compute = micros(t1, Clock::now());
    mm.id = std::move(m.id);
    mm.shape = m.shape;
    mm.rejected_pixels = rejected_pixels.load();
    mm.latency = latency;
    mm.meta = std::move(m.meta);
    if (mm.rejected_pixels > 0) {
      log->debug("stack '{}': {} of {} pixels could not be judged", mm.id, mm.rejected_pixels, pixels);
    }

    Outgoing out;
    out.topic = protocol::kTopicEstimateMap;
    out.encoded = protocol::encode(mm);
    out.stamp = true;
    out.received = received_at;
    out.acquisition_time = m.time;
    out.peer = std::move(peer);
    send(std::move(out));
  }

  // ---- publisher ----
  std::uint64_t seq = 0;
  LatencyHistogram interval_latency;
  std::uint64_t interval_published = 0;
  std::uint64_t interval_rejected = 0, interval_dropped = 0;

  // A buffer that ZeroMQ owns until it has sent it to every subscriber (or dropped it at
  // output.send_hwm); its bytes stay charged to the budget until then.
  struct SentBuffer {
    std::vector<std::uint8_t> bytes;
    BudgetCharge charge;
    BufferPool* pool;
    // Released by the publisher once it has written the bytes, acquired by the free callback
    // before they go back to the pool. ZeroMQ's own hand-off already orders the two, but inside
    // libzmq, where ThreadSanitizer cannot see it; this pair states it where it can.
    std::atomic<bool> handed_over{false};
  };

  void publish(Outgoing& o) {
    if (!o.announce) {  // a notice that did not fit in the budget: counted only
      ++unannounced;
      count(o.outcome);
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
    }
    // Acknowledged input: the sender's answer is the message as published (a copy: the published
    // bytes go to ZeroMQ without one).
    std::optional<zmq::message_t> answer;
    if (!o.peer.routing_id.empty()) answer.emplace(o.encoded.bytes.data(), o.encoded.bytes.size());
    zmq::socket_t& sock = *output;
    sock.send(zmq::buffer(o.topic), zmq::send_flags::sndmore);
    // Zero-copy: ZeroMQ frees the buffer (and its charge) when no subscriber's queue holds it.
    auto* held = new SentBuffer{std::move(o.encoded.bytes), std::move(o.charge), &buffers};
    held->handed_over.store(true, std::memory_order_release);
    zmq::message_t body(held->bytes.data(), held->bytes.size(), [](void*, void* hint) {
      auto* h = static_cast<SentBuffer*>(hint);
      (void)h->handed_over.load(std::memory_order_acquire);
      h->charge.reset();
      h->pool->release(std::move(h->bytes));
      delete h;
    }, held);
    sock.send(body, zmq::send_flags::none);
    count(o.outcome);
    if (answer) answer_sender(o, &*answer);
  }

  // Hands the answer of an acknowledged message to the receiver, after it was published: `body`,
  // or for a notice that did not fit in the budget, a short error saying so.
  void answer_sender(Outgoing& o, zmq::message_t* body) {
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

  void count(Outcome outcome) {
    switch (outcome) {
      case Outcome::kPublished:
        ++published;
        ++interval_published;
        break;
      case Outcome::kRejected:
        ++rejected;
        ++interval_rejected;
        break;
      case Outcome::kDropped:
        ++dropped;
        ++interval_dropped;
        break;
    }
  }

  // Counters read in an order that keeps queue_depth >= 0 while messages flow: the outcomes first,
  // then `received`, which is counted before any outcome of the same message.
  struct Counters {
    std::uint64_t received, published, rejected, dropped, duplicates, queue_depth;
  };
  Counters counters() const {
    Counters c{};
    c.published = published.load();
    c.rejected = rejected.load();
    c.dropped = dropped.load();
    c.duplicates = duplicates.load();
    c.received = received.load();
    c.queue_depth = c.received - c.published - c.rejected - c.dropped - c.duplicates;
    return c;
  }

  protocol::LibrarySummary library_summary() const {
    const auto state = current_model();
    return state ? state->summary : protocol::LibrarySummary{0, 0, 0, "none"};
  }

  void publish_metrics(double interval_s) {
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

  void publish_loop() {
    const auto interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(config.metrics.interval_s));
    Clock::time_point last_metrics = Clock::now();
    std::vector<Outgoing> batch;
    for (;;) {
      inject_fault("publisher");
      const auto until = last_metrics + interval;
      const auto wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()),
                                   std::chrono::milliseconds(0), std::chrono::milliseconds(100));
      outbox.pop_all(batch, wait);
      for (Outgoing& o : batch) publish(o);
      batch.clear();
      const Clock::time_point now = Clock::now();
      if (now >= until) {
        publish_metrics(std::chrono::duration<double>(now - last_metrics).count());
        last_metrics = now;
      }
      if (outbox.closed_and_empty()) break;
    }
    // The last word: counters that account for every message received.
    publish_metrics(std::chrono::duration<double>(Clock::now() - last_metrics).count());
    output->close();
    acks_done = true;  // every answer is in the pipe to the receiver
  }

  // ---- control ----
  void control_loop() {
    zmq::socket_t& sock = *control;
    while (!stop_control.load()) {
      inject_fault("control");
      zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, kPollPeriod);
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t request;
      if (!sock.recv(request, zmq::recv_flags::dontwait)) continue;
      bool extra_frames = false;
      while (request.more()) {
        zmq::message_t extra;
        (void)sock.recv(extra);
        extra_frames = true;
        if (!extra.more()) break;
      }
      msgpack::sbuffer reply;
      try {
        handle_control(extra_frames ? nullptr : &request, reply);
      } catch (const std::exception& e) {
        reply.clear();
        control_error(reply, std::string("internal error: ") + e.what());
      }
      sock.send(zmq::message_t(reply.data(), reply.size()), zmq::send_flags::none);
    }
    sock.close();
  }

  static void control_error(msgpack::sbuffer& reply, const std::string& message) {
    Packer pk(reply);
    pk.pack_map(2);
    pk.pack("ok");
    pk.pack(false);
    pk.pack("error");
    pk.pack(message);
  }

  void handle_control(const zmq::message_t* request, msgpack::sbuffer& reply) {
    static const std::vector<std::string> kCommands{"status", "library", "config", "reload", "shutdown"};
    if (!request) {
      return control_error(reply, "a control request is one frame holding a msgpack map");
    }
    std::optional<std::string> cmd;
    try {
      cmd = protocol::decode_control_request(static_cast<const std::uint8_t*>(request->data()), request->size(),
                                             static_cast<std::size_t>(config.control.max_request_bytes))
                .cmd;
    } catch (const protocol::ControlRequestError& e) {
      return control_error(reply, e.what());
    }
    Packer pk(reply);
    if (*cmd == "status") return status_reply(pk);
    if (*cmd == "library") return library_reply(reply, pk);
    if (*cmd == "config") {
      const auto state = current_model();
      pk.pack_map(3);
      pk.pack("ok");
      pk.pack(true);
      pk.pack("config_file");
      pk.pack(config_file.string());
      pk.pack("yaml");
      pk.pack(config::to_yaml(effective_config()));
      return;
    }
    if (*cmd == "reload") {
      const ReloadStart r = start_reload("the control command 'reload'");
      const bool started_now = r == ReloadStart::kStarted;
      pk.pack_map(2);
      pk.pack("ok");
      pk.pack(started_now);
      pk.pack(started_now ? "message" : "error");
      pk.pack(describe(r));
      return;
    }
    if (*cmd == "shutdown") {
      log->info("shutdown requested on the control socket");
      shutdown_requested = true;
      pk.pack_map(2);
      pk.pack("ok");
      pk.pack(true);
      pk.pack("message");
      pk.pack("shutting down: every accepted message will be answered");
      return;
    }
    std::string message = "unknown command '" + protocol::quote_text(*cmd) + "'";
    const std::string near = closest_match(*cmd, kCommands);
    if (!near.empty()) message += "; did you mean '" + near + "'?";
    reply.clear();
    control_error(reply, message + " (commands: status, library, config, reload, shutdown)");
  }

  void status_reply(Packer& pk) {
    const Counters c = counters();
    std::string reload_error, reload_result;
    {
      std::lock_guard lock(reload_mutex);
      reload_error = last_reload_error;
      reload_result = last_reload_result;
    }
    pk.pack_map(23);
    pk.pack("ok");
    pk.pack(true);
    pk.pack("ready");
    pk.pack(ready.load());
    pk.pack("received");
    pk.pack(c.received);
    pk.pack("published");
    pk.pack(c.published);
    pk.pack("rejected");
    pk.pack(c.rejected);
    pk.pack("dropped");
    pk.pack(c.dropped);
    pk.pack("duplicates");
    pk.pack(c.duplicates);
    pk.pack("queue_depth");
    pk.pack(c.queue_depth);
    pk.pack("queued");
    pk.pack(static_cast<std::uint64_t>(queue.size()));
    pk.pack("uptime_s");
    pk.pack(std::chrono::duration<double>(Clock::now() - started).count());
    pk.pack("config_file");
    pk.pack(config_file.string());
    pk.pack("version");
    pk.pack(std::string(kVersion));
    pk.pack("protocol");
    pk.pack(protocol::kProtocolVersion);
    pk.pack("model_generation");
    pk.pack(generation.load());
    pk.pack("reloading");
    pk.pack(reloading.load());
    pk.pack("last_reload");
    pk.pack(reload_result);
    pk.pack("last_reload_error");
    pk.pack(reload_error);
    pk.pack("thread_failures");
    pk.pack(thread_failures.load());
    pk.pack("memory_used_bytes");
    pk.pack(static_cast<std::uint64_t>(budget.used()));
    pk.pack("memory_budget_bytes");
    pk.pack(static_cast<std::uint64_t>(budget.limit()));
    pk.pack("unannounced");
    pk.pack(unannounced.load());
    pk.pack("endpoints");
    pk.pack_map(3);
    pk.pack("input");
    {
      std::lock_guard lock(input_endpoint_mutex);
      pk.pack(input_endpoint);
    }
    pk.pack("output");
    pk.pack(output_endpoint);
    pk.pack("control");
    pk.pack(control_endpoint);
    // CURVE per socket: whether it is on, and what the ZAP handler admitted and refused (sockets
    // that bind; one that connects checks its server's key itself).
    pk.pack("curve");
    pk.pack_map(3);
    const auto side = [&](const char* name, const CurveSide& keys) {
      pk.pack(name);
      const CurveAuthenticator::Counts n =
          authenticator ? authenticator->counts(std::string("xasmap.") + name) : CurveAuthenticator::Counts{};
      pk.pack_map(3);
      pk.pack("enabled");
      pk.pack(keys.enabled());
      pk.pack("accepted");
      pk.pack(n.accepted);
      pk.pack("refused");
      pk.pack(n.refused);
    };
    side("input", input_curve);
    side("output", output_curve);
    side("control", control_curve);
  }

  void library_reply(msgpack::sbuffer& reply, Packer& pk) {
    const auto state = current_model();
    if (!state) {
      pk.pack_map(2);
      pk.pack("ok");
      pk.pack(false);
      pk.pack("error");
      pk.pack("the model is not built yet; 'status' says when the daemon is ready");
      return;
    }
    const Model& model = state->model;
    const auto bytes = protocol::encode_library_reply(model.parameters(), model.labels(), model.values(),
                                                      model.library_map(), state->summary.method);
    reply.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }

  // The configuration in force: the model's sections from the model in service (a reload may have
  // changed them), the rest from start-up (they change only with a restart).
  config::Config effective_config() const {
    const auto state = current_model();
    if (!state) return config;
    config::Config c = state->config;
    c.input = config.input;
    c.output = config.output;
    c.control = config.control;
    c.metrics = config.metrics;
    c.logging = config.logging;
    return c;
  }

  // ---- model building and reload ----
  // Thrown by a reload's build once its stop is requested (the daemon is stopping).
  struct ReloadCancelled : std::runtime_error {
    ReloadCancelled() : std::runtime_error("the daemon is stopping") {}
  };

  // With a stop token (a reload), a simulated library reports its progress to the log every 5 %
  // and gives up between spectra once a stop is requested, and the fit gives up at its next check
  // (between stages and every few rows inside its long loops: Model::fit, FitCancelled).
  std::shared_ptr<const ModelState> build(config::Config cfg, std::uint64_t gen, std::stop_token stop = {}) {
    auto state = std::make_shared<ModelState>();
    ProgressCallback progress;
    FitCancelRequested cancelled;
    if (stop.stop_possible()) {
      // Test hook: $XASMAPD_TEST_FIT_PAUSE_MS holds the fit at its first check for that long and
      // then lets it go on (whatever was requested meanwhile), so that a stop asked for in that
      // window has to be seen by a later check (tests/service/daemon_test.py, reload_fit_cancel).
      cancelled = [this, stop, first = std::make_shared<std::once_flag>(),
                   pause_ms = env_int("XASMAPD_TEST_FIT_PAUSE_MS")] {
        bool held = false;
        std::call_once(*first, [&] {
          log->info("reload: fitting the model");
          if (pause_ms > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
            held = true;
          }
        });
        return !held && stop.stop_requested();
      };
      progress = [this, stop, logged = 0](int done, int total) mutable {
        if (stop.stop_requested()) throw ReloadCancelled();
        const int step = std::max(1, total / 20);
        if (done / step != logged / step || done == total) {
          log->info("reload: {} of {} library spectra simulated", done, total);
          logged = done;
        }
      };
    }
    state->model = build_model(cfg, &state->report, progress, cancelled);
    if (stop.stop_requested()) throw ReloadCancelled();
    if (cfg.library.source == config::LibrarySource::kModel) {
      // A model file brings the settings it was fitted with; those are in force, and reported.
      for (const std::string& note : adopt_model_settings(state->model, cfg)) {
        log->warn("{} ({} uses the model's setting)", note, cfg.library.model_file.string());
      }
    }
    state->session_start_ev = session_offset(cfg, state->model, &state->session_from);
    SessionTrackerOptions track;
    track.window = cfg.calibration.track_window;
    track.min_samples = cfg.calibration.track_min_samples;
    track.min_confidence = cfg.calibration.track_min_confidence;
    state->tracker = std::make_shared<SessionOffsetTracker>(state->session_start_ev, track);
    state->mixture = cfg.estimation.mixture == config::MixtureMode::kAuto && state->model.class_parameter() >= 0;
    if (state->mixture) {
      state->mixture_options = mixture_options(cfg, state->model, &state->mixture_from);
      state->model.prepare_mixture();  // before the first spectrum, not on it
    }
    state->config = std::move(cfg);
    state->generation = gen;
    const Model& m = state->model;
    state->summary = {m.library_size(), static_cast<std::uint64_t>(m.landmark_count()),
                      static_cast<std::uint64_t>(m.options().estimate_dims), to_string(m.options().method)};
    return state;
  }

  void install(std::shared_ptr<const ModelState> state) {
    std::lock_guard lock(model_mutex);
    const std::uint64_t g = state->generation;
    model_state = std::move(state);
    generation.store(g, std::memory_order_release);
  }

  // What start_reload() did; the reason of a refusal is decided under reload_mutex, from the
  // same state drain() changes under it, so a reply never names the wrong reason.
  enum class ReloadStart { kStarted, kNotReady, kStopping, kBusy };
  static const char* describe(ReloadStart r) {
    switch (r) {
      case ReloadStart::kStarted:
        return "reload started; 'status' shows when it is done";
      case ReloadStart::kNotReady:
        return "the daemon is not ready yet: its start-up model is still being built";
      case ReloadStart::kStopping:
        return "the daemon is shutting down";
      case ReloadStart::kBusy:
        return "a reload is already running";
    }
    return "";
  }

  ReloadStart start_reload(const std::string& why) {
    std::lock_guard lock(reload_mutex);
    if (stopping) return ReloadStart::kStopping;
    if (!ready.load()) return ReloadStart::kNotReady;  // the start-up build is still running
    bool expected = false;
    if (!reloading.compare_exchange_strong(expected, true)) return ReloadStart::kBusy;
    if (reload_thread.joinable()) reload_thread.join();
    log->info("reload requested by {}: re-reading {}", why, config_file.string());
    reload_thread = std::jthread([this](std::stop_token stop) { reload(stop); });
    return ReloadStart::kStarted;
  }

  void reload(std::stop_token stop) {
    const auto t0 = Clock::now();
    std::string error, result;
    try {
      config::Config cfg = config::load_config(config_file, overrides);
      std::vector<std::string> restart;
      if (!(cfg.input == config.input)) restart.emplace_back("input");
      if (!(cfg.output == config.output)) restart.emplace_back("output");
      if (!(cfg.control == config.control)) restart.emplace_back("control");
      if (!(cfg.metrics == config.metrics)) restart.emplace_back("metrics");
      if (!(cfg.logging == config.logging)) restart.emplace_back("logging");
      for (const auto& section : restart) {
        log->warn("reload: section '{}' changed; it takes effect only at the next start", section);
      }
      auto state = build(std::move(cfg), generation.load() + 1, stop);
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      result = "generation " + std::to_string(state->generation) + ": " + state->report.source + ", " +
               std::to_string(state->summary.size) + " spectra, built in " + std::to_string(seconds) + " s";
      install(std::move(state));
      log->info("reload done: model {}", result);
    } catch (const ReloadCancelled&) {
      log->info("reload cancelled: the daemon is stopping");
    } catch (const std::exception& e) {
      if (stop.stop_requested()) {
        // simulate_library() rethrows our ReloadCancelled as it was thrown; anything else that
        // fails while stopping is reported the same way.
        log->info("reload cancelled: the daemon is stopping ({})", e.what());
      } else {
        error = e.what();
        log->error("reload failed, the running model stays: {}", error);
      }
    }
    std::lock_guard lock(reload_mutex);
    last_reload_error = error;
    if (!result.empty()) last_reload_result = result;
    reloading = false;
  }

  // ---- start-up and shutdown ----
  void log_startup(const ModelState& s, double sockets_s, double total_s) const {
    const auto& r = s.report;
    const Model& m = s.model;
    const auto& c = s.config;
    log->info("xasmapd {} ready in {:.2f} s (protocol v{}, config {})", kVersion, total_s,
              protocol::kProtocolVersion, config_file.string());
    log->info("  library    {}: {} spectra, {} rows with shifted copies, grid {}-{} eV step {} eV",
              r.source, m.library_size(), m.rows(), c.library.grid.emin_ev, c.library.grid.emax_ev,
              c.library.grid.step_ev);
    log->info("  embedding  {}, {} distance, {} landmarks, {} estimation dims, {} map dims",
              to_string(m.options().method), config::to_string(c.embedding.distance), m.landmark_count(),
              m.options().estimate_dims, m.options().map_dims);
    if (s.search_ev() > 0.0) {
      log->info("  session    energy offset {:+.2f} eV ({}), tracking {}, searched within +-{:.2f} eV until known",
                s.session_start_ev, s.session_from, config::to_string(c.calibration.track), s.search_ev());
    } else {
      log->info("  session    energy offset {:+.2f} eV ({}), tracking {}", s.session_start_ev, s.session_from,
                config::to_string(c.calibration.track));
    }
    log->info("  mixture    {}", s.mixture ? "auto: " + s.mixture_from : std::string("off"));
    log->info("  start-up   library {:.2f} s, model file {:.2f} s, preprocess {:.2f} s, landmarks {:.2f} s, "
              "embedding {:.2f} s, index {:.2f} s, sockets {:.3f} s",
              r.library_s, r.load_s, r.fit.preprocess_s, r.fit.landmarks_s, r.fit.embed_s, r.fit.index_s,
              sockets_s);
    log->info("  input      {} {} {} topic '{}', queue {} ({}), memory budget {} MiB, {} workers{}",
              config::to_string(config.input.pattern), config.input.bind ? "bind" : "connect", input_endpoint,
              config.input.topic, config.input.queue_capacity, config::to_string(config.input.overflow),
              config.input.memory_budget_bytes >> 20, workers_count, curve_note(input_curve, config.input.bind));
    log->info("  output     pub {} {}, metrics every {} s{}", config.output.bind ? "bind" : "connect", output_endpoint,
              config.metrics.interval_s, curve_note(output_curve, config.output.bind));
    log->info("  control    rep bind {}{}", control_endpoint, curve_note(control_curve, true));
  }

  // Reads the CURVE keys of every socket that has them and starts the ZAP handler when a socket
  // that binds has them. False (logged) when a key file cannot be used.
  bool set_up_curve() {
    try {
      CurveSides sides = load_curve_sides(config);
      input_curve = std::move(sides.input);
      output_curve = std::move(sides.output);
      control_curve = std::move(sides.control);
    } catch (const config::ConfigError& e) {
      log->error("{}", e.what());
      return false;
    }
    for (const auto* c : {&config.input.curve, &config.output.curve, &config.control.curve}) {
      if (!c->enabled()) continue;
      if (const std::string w = secret_key_permission_warning(c->secret_key_file); !w.empty()) log->warn("{}", w);
    }
    const bool zap_needed = control_curve.enabled() || (input_curve.enabled() && config.input.bind) ||
                            (output_curve.enabled() && config.output.bind);
    if (!zap_needed) return true;
    authenticator.emplace(context, log);
    authenticator->allow("xasmap.control", control_curve.authorized);
    if (config.input.bind) authenticator->allow("xasmap.input", input_curve.authorized);
    if (config.output.bind) authenticator->allow("xasmap.output", output_curve.authorized);
    authenticator->start();
    return true;
  }

  // Applies `side` to `socket` before it binds or connects: CURVE server under ZAP domain
  // xasmap.NAME when it binds, CURVE client trusting the one listed server key when it connects.
  static void apply_curve(zmq::socket_t& socket, const CurveSide& side, const char* name, bool binds) {
    if (!side.enabled()) return;
    if (binds) {
      make_curve_server(socket, *side.own, std::string("xasmap.") + name);
    } else {
      make_curve_client(socket, *side.own, side.authorized.front());
    }
  }

  static const char* curve_note(const CurveSide& side, bool binds) {
    if (!side.enabled()) return "";
    if (!binds) return ", CURVE (known server)";
    return side.authorized.empty() ? ", CURVE (encrypted, any client)" : ", CURVE (listed clients)";
  }

  int run() {
    const auto t_start = Clock::now();
    if (!set_up_curve()) return 78;
    try {
      control.emplace(context, zmq::socket_type::rep);
      apply_curve(*control, control_curve, "control", true);
      control->set(zmq::sockopt::linger, 0);
      // A request far over control.max_request_bytes is cut off by ZeroMQ (the peer is
      // disconnected) instead of being held whole in memory; one up to 16 times the limit still
      // gets an error reply that names the key.
      control->set(zmq::sockopt::maxmsgsize,
                   static_cast<std::int64_t>(std::max<long long>(1 << 20, 16 * config.control.max_request_bytes)));
      control->bind(config.control.endpoint);
      control_endpoint = describe_endpoint(*control, config.control.endpoint);
    } catch (const zmq::error_t& e) {
      log->error("cannot bind the control socket to {}: {}", config.control.endpoint, e.what());
      return 69;
    }
    try {
      output.emplace(context, zmq::socket_type::pub);
      output->set(zmq::sockopt::sndhwm, config.output.send_hwm);
      output->set(zmq::sockopt::linger, 1000);
      apply_curve(*output, output_curve, "output", config.output.bind);
      if (config.output.bind) {
        output->bind(config.output.endpoint);
      } else {
        output->connect(config.output.endpoint);  // e.g. to a proxy's XSUB
      }
      output_endpoint = describe_endpoint(*output, config.output.endpoint);
    } catch (const zmq::error_t& e) {
      log->error("cannot open the output socket on {}: {}", config.output.endpoint, e.what());
      return 69;
    }
    for (const std::string& w : config.warnings()) log->warn("{}", w);
    controller = std::jthread([this] { guarded("control", [this] { control_loop(); }); });
    publisher = std::jthread([this] { guarded("publisher", [this] { publish_loop(); }); });
    log->info("xasmapd {} starting: control {}, output {}; building the model ({})", kVersion,
              control_endpoint, output_endpoint, config::to_string(config.library.source));

    int status = 0;
    // The start-up model is built on its own thread, so that SIGTERM, SIGINT or `shutdown` stop the
    // daemon at once even while a large library is being simulated: nothing has been accepted yet.
    std::atomic<bool> built{false};
    std::string build_error;
    bool model_file_damaged = false;
    std::jthread builder([&] {
      try {
        install(build(config, 1));
      } catch (const ModelFileError& e) {
        build_error = e.what();
        model_file_damaged = true;
      } catch (const std::exception& e) {
        build_error = e.what();
      }
      built = true;
    });
    if (!wait_for_signals([&] { return built.load(); })) {
      log->info("stopping during start-up: nothing was accepted yet");
      stop_receiving = true;
      outbox.close();
      if (publisher.joinable()) publisher.join();
      stop_control = true;
      if (controller.joinable()) controller.join();
      log->flush();
      spdlog::shutdown();
      // The builder cannot be interrupted; leave without waiting for it (and without running
      // destructors it might still depend on).
      std::quick_exit(0);
    }
    builder.join();
    if (!build_error.empty()) {
      log->error("cannot build the model: {}", build_error);
      // A damaged model file never loads: 65 (EX_DATAERR), which the systemd unit does not retry.
      status = model_file_damaged ? 65 : 69;
    }
    double sockets_s = 0;
    if (status == 0) {
      const auto t_sockets = Clock::now();
      try {
        const bool sub = config.input.pattern == config::InputPattern::kSub;
        input.emplace(context, sub            ? zmq::socket_type::sub
                               : acknowledged ? zmq::socket_type::router
                                              : zmq::socket_type::pull);
        // With a drop policy the receiver drains ZeroMQ's buffer at once and every drop happens, counted
        // and answered, in the daemon's queue. ZeroMQ's buffer is still bounded (kDropReceiveHwm
        // messages), outside the memory budget: a feed faster than the receiver itself then waits
        // (TCP back-pressure), and a PUB feed drops at its own send_hwm. With `block` the buffer is
        // held to queue_capacity, so that a PUSH sender feels the back-pressure (a PUB sender drops
        // beyond it: docs/operations.md).
        input->set(zmq::sockopt::rcvhwm, config.input.overflow == config::Overflow::kBlock
                                             ? config.input.queue_capacity
                                             : std::min(config.input.queue_capacity, kDropReceiveHwm));
        // Acknowledged: the last answers are flushed to their senders at a stop (up to 2 s).
        input->set(zmq::sockopt::linger, acknowledged ? 2000 : 0);
        if (sub) input->set(zmq::sockopt::subscribe, config.input.topic);
        if (acknowledged) {
          acks_in.emplace(context, zmq::socket_type::pull);
          acks_in->set(zmq::sockopt::rcvhwm, 0);
          acks_in->bind("inproc://xasmapd-answers");
          acks_out.emplace(context, zmq::socket_type::push);
          acks_out->set(zmq::sockopt::sndhwm, 0);
          acks_out->connect("inproc://xasmapd-answers");
        }
        apply_curve(*input, input_curve, "input", config.input.bind);
        if (config.input.bind) {
          input->bind(config.input.endpoint);
        } else {
          input->connect(config.input.endpoint);
        }
        std::lock_guard lock(input_endpoint_mutex);
        input_endpoint = describe_endpoint(*input, config.input.endpoint);
      } catch (const zmq::error_t& e) {
        log->error("cannot open the input socket on {}: {}", config.input.endpoint, e.what());
        status = 69;
      }
      sockets_s = std::chrono::duration<double>(Clock::now() - t_sockets).count();
    }
    if (status == 0) {
      for (int i = 0; i < workers_count; ++i) {
        workers.emplace_back([this] { guarded("worker", [this] { work_loop(); }); });
      }
      receiver = std::jthread([this] { guarded("receiver", [this] { receive_loop(); }); });
      ready = true;
      log_startup(*current_model(), sockets_s, std::chrono::duration<double>(Clock::now() - t_start).count());
      inject_fault("run");
      wait_for_signals([] { return false; });
    }
    drain();
    return status;
  }

  // Takes SIGTERM, SIGINT and SIGHUP until a stop is asked for (returns false) or `done()` holds
  // (returns true). A SIGHUP while the start-up model is built waits until the daemon is ready.
  template <class Done>
  bool wait_for_signals(Done done) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (ready.load()) sigaddset(&set, SIGHUP);
    const timespec period{0, 50'000'000};
    while (!shutdown_requested.load()) {
      if (done()) return true;
      const int sig = sigtimedwait(&set, nullptr, &period);
      if (sig == SIGHUP) {
        const ReloadStart r = start_reload("SIGHUP");
        if (r != ReloadStart::kStarted) log->warn("SIGHUP ignored: {}", describe(r));
      } else if (sig == SIGTERM || sig == SIGINT) {
        log->info("{}: stopping; every accepted message will be answered", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        return false;
      }
    }
    return false;
  }

  void drain() {
    const auto t0 = Clock::now();
    {
      // From here on start_reload() refuses as "shutting down": `stopping` and `stop_receiving`
      // are set before `ready` is cleared, all under the lock start_reload() decides under.
      std::lock_guard lock(reload_mutex);
      stopping = true;
      stop_receiving = true;
      ready = false;
    }
    if (drain_pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(drain_pause_ms));
    // The receiver stops, the workers answer what was accepted, the publisher sends it and a last
    // metrics, the control socket closes; a reload still building is asked to stop (a simulated
    // library gives up between spectra) and joined without holding reload_mutex, which it needs
    // at its end; its model is not used.
    stop_threads();
    const Counters c = counters();
    log->info("xasmapd stopped in {:.3f} s: received {}, published {}, rejected {}, dropped {}{}",
              std::chrono::duration<double>(Clock::now() - t0).count(), c.received, c.published, c.rejected,
              c.dropped, acknowledged ? ", duplicates " + std::to_string(c.duplicates) : std::string());
  }
};

Daemon::Daemon(config::Config config, std::filesystem::path config_file, config::Overrides overrides,
               std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(config_file), std::move(overrides),
                                   std::move(log))) {}

Daemon::~Daemon() = default;

int Daemon::run() { return impl_->run(); }

}  // namespace xasmap::service
