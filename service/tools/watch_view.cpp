#include "watch_view.hpp"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <utility>

namespace xasmap::service {

namespace {

// printf into a std::string (the formats here are short and fixed).
[[gnu::format(printf, 1, 2)]] std::string printf_string(const char* format, ...) {
  char buffer[128];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  if (n < 0) return "?";
  return std::string(buffer, std::min(static_cast<std::size_t>(n), sizeof buffer - 1));
}

// An id as shown: sanitized, and "" made visible.
std::string display_id(const std::string& id) { return id.empty() ? "\"\"" : sanitize(id); }

// A number without needless digits: integral values as integers, others as "%.3g".
std::string format_number(double v) {
  if (std::isfinite(v) && v == std::round(v) && std::fabs(v) < 1e15) {
    return printf_string("%lld", static_cast<long long>(v));
  }
  return printf_string("%.3g", v);
}

std::string format_percent(double fraction) { return printf_string("%.0f%%", fraction * 100.0); }

std::string format_novelty(double novelty, bool in_library) {
  return printf_string("%.1f", novelty) + (in_library ? "" : "*");
}

std::string count_noun(std::uint64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// "-0.000" (a small negative value, rounded) as "0.000".
std::string without_negative_zero(const std::string& number) {
  const bool zero = number.find_first_not_of("-0.") == std::string::npos;
  return zero && !number.empty() && number.front() == '-' ? number.substr(1) : number;
}

// The value and uncertainty strings at the uncertainty's precision.
std::pair<std::string, std::string> rounded_pair(double value, double uncertainty) {
  if (!(uncertainty > 0) || !std::isfinite(uncertainty) || !std::isfinite(value)) {
    return {printf_string("%.3g", value), printf_string("%.2g", uncertainty)};
  }
  const double exponent = std::floor(std::log10(uncertainty));
  const double leading = uncertainty / std::pow(10.0, exponent);
  const int digits = static_cast<int>(leading < 3.0 ? 1.0 - exponent : -exponent);
  const int decimals = std::clamp(digits, 0, 8);
  // An uncertainty far below the value (a near-exact library match) would print many digits: the
  // value keeps 4 significant digits and the uncertainty one, in %g form.
  const int value_decimals =
      value == 0 ? decimals : std::max(0, 3 - static_cast<int>(std::floor(std::log10(std::fabs(value)))));
  if (value_decimals < decimals) {
    return {without_negative_zero(printf_string("%.*f", value_decimals, value)), printf_string("%.1g", uncertainty)};
  }
  return {without_negative_zero(printf_string("%.*f", decimals, value)),
          printf_string("%.*f", decimals, uncertainty)};
}

// Items joined by two spaces, as many whole items as fit `width` (the first one cut if need be).
std::string join_fitting(const std::vector<std::string>& items, std::size_t width) {
  std::string line;
  for (const std::string& item : items) {
    const std::string candidate = line.empty() ? item : line + "  " + item;
    if (display_width(candidate) <= width) {
      line = candidate;
    } else {
      if (line.empty()) line = truncate_end(item, width);
      break;
    }
  }
  return line;
}

std::string pad_right(const std::string& text, std::size_t width) {
  const std::size_t w = display_width(text);
  return w >= width ? text : text + std::string(width - w, ' ');
}

std::string pad_left(const std::string& text, std::size_t width) {
  const std::size_t w = display_width(text);
  return w >= width ? text : std::string(width - w, ' ') + text;
}

// A parameter cell as shown in the given layout.
std::string cell_text(const ParamCell& cell, bool confidence, bool uncertainty) {
  std::string text = cell.value;
  if (confidence && cell.confidence) text += " (" + format_percent(*cell.confidence) + ")";
  if (uncertainty && !cell.uncertainty.empty()) text += "+-" + cell.uncertainty;
  return text;
}

// The part of a map's line after its id: "64x64 charge: 2=50.0% 4=50.0% tendq median 1.45
// rejected 0"; `compact` (for the table) gives "64x64 charge 2=50% 4=50% tendq median 1.45 ...".
std::string map_details(const MapRow& row, bool compact = false) {
  std::string text = row.shape;
  for (const auto& c : row.categorical) {
    text += " " + c.name + (compact ? "" : ":");
    if (c.shares.empty()) text += " -";
    for (const auto& s : c.shares) {
      text += " " + s.value + "=" + printf_string(compact ? "%.0f%%" : "%.1f%%", s.fraction * 100.0);
    }
  }
  for (const auto& c : row.continuous) {
    text += " " + c.name + " median " + (c.median ? printf_string("%.3g", *c.median) : std::string("-"));
  }
  text += " rejected " + std::to_string(row.rejected_pixels);
  return text;
}

// An error's text after its id: the code, then the message without the code in front (messages
// of the decoding checks start with it, the others do not).
std::string error_details(const protocol::ErrorMessage& m) {
  const std::string code(protocol::to_string(m.code));
  std::string message = sanitize(m.message);
  if (message.rfind(code + ": ", 0) == 0) message.erase(0, code.size() + 2);
  return code + ": " + message;
}

// The parameter names of the estimates, in order of first appearance.
std::vector<std::string> param_names(const std::vector<TableEntry>& entries) {
  std::vector<std::string> names;
  for (const auto& entry : entries) {
    if (const auto* row = std::get_if<EstimateRow>(&entry)) {
      for (const auto& cell : row->params) {
        if (std::find(names.begin(), names.end(), cell.name) == names.end()) names.push_back(cell.name);
      }
    }
  }
  return names;
}

const std::string& entry_id(const TableEntry& entry) {
  return std::visit([](const auto& row) -> const std::string& { return row.id; }, entry);
}

// The table's cells in `layout`: row 0 is the header, then one row per entry; a map's row has the
// id and its details only.
struct Grid {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> widths;  // per column
  std::size_t total = 0;            // columns of a full-width line
};

Grid build_grid(const std::vector<TableEntry>& entries, const TableLayout& layout) {
  std::vector<std::string> names = param_names(entries);
  if (names.size() > layout.max_params) names.resize(layout.max_params);

  Grid grid;
  std::vector<std::string> header = {"id"};
  header.insert(header.end(), names.begin(), names.end());
  if (layout.novelty) header.push_back("novelty");
  if (layout.end_to_end) header.push_back("e2e");
  grid.rows.push_back(header);

  for (const auto& entry : entries) {
    std::vector<std::string> cells = {entry_id(entry)};
    if (const auto* row = std::get_if<EstimateRow>(&entry)) {
      for (const auto& name : names) {
        const auto it = std::find_if(row->params.begin(), row->params.end(),
                                     [&](const ParamCell& c) { return c.name == name; });
        cells.push_back(it == row->params.end() ? "-" : cell_text(*it, layout.confidence, layout.uncertainty));
      }
      // A space where others have '*' keeps the decimal points aligned.
      if (layout.novelty) cells.push_back(format_novelty(row->novelty, row->in_library) + (row->in_library ? " " : ""));
      if (layout.end_to_end) cells.push_back(format_e2e_ms(row->end_to_end_us));
    }
    grid.rows.push_back(cells);
  }

  grid.widths.assign(header.size(), 0);
  for (const auto& cells : grid.rows) {
    if (cells.size() != header.size()) continue;  // maps do not size the columns but the id's
    for (std::size_t c = 0; c < cells.size(); ++c) {
      grid.widths[c] = std::max(grid.widths[c], display_width(cells[c]));
    }
  }
  for (const auto& entry : entries) {
    grid.widths[0] = std::max(grid.widths[0], display_width(entry_id(entry)));
  }
  grid.widths[0] = std::min(grid.widths[0], layout.id_max);
  for (const std::size_t w : grid.widths) grid.total += w;
  grid.total += 2 * (grid.widths.size() - 1);
  return grid;
}

std::vector<TableLayout> layouts_fullest_first(std::size_t n_params) {
  std::vector<TableLayout> layouts;
  TableLayout l;
  layouts.push_back(l);
  l.end_to_end = false;
  layouts.push_back(l);
  l.id_max = 16;
  layouts.push_back(l);
  l.id_max = 12;
  layouts.push_back(l);
  l.uncertainty = false;
  layouts.push_back(l);
  l.confidence = false;
  layouts.push_back(l);
  l.id_max = 8;
  layouts.push_back(l);
  l.novelty = false;
  layouts.push_back(l);
  for (std::size_t k = n_params; k-- > 1;) {
    l.max_params = k;
    layouts.push_back(l);
  }
  return layouts;
}

}  // namespace

// ---- Text helpers ----------------------------------------------------------------------------

std::string sanitize(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const bool c0_or_del = byte < 0x20 || byte == 0x7f;
    // C1 controls U+0080..U+009F are 0xC2 0x80..0x9F in UTF-8; some terminals obey them.
    const bool c1 = byte == 0xc2 && i + 1 < text.size() &&
                    static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9f;
    if (c1) ++i;
    out += (c0_or_del || c1) ? '?' : text[i];
  }
  return out;
}

std::size_t display_width(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  }));
}

namespace {
// The byte offset where code point number `n` starts (text.size() when there are fewer).
std::size_t offset_of_code_point(const std::string& text, std::size_t n) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) {
      if (seen == n) return i;
      ++seen;
    }
  }
  return text.size();
}
}  // namespace

std::string truncate_end(const std::string& text, std::size_t width) {
  if (display_width(text) <= width) return text;
  if (width == 0) return "";
  return text.substr(0, offset_of_code_point(text, width - 1)) + "~";
}

std::string truncate_middle(const std::string& text, std::size_t width) {
  const std::size_t w = display_width(text);
  if (w <= width) return text;
  if (width <= 2) return truncate_end(text, width);
  const std::size_t head = (width - 1) / 2;
  const std::size_t tail = width - 1 - head;
  return text.substr(0, offset_of_code_point(text, head)) + "~" +
         text.substr(offset_of_code_point(text, w - tail));
}

std::string format_latency_us(double us) {
  if (!std::isfinite(us)) return "-";
  const double a = std::fabs(us);
  if (a < 1e3) return printf_string("%.0fus", us);
  if (a < 1e5) return printf_string("%.1fms", us / 1e3);
  if (a < 1e6) return printf_string("%.0fms", us / 1e3);
  return printf_string("%.2fs", us / 1e6);
}

std::string format_e2e_ms(std::optional<double> us) {
  if (!us || !std::isfinite(*us)) return "-";
  const double ms = *us / 1e3;
  return std::fabs(ms) < 100 ? printf_string("%.1fms", ms) : printf_string("%.0fms", ms);
}

std::string format_duration_s(double s) {
  if (!std::isfinite(s) || s < 0) return "-";
  if (s < 10) return printf_string("%.1fs", s);
  const auto t = static_cast<long long>(s);
  if (t < 60) return printf_string("%llds", t);
  if (t < 3600) return printf_string("%lldm%02llds", t / 60, t % 60);
  if (t < 86400) return printf_string("%lldh%02lldm", t / 3600, (t % 3600) / 60);
  return printf_string("%lldd%02lldh", t / 86400, (t % 86400) / 3600);
}

std::string format_with_uncertainty(double value, double uncertainty, bool with_uncertainty) {
  const auto [v, u] = rounded_pair(value, uncertainty);
  return with_uncertainty ? v + "+-" + u : v;
}

std::string format_param_value(const protocol::ParamValue& value) {
  if (!value.text.empty()) return sanitize(value.text);
  if (value.integer) return printf_string("%lld", static_cast<long long>(std::llround(value.number)));
  return printf_string("%.3g", value.number);
}

// ---- Rows ------------------------------------------------------------------------------------

EstimateRow make_estimate_row(const protocol::EstimateMessage& m) {
  EstimateRow row;
  row.id = display_id(m.id);
  for (const auto& [name, value] : m.params) {
    ParamCell cell;
    cell.name = sanitize(name);
    cell.value = format_param_value(value);
    for (const auto& [n, c] : m.confidence) {
      if (n == name) cell.confidence = c;
    }
    for (const auto& [n, u] : m.uncertainty) {
      if (n == name && value.text.empty()) std::tie(cell.value, cell.uncertainty) = rounded_pair(value.number, u);
    }
    row.params.push_back(cell);
  }
  if (m.mixture) {  // estimation.mixture: auto; the mean valence as one more column
    ParamCell cell;
    cell.name = "valence";
    std::tie(cell.value, cell.uncertainty) = rounded_pair(m.mixture->mean_valence, m.mixture->mean_valence_sd);
    row.params.push_back(cell);
  }
  row.novelty = m.novelty;
  row.in_library = m.in_library;
  row.end_to_end_us = m.latency.end_to_end;
  return row;
}

MapRow make_map_row(const protocol::EstimateMapMessage& m) {
  MapRow row;
  row.id = display_id(m.id);
  if (m.shape.size() == 2) {
    row.shape = std::to_string(m.shape[0]) + "px";
  } else if (m.shape.size() == 3) {
    row.shape = std::to_string(m.shape[0]) + "x" + std::to_string(m.shape[1]);
  } else {
    row.shape = "?";
  }
  for (const auto& [name, values] : m.params) {
    const bool categorical = std::any_of(m.confidence.begin(), m.confidence.end(),
                                         [&](const auto& c) { return c.first == name; });
    std::vector<float> judged;
    for (const float v : values) {
      if (std::isfinite(v)) judged.push_back(v);
    }
    if (categorical) {
      MapRow::Categorical c{sanitize(name), {}};
      std::map<float, std::size_t> counts;
      for (const float v : judged) ++counts[v];
      const std::vector<std::string>* names = nullptr;
      for (const auto& [n, list] : m.categories) {
        if (n == name && !list.empty()) names = &list;
      }
      for (const auto& [v, count] : counts) {
        std::string label = format_number(v);
        if (names && v >= 0 && v < static_cast<float>(names->size()) && v == std::floor(v)) {
          label = sanitize((*names)[static_cast<std::size_t>(v)]);
        }
        c.shares.push_back({label, static_cast<double>(count) / static_cast<double>(judged.size())});
      }
      row.categorical.push_back(c);
    } else {
      MapRow::Continuous c{sanitize(name), std::nullopt};
      if (!judged.empty()) {
        std::sort(judged.begin(), judged.end());
        const std::size_t mid = judged.size() / 2;
        c.median = judged.size() % 2 == 1 ? static_cast<double>(judged[mid])
                                          : 0.5 * (static_cast<double>(judged[mid - 1]) + judged[mid]);
      }
      row.continuous.push_back(c);
    }
  }
  row.rejected_pixels = m.rejected_pixels;
  row.end_to_end_us = m.latency.end_to_end;
  return row;
}

// ---- Plain lines -----------------------------------------------------------------------------

std::string plain_line(const EstimateRow& row) {
  std::string line = "estimate " + row.id;
  for (const auto& cell : row.params) line += " " + cell.name + "=" + cell_text(cell, true, true);
  line += " novelty=" + format_novelty(row.novelty, row.in_library);
  line += " e2e=" + format_e2e_ms(row.end_to_end_us);
  return line;
}

std::string plain_line(const MapRow& row) { return "estimate_map " + row.id + " " + map_details(row); }

std::string plain_line(const protocol::ErrorMessage& m) {
  return "error " + (m.id ? display_id(*m.id) : std::string("-")) + " " + error_details(m);
}

std::string plain_line(const protocol::MetricsMessage& m) {
  return printf_string("metrics rate=%.1f/s", m.rate_hz) + " p50=" + format_latency_us(m.latency_us.p50) +
         " p99=" + format_latency_us(m.latency_us.p99) + " received=" + std::to_string(m.received) +
         " published=" + std::to_string(m.published) + " rejected=" + std::to_string(m.rejected) +
         " dropped=" + std::to_string(m.dropped) + " queue=" + std::to_string(m.queue_depth);
}

std::string plain_malformed_line(const std::string& topic, const std::string& what) {
  return "malformed " + sanitize(topic) + ": " + sanitize(what);
}

// ---- The table -------------------------------------------------------------------------------

std::vector<std::string> format_table(const std::vector<TableEntry>& entries, std::size_t width) {
  const auto layouts = layouts_fullest_first(param_names(entries).size());
  Grid grid;
  for (const auto& layout : layouts) {
    grid = build_grid(entries, layout);
    if (grid.total <= width) break;
  }
  std::vector<std::string> lines;
  for (const auto& cells : grid.rows) {
    std::string line = pad_right(truncate_middle(cells[0], grid.widths[0]), grid.widths[0]);
    if (cells.size() == grid.widths.size()) {
      for (std::size_t c = 1; c < cells.size(); ++c) line += "  " + pad_left(cells[c], grid.widths[c]);
    }
    lines.push_back(line);
  }
  // Maps' details, after their id.
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (const auto* map = std::get_if<MapRow>(&entries[i])) lines[i + 1] += "  map " + map_details(*map, true);
  }
  for (auto& line : lines) line = truncate_end(line, width);
  return lines;
}

// ---- State -----------------------------------------------------------------------------------

WatchState::WatchState(std::size_t keep_rows) : keep_rows_(std::max<std::size_t>(1, keep_rows)) {}

void WatchState::push_row(TableEntry entry) {
  rows_.push_front(std::move(entry));
  while (rows_.size() > keep_rows_) rows_.pop_back();
}

void WatchState::note_seq(std::uint64_t seq) {
  // seq counts estimates and maps in publication order; a restarted daemon starts again at 1.
  if (last_seq_ != 0 && seq > last_seq_ + 1) missed_ += seq - last_seq_ - 1;
  last_seq_ = seq;
}

std::string WatchState::add(const protocol::EstimateMessage& m) {
  ++estimates_;
  note_seq(m.seq);
  EstimateRow row = make_estimate_row(m);
  std::string line = plain_line(row);
  push_row(std::move(row));
  return line;
}

std::string WatchState::add(const protocol::EstimateMapMessage& m) {
  ++maps_;
  note_seq(m.seq);
  MapRow row = make_map_row(m);
  std::string line = plain_line(row);
  push_row(std::move(row));
  return line;
}

std::string WatchState::add(const protocol::ErrorMessage& m) {
  ++errors_;
  ++errors_by_code_[std::string(protocol::to_string(m.code))];
  std::string line = plain_line(m);
  last_error_ = line.substr(std::string("error ").size());
  return line;
}

std::string WatchState::add(const protocol::MetricsMessage& m, double now_s) {
  metrics_ = m;
  metrics_received_s_ = now_s;
  return plain_line(m);
}

std::string WatchState::add_malformed(const std::string& topic, const std::string& what) {
  ++malformed_;
  std::string line = plain_malformed_line(topic, what);
  last_malformed_ = line.substr(std::string("malformed ").size());
  return line;
}

std::string WatchState::summary() const {
  std::string line = "watch: " + count_noun(estimates_, "estimate") + ", " + count_noun(maps_, "map") + ", " +
                     count_noun(errors_, "error");
  if (malformed_ > 0) line += ", " + std::to_string(malformed_) + " malformed";
  if (missed_ > 0) line += ", " + std::to_string(missed_) + " missed";
  line += metrics_ ? printf_string(", last rate %.1f/s", metrics_->rate_hz) : std::string(", no metrics");
  return line;
}

std::vector<std::string> WatchState::render(const ScreenInfo& info, std::size_t width,
                                            std::size_t height) const {
  std::vector<std::string> lines;

  std::vector<std::string> head = {"xasmap watch", info.endpoint, "elapsed " + format_duration_s(info.elapsed_s)};
  if (metrics_) {
    const double age_s = info.now_s - metrics_received_s_;
    head.push_back("daemon up " + format_duration_s(metrics_->uptime_s + std::max(0.0, age_s)));
    head.push_back(metrics_->model_generation == 0 ? std::string("model building")
                                                   : "model gen " + std::to_string(metrics_->model_generation));
    if (age_s > std::max(3.0, 3 * metrics_->interval_s)) head.push_back("no metrics for " + format_duration_s(age_s));
  } else {
    head.push_back("waiting for the daemon's metrics");
  }
  lines.push_back(join_fitting(head, width));

  if (metrics_) {
    const auto& m = *metrics_;
    // The session's energy offset, and whether it is still searched (docs/estimation.md).
    const auto& so = m.session_offset;
    const std::string offset = so.search_ev > 0.0
                                   ? printf_string("offset searched ±%.1f eV around %+.2f", so.search_ev, so.applied_ev)
                                   : printf_string("offset %+.2f eV", so.applied_ev);
    lines.push_back(join_fitting({printf_string("rate %.1f/s", m.rate_hz),
                                  "latency p50 " + format_latency_us(m.latency_us.p50),
                                  "p99 " + format_latency_us(m.latency_us.p99),
                                  "over " + format_duration_s(m.interval_s), offset},
                                 width));
    lines.push_back(join_fitting(
        {"daemon: received " + std::to_string(m.received), "published " + std::to_string(m.published),
         "rejected " + std::to_string(m.rejected), "dropped " + std::to_string(m.dropped),
         "queue " + std::to_string(m.queue_depth)},
        width));
  } else {
    lines.push_back(join_fitting({"rate -"}, width));
    lines.push_back(join_fitting({"daemon: -"}, width));
  }

  std::vector<std::string> seen = {"seen: " + count_noun(estimates_, "estimate"), count_noun(maps_, "map"),
                                   count_noun(errors_, "error"), std::to_string(malformed_) + " malformed"};
  if (missed_ > 0) seen.push_back(std::to_string(missed_) + " missed");
  lines.push_back(join_fitting(seen, width));

  std::vector<std::string> codes;
  for (const auto& [code, n] : errors_by_code_) codes.push_back(code + " " + std::to_string(n));
  if (codes.empty()) codes.push_back("none");
  codes.front() = "errors by code: " + codes.front();
  lines.push_back(join_fitting(codes, width));
  if (last_error_) lines.push_back(truncate_end("last error: " + *last_error_, width));
  if (last_malformed_) lines.push_back(truncate_end("last malformed: " + *last_malformed_, width));
  lines.push_back("");

  // The table: the newest rows that fit below, under the table's header.
  std::size_t room = height > lines.size() + 1 ? height - lines.size() - 1 : 0;
  if (info.rows_limit) room = std::min(room, *info.rows_limit);
  if (rows_.empty()) {
    lines.push_back(truncate_end("no estimates yet", width));
  } else if (room > 0) {
    const std::size_t n = std::min(room, rows_.size());
    const std::vector<TableEntry> shown(rows_.begin(), rows_.begin() + static_cast<std::ptrdiff_t>(n));
    for (auto& line : format_table(shown, width)) lines.push_back(std::move(line));
  }
  if (lines.size() > height) lines.resize(height);
  return lines;
}

}  // namespace xasmap::service
