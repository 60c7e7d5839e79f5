#pragma once
// A small, strict command-line parser: --name VALUE, --name=VALUE, boolean --name, positionals.
// Unknown options are errors that suggest the closest known option.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xasmap/core/error.hpp"

namespace xasmap::service {

class UsageError : public xasmap::Error {
 public:
  using xasmap::Error::Error;
};

struct OptionSpec {
  std::string name;       // without the leading "--"
  bool takes_value;
  std::string value_name; // for help, e.g. FILE
  std::string help;
};

class CliArgs {
 public:
  // Parses argv[first..argc). Throws UsageError on an unknown option or a missing value.
  CliArgs(int argc, const char* const* argv, int first, const std::vector<OptionSpec>& specs);

  bool has(const std::string& name) const { return values_.contains(name); }
  std::optional<std::string> value(const std::string& name) const;
  double number(const std::string& name, double fallback) const;
  long long integer(const std::string& name, long long fallback) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positionals_;
};

// "  --name VALUE   help" lines for a usage message.
std::string describe_options(const std::vector<OptionSpec>& specs);

// The same options as a roff (man(7)) tagged list: ".TP", "\fB\-\-name\fR \fIVALUE\fR", help.
std::string describe_options_roff(const std::vector<OptionSpec>& specs);

// Text made safe for roff: hyphens as \-, backslashes as \e, a leading '.' or '\'' guarded by \&.
std::string roff_escape(std::string_view text);

}  // namespace xasmap::service
