#include "cli_args.hpp"

#include <charconv>
#include <cmath>

#include "xasmap/core/text.hpp"

namespace xasmap::service {

CliArgs::CliArgs(int argc, const char* const* argv, int first,
                 const std::vector<OptionSpec>& specs) {
  std::vector<std::string> names;
  for (const auto& s : specs) names.push_back("--" + s.name);
  bool options_done = false;
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (options_done || arg.size() < 2 || arg.rfind("--", 0) != 0) {
      if (arg == "--") {
        options_done = true;
        continue;
      }
      if (!options_done && arg.size() > 1 && arg[0] == '-' && arg != "-") {
        throw UsageError("unknown option '" + arg + "' (options are spelled --name)");
      }
      positionals_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    const OptionSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (!spec) {
      std::string message = "unknown option '--" + name + "'";
      if (const std::string near = closest_match("--" + name, names); !near.empty()) {
        message += " (did you mean '" + near + "'?)";
      }
      throw UsageError(message);
    }
    if (spec->takes_value) {
      if (inline_value) {
        values_[name] = *inline_value;
      } else if (i + 1 < argc) {
        values_[name] = argv[++i];
      } else {
        throw UsageError("option '--" + name + "' needs a value " + spec->value_name);
      }
    } else {
      if (inline_value) throw UsageError("option '--" + name + "' takes no value");
      values_[name] = "";
    }
  }
}

std::optional<std::string> CliArgs::value(const std::string& name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  return std::nullopt;
}

double CliArgs::number(const std::string& name, double fallback) const {
  const auto v = value(name);
  if (!v) return fallback;
  double out = 0.0;
  const auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || ptr != v->data() + v->size() || v->empty() || !std::isfinite(out)) {
    throw UsageError("option '--" + name + "' needs a finite number, got '" + *v + "'");
  }
  return out;
}

long long CliArgs::integer(const std::string& name, long long fallback) const {
  const auto v = value(name);
  if (!v) return fallback;
  long long out = 0;
  const auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || ptr != v->data() + v->size() || v->empty()) {
    throw UsageError("option '--" + name + "' needs an integer, got '" + *v + "'");
  }
  return out;
}

std::string describe_options(const std::vector<OptionSpec>& specs) {
  std::string out;
  for (const auto& s : specs) {
    std::string head = "  --" + s.name + (s.takes_value ? " " + s.value_name : "");
    if (head.size() < 26) head.resize(26, ' ');
    else head += "  ";
    out += head + s.help + "\n";
  }
  return out;
}

std::string roff_escape(std::string_view text) {
  std::string out;
  bool line_start = true;
  for (const char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else if (line_start && (c == '.' || c == '\'')) {
      out += "\\&";
      out += c;
    } else {
      out += c;
    }
    line_start = c == '\n';
  }
  return out;
}

std::string describe_options_roff(const std::vector<OptionSpec>& specs) {
  std::string out;
  for (const auto& s : specs) {
    out += ".TP\n\\fB" + roff_escape("--" + s.name) + "\\fR";
    if (s.takes_value) out += " \\fI" + roff_escape(s.value_name) + "\\fR";
    out += "\n" + roff_escape(s.help) + "\n";
  }
  return out;
}

}  // namespace xasmap::service
