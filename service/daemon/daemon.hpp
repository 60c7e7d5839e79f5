#pragma once
// The streaming service of xasmapd (docs/protocol.md, docs/operations.md).
//
// Threads (each in a file of its own, daemon_impl.hpp): one receiver owns the input socket and
// feeds a bounded queue; input.workers worker threads decode, estimate and encode, and are the
// one compute pool: a stack's pixels are shared out among them in chunks (pixel_chunks.hpp),
// never on threads of its own; one publisher owns the PUB socket, numbers and stamps every result
// and publishes `metrics` every interval; one control thread owns the REP socket. No ZeroMQ
// socket is shared between threads. The model sits behind a shared pointer that a reload swaps
// atomically: a message in flight finishes on the model it started with.

#include <spdlog/logger.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "xasmap/config/config.hpp"

namespace xasmap::service {

class Daemon {
 public:
  // `config_file` is re-read by reload; `overrides` are applied to every reading of it.
  Daemon(config::Config config, std::filesystem::path config_file, config::Overrides overrides,
         std::shared_ptr<spdlog::logger> log);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Opens the control and output sockets, builds the model, opens the input and serves until
  // SIGTERM or SIGINT (which the caller must have blocked in every thread, with SIGHUP, before
  // constructing the daemon) or a `shutdown` command. Then drains: every accepted message is
  // answered, a last `metrics` goes out, and run() returns 0. Returns 65 when the model file is
  // damaged (it can never load as it is), 69 when a socket cannot be opened or the model cannot be
  // built otherwise.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xasmap::service
