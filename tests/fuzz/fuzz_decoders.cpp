// Every decoder that faces the network, in one libFuzzer target: the daemon's spectrum decoder
// (with small limits, so that the fuzzer explores them rather than memory), its control request
// decoder, and what a client decodes: error, estimate, estimate_map and metrics messages, the
// control socket's `library` reply, and peek_id. The first byte of an input chooses the decoder
// (the library reply shares peek_id's inputs, so that the committed corpus keeps its choices). A
// decoder may refuse its input only with ProtocolError (ControlRequestError for a control request,
// ControlReplyError for a reply that says it was refused); any other exception, a crash or a
// sanitizer report is a finding.
//
// Built two ways: with clang's -fsanitize=fuzzer (deploy/fuzz.sh, run from deploy/test.sh for a
// bounded time), and with the project's compiler as tests/fuzz_corpus (ctest), which runs every
// committed input (corpus/ and regressions/, the inputs the fuzzer once failed on) through it.

#include <cstddef>
#include <cstdint>

#include "xasmap/protocol/control.hpp"
#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/results.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xasmap::protocol;
  if (size == 0) return 0;
  const std::uint8_t which = data[0] % 7;
  ++data;
  --size;
  try {
    switch (which) {
      case 0: {
        DecodeLimits limits;
        limits.max_points = 4096;
        limits.max_stack_pixels = 4096;
        limits.max_array_elements = 65536;
        (void)decode_spectrum(data, size, limits);
        break;
      }
      case 1:
        (void)decode_error_message(data, size);
        break;
      case 2:
        (void)decode_estimate(data, size);
        break;
      case 3:
        (void)decode_estimate_map(data, size);
        break;
      case 4:
        (void)decode_metrics(data, size);
        break;
      case 5:
        (void)peek_id(data, size);
        (void)decode_library_reply(data, size);
        break;
      default:
        (void)decode_control_request(data, size, 65536);
        break;
    }
  } catch (const ProtocolError&) {
    // refused, as it should be
  } catch (const ControlRequestError&) {
    // refused, as it should be
  } catch (const ControlReplyError&) {
    // a well-formed refusal, as it should be read
  }
  return 0;
}
