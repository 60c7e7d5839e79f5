#include "yaml_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "xasmap/core/text.hpp"

namespace xasmap::config::detail {

void Context::fail(Place place, const std::string& key_path, const std::string& found,
                   const std::string& expected) const {
  throw ConfigError(file, place.line, place.column, key_path, found, expected);
}

Place Context::place_of(std::string key_path) const {
  while (true) {
    if (auto it = places.find(key_path); it != places.end()) return it->second;
    const auto dot = key_path.rfind('.');
    if (dot == std::string::npos) break;
    key_path.resize(dot);
  }
  if (auto it = places.find(""); it != places.end()) return it->second;
  return {};
}

Place place_of(const YAML::Mark& mark) {
  if (mark.is_null()) return {};
  return {mark.line + 1, mark.column + 1};
}

Place place_of(const YAML::Node& node) { return place_of(node.Mark()); }

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

namespace {

// A YAML 1.2 core-schema plain scalar that means null.
bool is_plain_null(const YAML::Node& node) {
  return node.IsNull() || (node.IsScalar() && node.Tag() == "?" &&
                           (node.Scalar() == "~" || node.Scalar() == "null" ||
                            node.Scalar() == "Null" || node.Scalar() == "NULL"));
}

}  // namespace

MapReader::MapReader(Context& ctx, const YAML::Node& node, std::string path)
    : ctx_(ctx), node_(node), path_(std::move(path)) {
  if (node_ && !node_.IsNull() && !node_.IsMap()) {
    ctx_.fail(place_of(node_), path_.empty() ? "(document)" : path_, describe(node_),
              path_.empty() ? "a map of sections" : "a map of keys");
  }
  if (node_ && node_.IsMap()) ctx_.places.emplace(path_, place_of(node_));
}

std::string MapReader::child_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

YAML::Node MapReader::take(const std::string& key) {
  known_.push_back(key);
  if (!node_ || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  // Look the key up by iterating, which keeps the const node and its marks intact.
  for (const auto& kv : node_) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) {
      ctx_.places[child_path(key)] = place_of(kv.second.IsNull() ? kv.first : kv.second);
      return kv.second;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string MapReader::scalar(const std::string& key, const YAML::Node& value,
                              const std::string& expected) {
  if (!value.IsScalar()) ctx_.fail(place_of(value), child_path(key), describe(value), expected);
  return value.Scalar();
}

double MapReader::number_value(const std::string& path, const YAML::Node& value) {
  const std::string expected = "a number";
  if (!value.IsScalar() || value.Tag() != "?") {
    // A quoted "1.5" is a string in YAML; say so rather than guess.
    const std::string found =
        value.IsScalar() ? "the quoted string '" + value.Scalar() + "'" : describe(value);
    ctx_.fail(place_of(value), path, found, expected);
  }
  const std::string& text = value.Scalar();
  double v = 0.0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  if (first != last && *first == '+') ++first;
  const auto [ptr, ec] = std::from_chars(first, last, v);
  if (ec != std::errc() || ptr != last || !std::isfinite(v)) {
    ctx_.fail(place_of(value), path, describe(value), "a finite number");
  }
  return v;
}

void MapReader::number(const std::string& key, double& out) {
  const YAML::Node value = take(key);
  if (value) out = number_value(child_path(key), value);
}

void MapReader::optional_number(const std::string& key, std::optional<double>& out) {
  const YAML::Node value = take(key);
  if (!value) return;
  if (is_plain_null(value)) {
    out.reset();
    return;
  }
  out = number_value(child_path(key), value);
}

namespace {

template <class T>
T parse_integer(Context& ctx, const std::string& path, const YAML::Node& value) {
  const std::string expected = "an integer";
  if (!value.IsScalar() || value.Tag() != "?") {
    ctx.fail(place_of(value), path, describe(value), expected);
  }
  const std::string& text = value.Scalar();
  long long v = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  if (first != last && *first == '+') ++first;
  const auto [ptr, ec] = std::from_chars(first, last, v);
  if (ec != std::errc() || ptr != last || first == last) {
    ctx.fail(place_of(value), path, describe(value), expected);
  }
  if (v < static_cast<long long>(std::numeric_limits<T>::min()) ||
      static_cast<unsigned long long>(std::max(v, 0LL)) >
          static_cast<unsigned long long>(std::numeric_limits<T>::max())) {
    ctx.fail(place_of(value), path, describe(value),
             "an integer in [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
                 std::to_string(std::numeric_limits<T>::max()) + "]");
  }
  return static_cast<T>(v);
}

}  // namespace

void MapReader::integer(const std::string& key, int& out) {
  if (const YAML::Node value = take(key)) out = parse_integer<int>(ctx_, child_path(key), value);
}

void MapReader::integer(const std::string& key, long long& out) {
  if (const YAML::Node value = take(key)) {
    out = parse_integer<long long>(ctx_, child_path(key), value);
  }
}

void MapReader::integer(const std::string& key, unsigned& out) {
  if (const YAML::Node value = take(key)) {
    out = parse_integer<unsigned>(ctx_, child_path(key), value);
  }
}

void MapReader::integer(const std::string& key, unsigned long& out) {
  if (const YAML::Node value = take(key)) {
    out = parse_integer<unsigned long>(ctx_, child_path(key), value);
  }
}

std::optional<std::size_t> MapReader::word(const std::string& key, std::span<const std::string_view> names) {
  const YAML::Node value = take(key);
  if (!value) return std::nullopt;
  std::string expected = "one of ";
  for (std::size_t i = 0; i < names.size(); ++i) expected += (i ? ", " : "") + std::string(names[i]);
  const std::string text = scalar(key, value, expected);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (text == names[i]) return i;
  }
  const std::vector<std::string> candidates(names.begin(), names.end());
  if (const std::string near = closest_match(text, candidates); !near.empty()) {
    expected += " (did you mean '" + near + "'?)";
  }
  ctx_.fail(place_of(value), child_path(key), "'" + text + "'", expected);
}

void MapReader::boolean(const std::string& key, bool& out) {
  const YAML::Node value = take(key);
  if (!value) return;
  const std::string expected = "true or false";
  const std::string word = scalar(key, value, expected);
  if (value.Tag() == "?" && (word == "true" || word == "True" || word == "TRUE")) {
    out = true;
  } else if (value.Tag() == "?" && (word == "false" || word == "False" || word == "FALSE")) {
    out = false;
  } else {
    ctx_.fail(place_of(value), child_path(key), describe(value), expected);
  }
}

void MapReader::string(const std::string& key, std::string& out) {
  const YAML::Node value = take(key);
  if (!value) return;
  if (is_plain_null(value)) {
    out.clear();
    return;
  }
  out = scalar(key, value, "a string");
}

void MapReader::path(const std::string& key, std::filesystem::path& out) {
  const YAML::Node value = take(key);
  if (!value) return;
  if (is_plain_null(value)) {
    out.clear();
    return;
  }
  const std::string text = scalar(key, value, "a path");
  if (text.empty()) {
    out.clear();
    return;
  }
  std::filesystem::path p(text);
  out = (p.is_relative() && !ctx_.base_dir.empty()) ? (ctx_.base_dir / p).lexically_normal() : p;
}

void MapReader::string_list(const std::string& key, std::vector<std::string>& out) {
  const YAML::Node value = take(key);
  if (!value) return;
  const std::string expected = "a list of strings";
  if (!value.IsSequence()) ctx_.fail(place_of(value), child_path(key), describe(value), expected);
  std::vector<std::string> items;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const YAML::Node item = value[i];
    if (!item.IsScalar()) {
      ctx_.fail(place_of(item), child_path(key) + "[" + std::to_string(i) + "]", describe(item),
                "a string");
    }
    ctx_.places[child_path(key) + "[" + std::to_string(i) + "]"] = place_of(item);
    items.push_back(item.Scalar());
  }
  out = std::move(items);
}

void MapReader::number_map(const std::string& key, std::map<std::string, double>& out) {
  const YAML::Node value = take(key);
  if (!value) return;
  if (!value.IsMap()) {
    ctx_.fail(place_of(value), child_path(key), describe(value), "a map of name: number");
  }
  std::map<std::string, double> items;
  for (const auto& kv : value) {
    const std::string name = kv.first.as<std::string>();
    const std::string item_path = child_path(key) + "." + name;
    if (items.contains(name)) {
      ctx_.fail(place_of(kv.first), item_path, "'" + name + "' a second time", "each key once");
    }
    ctx_.places[item_path] = place_of(kv.second);
    items[name] = number_value(item_path, kv.second);
  }
  out = std::move(items);
}

void MapReader::sweep(const std::string& key, Sweep& out) {
  const YAML::Node value = take(key);
  if (!value) return;
  const std::string path = child_path(key);
  if (value.IsScalar()) {
    out = Sweep::single(number_value(path, value));
  } else if (value.IsSequence()) {
    Sweep s;
    for (std::size_t i = 0; i < value.size(); ++i) {
      s.list.push_back(number_value(path + "[" + std::to_string(i) + "]", value[i]));
    }
    if (s.list.empty()) ctx_.fail(place_of(value), path, "an empty list", "at least one value");
    out = s;
  } else if (value.IsMap()) {
    Sweep s = Sweep::range(0, 0, 0);
    MapReader r(ctx_, value, path);
    for (const char* part : {"start", "stop", "step"}) {
      bool present = false;
      for (const auto& kv : value) present = present || kv.first.Scalar() == part;
      if (!present) ctx_.fail(place_of(value), path + "." + part, "nothing", "a number");
    }
    r.number("start", s.start);
    r.number("stop", s.stop);
    r.number("step", s.step);
    r.finish();
    out = s;
  } else {
    ctx_.fail(place_of(value), path, describe(value),
              "a number, a list of numbers, or {start, stop, step}");
  }
}

MapReader MapReader::section(const std::string& key) {
  const YAML::Node value = take(key);
  return MapReader(ctx_, value ? value : YAML::Node(YAML::NodeType::Undefined), child_path(key));
}

void MapReader::finish() {
  if (!node_ || !node_.IsMap()) return;
  std::set<std::string> seen;
  for (const auto& kv : node_) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : describe(kv.first);
    const std::string path = child_path(key);
    if (!seen.insert(key).second) {
      ctx_.fail(place_of(kv.first), path, "'" + key + "' a second time", "each key once");
    }
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    std::vector<std::string> names(known_.begin(), known_.end());
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::string expected;
    if (const std::string near = closest_match(key, names); !near.empty()) {
      expected = "a known key (did you mean '" + near + "'?)";
    } else {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      expected = "one of the known keys: " + list;
    }
    ctx_.fail(place_of(kv.first), path, "unknown key '" + key + "'", expected);
  }
}

}  // namespace xasmap::config::detail
