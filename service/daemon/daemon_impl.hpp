#pragma once
// The daemon's inside (daemon.hpp has the outside): the messages on their way through it, the
// model it serves, and Daemon::Impl, whose members are defined one file per thread role:
//   daemon.cpp     lifecycle: start-up, sockets and CURVE, shutdown and draining
//   receiver.cpp   the receiver thread: the input socket, admission, the acknowledged input
//   results.cpp    rejections and drops, and the hand-off of every result to the publisher
//   workers.cpp    the worker threads: decode, estimate (single spectra, stacks), encode
//   publisher.cpp  the publisher thread: numbering, stamping, answers, metrics
//   control.cpp    the control thread: status, library, config, reload, shutdown requests
//   monitoring.cpp the optional HTTP /metrics (Prometheus's text format) and what it exports
//   model.cpp      building the model and swapping it in on reload
// Only the daemon's own sources include this header.

#include <msgpack.hpp>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include <array>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include "daemon.hpp"

#include "bounded_queue.hpp"
#include "clock.hpp"
#include "curve.hpp"
#include "latency_histogram.hpp"
#include "memory_budget.hpp"
#include "metrics_http.hpp"
#include "model_builder.hpp"
#include "pixel_chunks.hpp"
#include "prometheus.hpp"
#include "stack_maps.hpp"
#include "xasmap/core/embedding.hpp"
#include "xasmap/core/model.hpp"
#include "xasmap/core/session_offset.hpp"
#include "xasmap/core/text.hpp"
#include "xasmap/core/version.hpp"
#include "xasmap/protocol/control.hpp"
#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::service {

using Clock = std::chrono::steady_clock;
using protocol::ErrorCode;

constexpr auto kPollPeriod = std::chrono::milliseconds(50);

inline double micros(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::micro>(to - from).count();
}

// A topic as printable text for messages: at most 64 characters, other bytes as \xNN.
inline std::string printable(std::string_view bytes) {
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
  ErrorCode code = ErrorCode::kInternal;  // a rejection's code, counted per code
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

struct ModelState : std::enable_shared_from_this<ModelState> {
  Model model;
  config::Config config;
  BuildReport report;
  protocol::LibrarySummary summary;
  std::uint64_t generation = 1;
  // The model file's payload checksum (hex) and path, read when the model was loaded; or how the
  // model was made (the NeXus results' and the `config` reply's provenance).
  std::string model_checksum;
  Clock::time_point built = Clock::now();  // when it was built or loaded (model age)
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

inline OverflowPolicy policy_of(config::Overflow o) {
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

inline ErrorCode code_of(RejectReason r) {
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
inline const char* field_of(RejectReason r) {
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

inline std::string describe_endpoint(zmq::socket_t& s, const std::string& configured) {
  try {
    const std::string last = s.get(zmq::sockopt::last_endpoint);
    if (!last.empty()) return last;
  } catch (const zmq::error_t&) {
  }
  return configured;
}

using Packer = msgpack::packer<msgpack::sbuffer>;

// A non-negative integer from the environment; 0 when unset or not a number. For test hooks only.
inline int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end != v && n > 0 && n < 3'600'000 ? static_cast<int>(n) : 0;
}

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
  // output.wait_for_subscriber: the output is an XPUB, whose subscribe and unsubscribe messages
  // the publisher reads (read_subscriptions) into this count; the receiver reads no input while
  // it is 0 (holding_input).
  std::atomic<long long> subscriptions{0};
  void read_subscriptions();
  bool holding_input() const { return config.output.wait_for_subscriber && subscriptions.load() == 0; }
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
  static constexpr std::size_t kErrorCodes = static_cast<std::size_t>(ErrorCode::kInternal) + 1;
  std::array<std::atomic<std::uint64_t>, kErrorCodes> rejected_by_code{};  // sums to `rejected`
  // Every result's latency by stage since start-up (queue, decode, compute: the workers; service:
  // the publisher), for /metrics.
  enum Stage { kStageQueue, kStageDecode, kStageCompute, kStageService, kStages };
  std::array<StageHistogram, kStages> stage_latency;
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
  void inject_fault(const std::string& where);

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
  void stop_threads();

  // The context ends here, while the buffer pool and the budget still exist: ZeroMQ frees the
  // messages it still holds (and so calls back into them) until it has ended.
  ~Impl();

  std::shared_ptr<const ModelState> current_model() const;

  // ---- results ----
  void reject(ErrorCode code, std::optional<std::string> id, std::string field, std::string message,
              Clock::time_point t_received, Peer peer = {});

  // Queues `out` for the publisher with its bytes charged to the budget: a result always (its
  // message was accepted), an error or drop notice only when it fits (otherwise it is counted and
  // not sent), so that a subscriber that never reads cannot pile notices up in ZeroMQ's queue.
  void send(Outgoing&& out);
  // A worker's result, charged as send() charges it, and published by the worker itself when no
  // one else is publishing at that moment (publish_mutex free): no hand-off and no wake-up of the
  // publisher thread per result. Otherwise it is queued for the publisher as send() queues it.
  void deliver(Outgoing&& out);
  void charge(Outgoing& out);

  // Answers a message dropped by the overflow policy: counted, and announced with its id and size
  // when the notice fits in the budget (else its id is not even read: the receiver keeps up).
  void drop(Job&& job, bool budget_full);

  // Takes `cost` bytes of the budget for a new message, per input.overflow: block waits for room
  // (until the daemon stops); drop_oldest drops queued messages, oldest first, until it fits.
  // False when it does not fit: under drop_newest, or when the queue holds too little to free (the
  // bytes are in stacks being computed, results, or ZeroMQ's send queue): the new one is dropped.
  bool admit(std::size_t cost);

  // ---- receiver ----
  void receive_loop();

  // Acknowledged input: whether a message is new. A message whose id is in flight is passed over
  // (its answer is coming); one whose id was answered lately gets a `duplicate` reply instead of
  // a second estimate; a new id is in flight from here until its answer is handed to its sender.
  // A message without an id cannot be matched, and is always new; so is one whose id is longer
  // than kMaxDedupIdBytes, so that the remembered ids stay small (at most input.dedup_ids of them).
  static constexpr std::size_t kMaxDedupIdBytes = 256;
  bool accept_once(zmq::socket_t& sock, Peer& peer, const zmq::message_t& payload);

  // Flags of an answer on its way from the publisher to the receiver.
  static constexpr std::uint8_t kAnswerDelimiter = 1;  // the sender's envelope had an empty frame
  static constexpr std::uint8_t kAnswerRemember = 2;   // the id is answered for good (not a drop)

  // Acknowledged input: sends the answers the publisher handed over to their senders (routing id,
  // [empty frame,] topic, the message as published), and moves their ids from in flight to
  // answered. A sender that has gone is passed over by ZeroMQ (it resends to the next daemon).
  void answer_senders();

  // ---- workers ----
  void work_loop();

  // The job's peer is moved into its answer only when that is sent, so that an exception before
  // (caught in work_loop) still answers the sender.
  void process(Job& job, const ModelState& state);

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
                      Clock::time_point t1, protocol::Latency latency, Peer& peer);

  // The offset a stack is estimated on: the applied session offset, or while that is not known
  // (ModelState::search_ev), core's stack_offset_ev over its pixels (session_offset.hpp), with
  // track_min_confidence. Stacks do not feed the tracker: a session of stacks alone searches each one.
  double stack_offset_ev(const protocol::SpectrumMessage& m, const ModelState& state, const Eigen::VectorXd& energy,
                         bool f4);

  void process_stack(protocol::SpectrumMessage& m, const ModelState& state, Clock::time_point received_at,
                     Clock::time_point t1, protocol::Latency latency, Peer& peer);

  // ---- publisher ----
  // Held by whoever publishes: the publisher thread, or a worker publishing its own result
  // (deliver()). It guards the output and answer sockets (used by one thread at a time, the
  // mutex ordering each hand-over, as ZeroMQ requires of a socket that changes threads), seq and
  // the interval counters and latencies below.
  std::mutex publish_mutex;
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

  void publish(Outgoing& o);

  // Hands the answer of an acknowledged message to the receiver, after it was published: `body`,
  // or for a notice that did not fit in the budget, a short error saying so.
  void answer_sender(Outgoing& o, zmq::message_t* body);

  void count(const Outgoing& o);

  // Counters read in an order that keeps queue_depth >= 0 while messages flow: the outcomes first,
  // then `received`, which is counted before any outcome of the same message.
  struct Counters {
    std::uint64_t received, published, rejected, dropped, duplicates, queue_depth;
  };
  Counters counters() const;

  protocol::LibrarySummary library_summary() const;

  void publish_metrics(double interval_s);

  void publish_loop();

  // ---- the NeXus result writer (output.nexus_file): nexus_writer.cpp ----
  // Each stack's maps wait here (at most kNexusWaiting) for the writer thread, which appends them
  // to the file off the workers' path; a stack that finds the queue full is not written (counted).
  struct NexusJob {
    protocol::EstimateMapMessage map;
    double session_offset_ev = 0;
    std::shared_ptr<const ModelState> state;
  };
  static constexpr std::size_t kNexusWaiting = 4;
  std::mutex nexus_mutex;
  std::condition_variable nexus_cv;
  std::deque<NexusJob> nexus_jobs;  // guarded by nexus_mutex
  bool nexus_closing = false;       // guarded by nexus_mutex
  std::thread nexus_thread;
  std::atomic<std::uint64_t> nexus_written{0}, nexus_failed{0}, nexus_skipped{0};
  void queue_nexus(protocol::EstimateMapMessage map, double session_offset_ev,
                   std::shared_ptr<const ModelState> state);
  void nexus_loop();
  void stop_nexus();  // writes what waits, then ends the thread

  // ---- monitoring (metrics.http_endpoint) ----
  std::unique_ptr<MetricsEndpoint> metrics_http;  // set before the threads start; ended first
  void record_stages(const protocol::Latency& latency);  // queue, decode and compute, in microseconds
  std::string prometheus_text() const;

  // ---- control ----
  void control_loop();

  static void control_error(msgpack::sbuffer& reply, const std::string& message);

  void handle_control(const zmq::message_t* request, msgpack::sbuffer& reply);

  void status_reply(Packer& pk);

  void library_reply(msgpack::sbuffer& reply, Packer& pk);

  // The configuration in force: the model's sections from the model in service (a reload may have
  // changed them), the rest from start-up (they change only with a restart).
  config::Config effective_config() const;
  config::Config effective_config(const ModelState* state) const;  // with that model's sections

  // ---- model building and reload ----
  // Thrown by a reload's build once its stop is requested (the daemon is stopping).
  struct ReloadCancelled : std::runtime_error {
    ReloadCancelled() : std::runtime_error("the daemon is stopping") {}
  };

  // With a stop token (a reload), a simulated library reports its progress to the log every 5 %
  // and gives up between spectra once a stop is requested, and the fit gives up at its next check
  // (between stages and every few rows inside its long loops: Model::fit, FitCancelled).
  std::shared_ptr<const ModelState> build(config::Config cfg, std::uint64_t gen, std::stop_token stop = {});

  void install(std::shared_ptr<const ModelState> state);

  // What start_reload() did; the reason of a refusal is decided under reload_mutex, from the
  // same state drain() changes under it, so a reply never names the wrong reason.
  enum class ReloadStart { kStarted, kNotReady, kStopping, kBusy };
  static const char* describe(ReloadStart r);

  ReloadStart start_reload(const std::string& why);

  void reload(std::stop_token stop);

  // ---- start-up and shutdown ----
  void log_startup(const ModelState& s, double sockets_s, double total_s) const;

  // Reads the CURVE keys of every socket that has them and starts the ZAP handler when a socket
  // that binds has them. False (logged) when a key file cannot be used.
  bool set_up_curve();

  // Applies `side` to `socket` before it binds or connects: CURVE server under ZAP domain
  // xasmap.NAME when it binds, CURVE client trusting the one listed server key when it connects.
  static void apply_curve(zmq::socket_t& socket, const CurveSide& side, const char* name, bool binds);

  static const char* curve_note(const CurveSide& side, bool binds);

  int run();

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

  void drain();
};

}  // namespace xasmap::service
