#pragma once
// Typed, strict reading of one YAML map with key paths and marks for every error.

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <string>
#include <vector>

#include "xasmap/config/config.hpp"
#include "xasmap/core/text.hpp"

namespace xasmap::config::detail {

// Where a YAML value stood: 1-based line and column; 0 when unknown.
struct Place {
  int line = 0;
  int column = 0;
};

// State shared by all readers of one document.
struct Context {
  std::string file;                      // as named in messages
  std::filesystem::path base_dir;        // relative paths resolve against it
  std::map<std::string, Place> places;   // key path -> where its value stood

  [[noreturn]] void fail(Place place, const std::string& key_path, const std::string& found,
                         const std::string& expected) const;
  // Place of a key path, or of its nearest ancestor that was written in the file.
  Place place_of(std::string key_path) const;
};

Place place_of(const YAML::Node& node);
Place place_of(const YAML::Mark& mark);

// What a node holds, for "found ..." in messages.
std::string describe(const YAML::Node& node);

// Reads one YAML map. Each accessor marks its key as known and leaves `out` untouched when the key
// is absent. finish() rejects unknown and repeated keys, suggesting the closest known key.
class MapReader {
 public:
  MapReader(Context& ctx, const YAML::Node& node, std::string path);

  void number(const std::string& key, double& out);
  void optional_number(const std::string& key, std::optional<double>& out);
  void integer(const std::string& key, int& out);
  void integer(const std::string& key, long long& out);
  void integer(const std::string& key, unsigned& out);
  void integer(const std::string& key, unsigned long& out);
  void boolean(const std::string& key, bool& out);
  void string(const std::string& key, std::string& out);
  void path(const std::string& key, std::filesystem::path& out);
  void string_list(const std::string& key, std::vector<std::string>& out);
  void number_map(const std::string& key, std::map<std::string, double>& out);
  void sweep(const std::string& key, Sweep& out);

  // One of `names` (an enum's spellings): its index, or nothing when the key is absent. Another
  // word fails, suggesting the closest name.
  std::optional<std::size_t> word(const std::string& key, std::span<const std::string_view> names);

  // A nested map; an absent key gives an empty reader so that defaults stay.
  MapReader section(const std::string& key);
  void finish();

  const std::string& path() const { return path_; }

 private:
  YAML::Node take(const std::string& key);
  std::string child_path(const std::string& key) const;
  std::string scalar(const std::string& key, const YAML::Node& value, const std::string& expected);
  double number_value(const std::string& path, const YAML::Node& value);

  Context& ctx_;
  YAML::Node node_;
  std::string path_;
  std::vector<std::string> known_;
};

}  // namespace xasmap::config::detail
