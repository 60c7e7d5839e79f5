#pragma once
// Replies of the control socket that carry the model (docs/protocol.md, section 8).

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "xasmap/core/error.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::protocol {

// A control request (docs/protocol.md, section 8): one frame holding a msgpack map with a string
// `cmd`. Requests are small flat maps, so arrays and maps of more than 1024 elements, nesting
// deeper than 32 levels and strings longer than the frame are refused while unpacking, before any
// of it is built; so are a key that is not a string or appears twice (one reader could see
// {"cmd": "bogus"} and another {"cmd": "status"}) and a `cmd` that is not a string. Other keys are
// the command's arguments, ignored by the commands that take none.
struct ControlRequest {
  std::string cmd;
};

// What refuses a control request: the daemon answers {ok: false, error: what()}.
class ControlRequestError : public Error {
 public:
  using Error::Error;
};

// Throws ControlRequestError naming what is wrong (the size limit `max_bytes` included).
ControlRequest decode_control_request(const std::uint8_t* data, std::size_t size, std::size_t max_bytes);

// The `library` reply: {ok: true, method, map_dims, parameters: [{name, categorical, categories}],
// spectra: [{label, params, map}]}, one entry per row of `map` (library size x map dims).
std::vector<std::uint8_t> encode_library_reply(const std::vector<ParameterInfo>& parameters,
                                               const std::vector<std::string>& labels,
                                               const std::vector<std::vector<double>>& values,
                                               const Eigen::MatrixXd& map, const std::string& method);

// The `library` reply as a client reads it.
struct LibraryReply {
  std::string method;
  std::vector<ParameterInfo> parameters;  // name, categorical, category names
  struct Spectrum {
    std::string label;
    ParamMap params;
    std::vector<double> map;  // its map coordinates
  };
  std::vector<Spectrum> spectra;
};

// A control reply that says {ok: false, error}: what() holds the daemon's reason.
class ControlReplyError : public Error {
 public:
  using Error::Error;
};

// Decodes encode_library_reply's bytes. A refusal throws ControlReplyError with the daemon's
// reason; a malformed reply throws ProtocolError naming the field ("spectra[3].map").
LibraryReply decode_library_reply(const std::uint8_t* data, std::size_t size);

}  // namespace xasmap::protocol
