#pragma once
// Bounds for unpacking a msgpack frame whose schema sets none of its own (the output messages,
// control replies): what a frame of `size` bytes can honestly hold.

#include <msgpack.hpp>

#include <algorithm>
#include <cstddef>

namespace xasmap::protocol {

// Checked on each header before anything is allocated: an array element takes at least a byte on
// the wire and a map entry two, so a header that declares more cannot be honest (without these
// bounds, the 6 bytes 0xdd 0xdd 0xdd 0xdd 0xdd made msgpack allocate 3.7 billion elements; found
// by tests/fuzz). Nesting stops at 64 levels.
inline msgpack::unpack_limit frame_limits(std::size_t size) {
  const auto n = std::min<std::size_t>(size, 0xffffffffu);
  return msgpack::unpack_limit(n, n / 2, n, n, n, 64);
}

}  // namespace xasmap::protocol
