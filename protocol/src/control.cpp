#include "xasmap/protocol/control.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "xasmap/protocol/messages.hpp"

#include "msgpack_detail.hpp"

namespace xasmap::protocol {

namespace {
constexpr std::size_t kMaxControlElements = 1024;  // arrays and maps of a request
constexpr std::size_t kMaxControlDepth = 32;       // nesting levels of a request
}  // namespace

ControlRequest decode_control_request(const std::uint8_t* data, std::size_t size, std::size_t max_bytes) {
  if (size > max_bytes) {
    throw ControlRequestError("the request is " + std::to_string(size) +
                              " bytes; the limit (control.max_request_bytes) is " + std::to_string(max_bytes));
  }
  const auto wire = std::min<std::size_t>(size, 0xffffffffu);
  const msgpack::unpack_limit bounds(kMaxControlElements, kMaxControlElements, wire, wire, wire, kMaxControlDepth);
  msgpack::object_handle handle;
  try {
    std::size_t offset = 0;
    handle = msgpack::unpack(reinterpret_cast<const char*>(data), size, offset, nullptr, nullptr, bounds);
    if (offset != size) throw std::runtime_error("trailing bytes");
  } catch (const msgpack::depth_size_overflow&) {
    throw ControlRequestError("the request is nested more than " + std::to_string(kMaxControlDepth) +
                              " levels deep");
  } catch (const msgpack::size_overflow&) {
    throw ControlRequestError("the request holds an array or map of more than " +
                              std::to_string(kMaxControlElements) + " elements");
  } catch (const std::exception& e) {
    throw ControlRequestError(std::string("the request is not msgpack: ") + e.what());
  }
  if (handle.get().type != msgpack::type::MAP) {
    throw ControlRequestError("the request must be a msgpack map like {\"cmd\": \"status\"}");
  }
  // The request is read like every other message; its errors are the control socket's own.
  std::optional<std::string> cmd;
  try {
    const detail::MapView v(handle.get(), "");
    if (const auto key = v.repeated_key()) {
      throw ControlRequestError("key '" + quote_text(*key) + "' appears more than once in the request");
    }
    cmd = v.optional_str("cmd");
  } catch (const ProtocolError& e) {
    throw ControlRequestError(e.detail());
  }
  if (!cmd) throw ControlRequestError("field 'cmd' is missing; commands: status, library, config, reload, shutdown");
  return ControlRequest{*cmd};
}

std::vector<std::uint8_t> encode_library_reply(const std::vector<ParameterInfo>& parameters,
                                               const std::vector<std::string>& labels,
                                               const std::vector<std::vector<double>>& values,
                                               const Eigen::MatrixXd& map, const std::string& method) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(5);
  pk.pack("ok");
  pk.pack(true);
  pk.pack("method");
  pk.pack(method);
  pk.pack("map_dims");
  pk.pack(static_cast<std::int64_t>(map.cols()));
  pk.pack("parameters");
  pk.pack_array(static_cast<std::uint32_t>(parameters.size()));
  for (const ParameterInfo& p : parameters) {
    pk.pack_map(3);
    pk.pack("name");
    pk.pack(p.name);
    pk.pack("categorical");
    pk.pack(p.categorical);
    pk.pack("categories");
    pk.pack(p.category_names);
  }
  pk.pack("spectra");
  pk.pack_array(static_cast<std::uint32_t>(map.rows()));
  for (Eigen::Index i = 0; i < map.rows(); ++i) {
    const auto row = static_cast<std::size_t>(i);
    pk.pack_map(3);
    pk.pack("label");
    pk.pack(row < labels.size() ? labels[row] : std::string());
    pk.pack("params");
    const ParamMap params = row < values.size() ? to_param_map(parameters, values[row]) : ParamMap{};
    pk.pack_map(static_cast<std::uint32_t>(params.size()));
    for (const auto& [name, v] : params) {
      pk.pack(name);
      detail::pack_value(pk, v);
    }
    pk.pack("map");
    pk.pack_array(static_cast<std::uint32_t>(map.cols()));
    for (Eigen::Index d = 0; d < map.cols(); ++d) pk.pack_double(map(i, d));
  }
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(buffer.data());
  return {bytes, bytes + buffer.size()};
}

LibraryReply decode_library_reply(const std::uint8_t* data, std::size_t size) {
  const auto handle = detail::unpack_frame(data, size);
  const detail::MapView v(handle.get(), "");
  if (!v.boolean("ok")) {
    const msgpack::object* error = v.find("error");
    const std::string reason = error != nullptr && error->type == msgpack::type::STR
                                   ? std::string(error->via.str.ptr, error->via.str.size)
                                   : std::string("no reason given");
    throw ControlReplyError("the daemon refused 'library': " + reason);
  }
  // The maps of an array field, each read with its path ("spectra[3]") by `each`.
  const auto maps = [](const detail::MapView& m, std::string_view key, auto&& each) {
    const msgpack::object& a = m.get(key);
    if (a.type != msgpack::type::ARRAY) m.wrong(key, a, "an array of maps");
    for (std::uint32_t i = 0; i < a.via.array.size; ++i) {
      each(detail::MapView(a.via.array.ptr[i], m.name(std::string(key) + "[" + std::to_string(i) + "]")));
    }
  };
  LibraryReply r;
  r.method = v.str("method");
  const auto dims = v.count("map_dims");
  maps(v, "parameters", [&](const detail::MapView& p) {
    ParameterInfo info;
    info.name = p.str("name");
    info.categorical = p.boolean("categorical");
    const msgpack::object& names = p.get("categories");
    if (names.type != msgpack::type::ARRAY) p.wrong("categories", names, "an array of strings");
    for (std::uint32_t i = 0; i < names.via.array.size; ++i) {
      const msgpack::object& c = names.via.array.ptr[i];
      if (c.type != msgpack::type::STR) p.wrong("categories", c, "an array of strings");
      info.category_names.emplace_back(c.via.str.ptr, c.via.str.size);
    }
    r.parameters.push_back(std::move(info));
  });
  maps(v, "spectra", [&](const detail::MapView& s) {
    LibraryReply::Spectrum spectrum;
    spectrum.label = s.str("label");
    spectrum.params = detail::read_params(s.map("params"));
    spectrum.map = detail::read_number_array(s, "map");
    if (spectrum.map.size() != dims) {
      throw ProtocolError(ErrorCode::kLengthMismatch, s.name("map"),
                          "field '" + s.name("map") + "' has " + std::to_string(spectrum.map.size()) +
                              " coordinates; map_dims is " + std::to_string(dims));
    }
    r.spectra.push_back(std::move(spectrum));
  });
  return r;
}

}  // namespace xasmap::protocol
