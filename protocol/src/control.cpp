#include "xasmap/protocol/control.hpp"

#include <msgpack.hpp>

#include "msgpack_detail.hpp"

namespace xasmap::protocol {

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

}  // namespace xasmap::protocol
