#include <catch2/catch.hpp>

#include "xasmap/core/text.hpp"

TEST_CASE("edit_distance counts insertions, deletions and substitutions", "[core][text]") {
  CHECK(xasmap::edit_distance("", "") == 0);
  CHECK(xasmap::edit_distance("landmark", "landmarks") == 1);
  CHECK(xasmap::edit_distance("lmsd", "lmds") == 2);
  CHECK(xasmap::edit_distance("kitten", "sitting") == 3);
  CHECK(xasmap::edit_distance("abc", "") == 3);
}

TEST_CASE("closest_match suggests only plausible typos", "[core][text]") {
  const std::vector<std::string> keys{"landmarks", "map_dims", "estimate_dims", "method"};
  CHECK(xasmap::closest_match("landmark", keys) == "landmarks");
  CHECK(xasmap::closest_match("metod", keys) == "method");
  CHECK(xasmap::closest_match("estimate_dim", keys) == "estimate_dims");
  CHECK(xasmap::closest_match("zzzzzzzzz", keys).empty());
  CHECK(xasmap::closest_match("anything", {}).empty());
}
