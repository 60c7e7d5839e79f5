// The worker threads (daemon_impl.hpp): decode, preprocess, estimate and encode single spectra and
// stacks (a stack's pixels in chunks over the same workers).

#include "daemon_impl.hpp"

namespace xasmap::service {

void Daemon::Impl::work_loop() {
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

void Daemon::Impl::process(Job& job, const ModelState& state) {
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

void Daemon::Impl::process_single(protocol::SpectrumMessage& m, const ModelState& state, Clock::time_point received_at,
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
  record_stages(latency);

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
  deliver(std::move(out));
}

double Daemon::Impl::stack_offset_ev(const protocol::SpectrumMessage& m, const ModelState& state,
                                     const Eigen::VectorXd& energy, bool f4) {
  const auto n = energy.size();
  return xasmap::stack_offset_ev(
      state.model, energy, m.pixels(),
      [&](std::size_t px, Eigen::VectorXd& out) {
        const auto at = static_cast<Eigen::Index>(px) * n;
        if (f4) {
          out = Eigen::Map<const Eigen::VectorXf>(m.intensity_f4.data() + at, n).cast<double>();
        } else {
          out = Eigen::Map<const Eigen::VectorXd>(m.intensity.data() + at, n);
        }
      },
      state.applied_offset_ev(), state.search_ev(), state.config.calibration.track_min_confidence);
}

void Daemon::Impl::process_stack(protocol::SpectrumMessage& m, const ModelState& state, Clock::time_point received_at,
                                 Clock::time_point t1, protocol::Latency latency, Peer& peer) {
  const std::size_t pixels = m.pixels();
  const auto n_energy = static_cast<Eigen::Index>(m.energy.size());
  const Eigen::VectorXd energy = Eigen::Map<const Eigen::VectorXd>(m.energy.data(), n_energy);
  const bool f4 = !m.intensity_f4.empty();  // float storage: each pixel is widened on its own
  StackMapsOptions options;
  options.session_offset_ev = stack_offset_ev(m, state, energy, f4);  // one offset for the whole stack
  if (state.mixture) options.mixture = &state.mixture_options;
  // Chunks of about a quarter of a worker's share (at least 16 pixels), so that every worker can
  // help and none is left with a long tail.
  options.chunk = std::max<std::size_t>(16, pixels / (4 * static_cast<std::size_t>(workers_count)));
  const PixelSource pixel = [&](std::size_t px, Eigen::VectorXd& scratch) -> Eigen::Ref<const Eigen::VectorXd> {
    const auto at = static_cast<Eigen::Index>(px) * n_energy;
    if (!f4) return Eigen::Map<const Eigen::VectorXd>(m.intensity.data() + at, n_energy);
    scratch = Eigen::Map<const Eigen::VectorXf>(m.intensity_f4.data() + at, n_energy).cast<double>();
    return scratch;
  };
  protocol::EstimateMapMessage mm;
  estimate_stack_maps(state.model, energy, pixels, pixel, options,
                      [this](std::size_t n, std::size_t chunk, const ChunkWork& work) {
                        chunks.run(n, chunk, work, [this] { queue.wake(); });
                      },
                      mm);
  latency.compute = micros(t1, Clock::now());
  record_stages(latency);
  mm.id = std::move(m.id);
  mm.shape = m.shape;
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
  deliver(std::move(out));
  // Encoded: the maps themselves go to the NeXus writer, not a copy of them.
  if (!config.output.nexus_file.empty()) queue_nexus(std::move(mm), options.session_offset_ev, state.shared_from_this());
}

}  // namespace xasmap::service
