#pragma once
// The one exception a bad configuration raises. what() is one line, ready for a log or a terminal:
//   FILE:LINE:COLUMN: KEY.PATH: found WHAT, expected WHAT
// LINE and COLUMN are 1-based; both are 0 (and left out of what()) when the problem has no place in
// a file, as for a file that cannot be read or a command-line override.

#include <string>

#include "xasmap/core/error.hpp"

namespace xasmap::config {

class ConfigError : public xasmap::Error {
 public:
  ConfigError(std::string file, int line, int column, std::string key_path, std::string found,
              std::string expected);

  const std::string& file() const { return file_; }
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& key_path() const { return key_path_; }
  const std::string& found() const { return found_; }
  const std::string& expected() const { return expected_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string key_path_;
  std::string found_;
  std::string expected_;
};

}  // namespace xasmap::config
