#pragma once
// The state and the text of `xasmap watch`: what the dashboard remembers of the daemon's output
// messages, and how it renders them, as plain lines or as a screen that fits a terminal of a given
// size. No sockets and no terminal I/O here, so that all of it can be unit tested.
//
// Widths are in terminal columns, counted as one per UTF-8 code point (wide characters are not
// accounted for). Text from the wire (ids, category names, error messages) is stripped of control
// characters before it is shown, so that a message cannot drive the terminal.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::service {

// ---- Text helpers ----------------------------------------------------------------------------

// `text` with control characters (C0, DEL and C1) replaced by '?'.
std::string sanitize(const std::string& text);
// Terminal columns of UTF-8 text: one per code point.
std::size_t display_width(const std::string& text);
// `text` cut to at most `width` columns, ending in '~' when something was cut.
std::string truncate_end(const std::string& text, std::size_t width);
// `text` cut to at most `width` columns by replacing its middle with '~' (keeps the distinctive
// tail of ids such as scan42-p0007).
std::string truncate_middle(const std::string& text, std::size_t width);

// A latency in microseconds as "45us", "1.2ms", "210ms" or "3.40s".
std::string format_latency_us(double us);
// An end-to-end latency in milliseconds ("1.2ms"), or "-" when absent.
std::string format_e2e_ms(std::optional<double> us);
// A duration in seconds as "42s", "3m04s", "1h02m" or "2d03h".
std::string format_duration_s(double s);
// A value with its uncertainty, rounded to the uncertainty's first significant digit (two when
// that digit is 1 or 2): "0.91+-0.05"; when that needs more than 4 significant digits of the
// value, the value gets 4 and the uncertainty one ("2.084+-2e-05"). `with_uncertainty` false
// gives the value alone, with the same rounding.
std::string format_with_uncertainty(double value, double uncertainty, bool with_uncertainty = true);
// A parameter value: integral categories as integers, text categories by name, otherwise "%.3g".
std::string format_param_value(const protocol::ParamValue& value);

// ---- Rows of the table -----------------------------------------------------------------------

// One parameter of an estimate, with its confidence (categorical) or uncertainty (continuous).
struct ParamCell {
  std::string name;
  std::string value;                 // continuous: rounded to the uncertainty's precision
  std::optional<double> confidence;  // categorical, in [0, 1]
  std::string uncertainty;           // continuous: formatted like `value`; empty otherwise
};

// What the dashboard keeps of an `estimate`; with a `mixture`, its mean valence is one more
// parameter, `valence`, after the estimate's own.
struct EstimateRow {
  std::string id;  // sanitized
  std::vector<ParamCell> params;  // in the message's order
  double novelty = 0;
  bool in_library = true;
  std::optional<double> end_to_end_us;
};
EstimateRow make_estimate_row(const protocol::EstimateMessage& m);

// What the dashboard keeps of an `estimate_map`: the share of judged pixels per value of every
// categorical parameter and the median of every continuous one.
struct MapRow {
  struct Share {
    std::string value;  // "2", or the category's name
    double fraction = 0;  // of the judged (not rejected) pixels
  };
  struct Categorical {
    std::string name;
    std::vector<Share> shares;  // by increasing value
  };
  struct Continuous {
    std::string name;
    std::optional<double> median;  // nullopt when no pixel was judged
  };
  std::string id;     // sanitized
  std::string shape;  // "64x64" for [rows, cols, n_energy], "100px" for [n_pixels, n_energy]
  std::vector<Categorical> categorical;
  std::vector<Continuous> continuous;
  std::uint64_t rejected_pixels = 0;
  std::optional<double> end_to_end_us;
};
MapRow make_map_row(const protocol::EstimateMapMessage& m);

// ---- Plain lines -----------------------------------------------------------------------------

// estimate s0001 charge=2 (98%) tendq=0.91+-0.05 novelty=0.8 e2e=1.2ms   ('*' after novelty
// when the spectrum lies outside the library)
std::string plain_line(const EstimateRow& row);
// estimate_map stack-1 64x64 charge: 2=50.0% 4=50.0% tendq median 1.45 rejected 0
std::string plain_line(const MapRow& row);
// error bad-x missing_field: required field 'energy' is missing   ('-' for a nil id)
std::string plain_line(const protocol::ErrorMessage& m);
// metrics rate=998.1/s p50=45us p99=210us received=.. published=.. rejected=.. dropped=.. queue=..
std::string plain_line(const protocol::MetricsMessage& m);
// malformed estimate: <what the decoder said>
std::string plain_malformed_line(const std::string& topic, const std::string& what);

// ---- The estimates table ---------------------------------------------------------------------

using TableEntry = std::variant<EstimateRow, MapRow>;

// Which columns the table shows and how wide the id may be. Layouts are tried from the fullest
// to the sparsest until one fits the terminal's width: first the end-to-end latency goes, then
// the id is cut to 16 and 12 columns, then uncertainties, confidences, the id to 8 columns,
// novelty, and last the parameters from the right (the first one stays).
struct TableLayout {
  std::size_t id_max = 24;
  bool end_to_end = true;
  bool uncertainty = true;
  bool confidence = true;
  bool novelty = true;
  std::size_t max_params = static_cast<std::size_t>(-1);
};

// The table's header line and one line per entry (in the given order), each at most `width`
// columns: the fullest layout that fits, then, when even the sparsest does not, cut lines.
std::vector<std::string> format_table(const std::vector<TableEntry>& entries, std::size_t width);

// ---- The dashboard's state -------------------------------------------------------------------

class WatchState {
 public:
  // Keeps the newest `keep_rows` estimates and maps for the table.
  explicit WatchState(std::size_t keep_rows);

  // Each returns the message's plain line. `now_s` is the wall clock at receipt.
  std::string add(const protocol::EstimateMessage& m);
  std::string add(const protocol::EstimateMapMessage& m);
  std::string add(const protocol::ErrorMessage& m);
  std::string add(const protocol::MetricsMessage& m, double now_s);
  std::string add_malformed(const std::string& topic, const std::string& what);

  std::uint64_t estimates() const { return estimates_; }
  std::uint64_t maps() const { return maps_; }
  std::uint64_t errors() const { return errors_; }
  std::uint64_t malformed() const { return malformed_; }
  // Estimates and maps missed, from gaps in `seq` (the daemon's PUB drops for slow subscribers).
  std::uint64_t missed() const { return missed_; }
  const std::map<std::string, std::uint64_t>& errors_by_code() const { return errors_by_code_; }
  const std::optional<std::string>& last_error() const { return last_error_; }
  const std::optional<std::string>& last_malformed() const { return last_malformed_; }
  const std::optional<protocol::MetricsMessage>& metrics() const { return metrics_; }
  // Newest first, at most keep_rows.
  const std::deque<TableEntry>& rows() const { return rows_; }

  // One line: "watch: 120 estimates, 1 map, 3 errors, 0 malformed, last rate 998.1/s".
  std::string summary() const;

  // The dashboard, at most `height` lines of at most `width` columns each. `rows_limit` caps the
  // table's rows (nullopt: as many as fit).
  struct ScreenInfo {
    std::string endpoint;
    double elapsed_s = 0;
    double now_s = 0;  // wall clock, for the age of the latest metrics
    std::optional<std::size_t> rows_limit;
  };
  std::vector<std::string> render(const ScreenInfo& info, std::size_t width, std::size_t height) const;

 private:
  void push_row(TableEntry entry);
  void note_seq(std::uint64_t seq);

  std::size_t keep_rows_;
  std::uint64_t estimates_ = 0, maps_ = 0, errors_ = 0, malformed_ = 0, missed_ = 0;
  std::uint64_t last_seq_ = 0;
  std::map<std::string, std::uint64_t> errors_by_code_;
  std::optional<std::string> last_error_, last_malformed_;
  std::optional<protocol::MetricsMessage> metrics_;
  double metrics_received_s_ = 0;
  std::deque<TableEntry> rows_;
};

}  // namespace xasmap::service
