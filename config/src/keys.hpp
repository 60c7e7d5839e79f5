#pragma once
// The table of configuration keys: each key's path, the Config member it fills, the values it
// accepts, and its comment in deploy/xasmapd.yaml. Parsing (config.cpp, read_document), the range
// checks of Config::validate(), to_yaml(), documented_yaml(), key_table() and differences() all
// walk this one table, so a key cannot be read, checked, written or documented differently.

#include <array>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "xasmap/config/config.hpp"

namespace xasmap::config::detail {

// The member of Config a key fills.
template <class T>
using Member = T& (*)(Config&);

// An enum, read and written as one of its spellings.
struct Choice {
  std::vector<std::string_view> names;
  std::function<std::size_t(const Config&)> get;  // index of the current value's spelling
  std::function<void(Config&, std::size_t)> set;
};

using Field = std::variant<Member<double>, Member<int>, Member<long long>, Member<unsigned long>, Member<bool>,
                           Member<std::string>, Member<std::filesystem::path>, Member<Sweep>,
                           Member<std::optional<double>>, Member<std::vector<std::string>>,
                           Member<std::map<std::string, double>>, Choice>;

// The numbers a key accepts: [lo, hi], (0, hi], or any. A sweep's bounds hold for every value it
// lists (or its start and stop), a number map's for each value.
struct Bounds {
  enum Kind { kAny, kClosed, kPositive } kind = kAny;
  double lo = 0, hi = 0;
};

struct Entry {
  std::string_view path;        // "library.grid.step_ev"
  std::optional<Field> field;   // empty: a section
  Bounds bounds;
  std::string_view doc;         // its comment; may be empty (the key shares the comment above)
  bool blank_before = false;    // sections: a blank line before it in documented_yaml()
  bool fitted = false;          // a setting a fitted model fixes (service::adopt_model_settings)

  std::string_view name() const;    // the last component: "step_ev"
  std::string_view parent() const;  // "library.grid"; "" for a top-level section
  int depth() const;                // dots in the path
};

// Every section and key, in the order of the YAML file.
const std::vector<Entry>& entries();

// The comment at the head of deploy/xasmapd.yaml.
std::string_view file_header();

// A key's value as inline YAML (a number map as a flow map).
std::string value_text(const Entry& e, const Config& c);

// What a key accepts, e.g. "an integer in [3, 100000]".
std::string accepts(const Entry& e);

// The shortest decimal that reads back as exactly `v`, with ".0" on integral values ("1.0", not
// "1"; 1e-07 stays as it is).
std::string number_text(double v);

// A string as a YAML scalar, quoted when it must be.
std::string scalar_text(const std::string& s);

// A YAML spelling for each value of an enum (shared with the spellings' to_string).
template <class E>
struct Spelling {
  E value;
  std::string_view name;
};

}  // namespace xasmap::config::detail
