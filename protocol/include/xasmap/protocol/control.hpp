#pragma once
// Replies of the control socket that carry the model (docs/protocol.md, section 8).

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "xasmap/core/library.hpp"

namespace xasmap::protocol {

// The `library` reply: {ok: true, method, map_dims, parameters: [{name, categorical, categories}],
// spectra: [{label, params, map}]}, one entry per row of `map` (library size x map dims).
std::vector<std::uint8_t> encode_library_reply(const std::vector<ParameterInfo>& parameters,
                                               const std::vector<std::string>& labels,
                                               const std::vector<std::vector<double>>& values,
                                               const Eigen::MatrixXd& map, const std::string& method);

}  // namespace xasmap::protocol
