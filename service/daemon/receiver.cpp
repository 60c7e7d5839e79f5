// The receiver thread (daemon_impl.hpp): the input socket, admission to the queue, the
// acknowledged input's de-duplication and answers.

#include "daemon_impl.hpp"

namespace xasmap::service {

void Daemon::Impl::receive_loop() {
  zmq::socket_t& sock = *input;
  const std::string& topic = config.input.topic;
  const auto max_bytes = static_cast<std::size_t>(config.input.max_message_bytes);
  std::vector<zmq::message_t> frames;
  while (!stop_receiving.load()) {
    inject_fault("receiver");
    // output.wait_for_subscriber: the input is not read while nothing is subscribed (its senders
    // wait, or resend); answers of what was accepted still go out.
    if (holding_input()) {
      if (acknowledged) {
        zmq::pollitem_t item{acks_in->handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::milliseconds(10));
        answer_senders();
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      continue;
    }
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

bool Daemon::Impl::accept_once(zmq::socket_t& sock, Peer& peer, const zmq::message_t& payload) {
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

void Daemon::Impl::answer_senders() {
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

}  // namespace xasmap::service
