#include "xasmap/core/ttmult.hpp"

#include <array>
#include <cctype>
#include <limits>
#include <cstdio>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "xasmap/core/error.hpp"

namespace xasmap {

namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> words_of(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

double number(const std::string& text, const std::string& where) {
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw Error(where + ": '" + text + "' is not a number");
}

// A Cowan state summary ("state N  count  E 0  v1 t1  v2 t2 ..."): its values after the total
// energy, by tag (1: F(dd); 2: zeta, 2p before 3d; 3: F2(pd); 4: G(pd)).
struct Rcn31 {
  int z = 0, ion = -1;
  std::map<int, std::map<int, std::vector<double>>> states;  // state -> tag -> values
};

Rcn31 read_rcn31(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot open (ttmult's Hartree-Fock output, beside the .ban)");
  Rcn31 out;
  std::string line;
  int number_of_line = 0;
  while (std::getline(in, line)) {
    ++number_of_line;
    const std::string where = file.string() + ":" + std::to_string(number_of_line);
    const std::vector<std::string> w = words_of(line);
    for (std::size_t i = 0; i + 1 < w.size(); ++i) {
      if (out.z == 0 && w[i] == "Z=") out.z = static_cast<int>(number(w[i + 1], where));
      if (out.ion < 0 && w[i] == "ION=") out.ion = static_cast<int>(number(w[i + 1], where));
    }
    if (line.find('=') != std::string::npos || w.size() < 5 || w[0] != "state") continue;
    const int state = static_cast<int>(number(w[1], where));
    const int count = static_cast<int>(number(w[2], where));
    std::vector<std::string> items(w.begin() + 5, w.end());  // after "E 0"
    while (static_cast<int>(items.size()) < 2 * (count - 1)) {
      if (!std::getline(in, line)) throw Error(where + ": state " + std::to_string(state) + "'s summary is cut short");
      ++number_of_line;
      for (const std::string& x : words_of(line)) items.push_back(x);
    }
    for (int k = 0; k + 1 < count; ++k) {
      const auto i = static_cast<std::size_t>(2 * k);
      out.states[state][static_cast<int>(number(items[i + 1], where))].push_back(number(items[i], where));
    }
  }
  if (out.z == 0 || out.ion < 0) throw Error(file.string() + ": no 'Z=' and 'ION=' in its header");
  if (!out.states.contains(1) || !out.states.contains(2)) {
    throw Error(file.string() + ": no summary of state 1 (3d^(n+1)) and state 2 (2p5 3d^(n+2))");
  }
  return out;
}

// Cowan's RCG input (.rcg): the parameters ttmult used, per configuration. A block whose control
// line carries the scale field (e.g. 80998080: F(dd), zeta, F(pd), G(pd) in per cent, 99 meaning
// unscaled) lists its configurations ("D 8  P 6  D10": 3d, 2p and the ligand shell) and then, per
// configuration, "LABEL  count  Eav  v2 v3 v4 v5" with the values after the fifth on the lines below
// (the first line holds five, padded with zeros). The values follow Eav in Cowan's order: F2, F4
// (dd) when the 3d shell holds 2 to 8 electrons, the spin-orbit constants of the open shells in the
// order the configuration names them (zeta(3d) when it holds 1 to 9 electrons, zeta(2p) with a 2p
// hole), then, with a 2p hole and the 3d shell open, F2(pd), G1(pd), G3(pd). Scaled here.
struct RcgConfiguration {
  int n3d = 0;
  bool core_hole = false;
  double f2dd = std::numeric_limits<double>::quiet_NaN(), f4dd = std::numeric_limits<double>::quiet_NaN();
  double zeta3d = std::numeric_limits<double>::quiet_NaN(), zeta2p = std::numeric_limits<double>::quiet_NaN();
  double f2pd = std::numeric_limits<double>::quiet_NaN(), g1pd = std::numeric_limits<double>::quiet_NaN();
  double g3pd = std::numeric_limits<double>::quiet_NaN();
};

struct Rcg {
  std::string ion;                          // from the configurations' labels, e.g. "Ni2+"
  std::vector<RcgConfiguration> initial, final;  // in the file's order
};

Rcg read_rcg(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot open (Cowan's RCG input, beside the .ban)");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  Rcg out;
  const auto where = [&](std::size_t i) { return file.string() + ":" + std::to_string(i + 1); };
  const auto shells = [](const std::string& line, int& d, int& p, bool& d_first) {
    // "D 8  P 6  D10": the first D is 3d, the P 2p; a shell's count is the next one or two digits.
    d = p = -1;
    d_first = true;
    for (std::size_t k = 0; k + 1 < line.size(); ++k) {
      if ((line[k] != 'D' && line[k] != 'P') || std::isalpha(static_cast<unsigned char>(line[k + 1]))) continue;
      std::size_t end = k + 1;
      while (end < line.size() && line[end] == ' ') ++end;
      std::size_t digits = end;
      while (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[digits]))) ++digits;
      if (digits == end) return false;
      const int count = std::stoi(line.substr(end, digits - end));
      int& target = line[k] == 'D' ? d : p;
      if (target < 0) {
        target = count;
        if (line[k] == 'P' && d < 0) d_first = false;
      }
      k = digits - 1;
    }
    return d >= 0 && p >= 0;
  };
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::vector<std::string> control = words_of(lines[i]);
    // A block's first line: "0  <scale>  8065.47900  000000"; parameters only with a scale other than 99999999.
    if (control.size() < 3 || control[0] != "0" || control[1].size() != 8 || control[1] == "99999999") continue;
    const std::string scale_text = control[1];
    std::array<double, 4> scale{};
    for (std::size_t k = 0; k < 4; ++k) {
      const std::string two = scale_text.substr(2 * k, 2);
      if (!std::isdigit(static_cast<unsigned char>(two[0])) || !std::isdigit(static_cast<unsigned char>(two[1]))) {
        throw Error(where(i) + ": scale field '" + scale_text + "' is not four two-digit percentages");
      }
      const int percent = std::stoi(two);
      scale[k] = percent == 99 ? 1.0 : percent / 100.0;
    }
    // The configurations follow the two lines after the control line.
    struct Shells {
      int d, p;
      bool d_first;
    };
    std::vector<Shells> configurations;
    std::size_t j = i + 3;
    for (Shells c{}; j < lines.size() && shells(lines[j], c.d, c.p, c.d_first); ++j) configurations.push_back(c);
    if (configurations.empty()) throw Error(where(i) + ": a scaled block without configurations (\"D 8  P 6 ...\")");
    for (const auto& [d, p, d_first] : configurations) {
      if (j >= lines.size()) throw Error(file.string() + ": cut short after line " + std::to_string(i + 1));
      std::vector<std::string> w = words_of(lines[j]);
      // The label may contain digits ("Ni2+2P3DXAS"): the count is the first word that is an integer.
      std::size_t at = 0;
      while (at < w.size() && w[at].find_first_not_of("0123456789") != std::string::npos) ++at;
      if (at + 1 >= w.size()) throw Error(where(j) + ": no parameter count and values");
      if (out.ion.empty() && at > 0) {
        const std::string& label = w[0];
        const std::size_t plus = label.find('+');
        if (plus != std::string::npos) out.ion = label.substr(0, plus + 1);
      }
      const int count = static_cast<int>(number(w[at], where(j)));
      // The first line holds five values (zeros past the count), the lines below the rest.
      std::vector<double> values;
      const auto take = [&](const std::vector<std::string>& words, std::size_t from, std::size_t line) {
        for (std::size_t k = from; k < words.size(); ++k) {
          std::string x = words[k];
          if (const auto hr = x.find("HR"); hr != std::string::npos) x.resize(hr);  // "0.0000HR99999999"
          if (!x.empty()) values.push_back(number(x, where(line)));
        }
      };
      take(w, at + 1, j);
      ++j;
      while (static_cast<int>(values.size()) < count) {
        if (j >= lines.size()) throw Error(where(j - 1) + ": " + std::to_string(count) + " values announced");
        take(words_of(lines[j]), 0, j);
        ++j;
      }
      RcgConfiguration c;
      c.n3d = d;
      c.core_hole = p == 5;
      if (p != 5 && p != 6) throw Error(where(j - 1) + ": a 2p shell of " + std::to_string(p) + " electrons");
      std::vector<double*> expected;
      if (d >= 2 && d <= 8) {
        expected.push_back(&c.f2dd);
        expected.push_back(&c.f4dd);
      }
      // The open shells' spin-orbit constants, in the configuration line's order.
      const bool open3d = d >= 1 && d <= 9;
      std::vector<double*> zetas;
      if (open3d) zetas.push_back(&c.zeta3d);
      if (c.core_hole) zetas.insert(d_first ? zetas.end() : zetas.begin(), &c.zeta2p);
      expected.insert(expected.end(), zetas.begin(), zetas.end());
      if (c.core_hole && open3d) expected.insert(expected.end(), {&c.f2pd, &c.g1pd, &c.g3pd});
      if (static_cast<int>(expected.size()) + 1 != count) {
        throw Error(where(j - 1) + ": " + std::to_string(count) + " parameters for 3d" + std::to_string(d) +
                    (c.core_hole ? " with a 2p hole" : "") + "; Cowan's order has " + std::to_string(expected.size() + 1));
      }
      for (std::size_t k = 0; k < expected.size(); ++k) *expected[k] = values[k + 1];
      c.f2dd *= scale[0];
      c.f4dd *= scale[0];
      c.zeta3d *= scale[1];
      c.zeta2p *= scale[1];
      c.f2pd *= scale[2];
      c.g1pd *= scale[3];
      c.g3pd *= scale[3];
      (c.core_hole ? out.final : out.initial).push_back(c);
    }
    i = j - 1;
  }
  if (out.initial.empty() || out.final.empty()) {
    throw Error(file.string() + ": no scaled parameter blocks of the initial and the final state");
  }
  if (out.ion.empty()) throw Error(file.string() + ": no ion in the configurations' labels (e.g. Ni2+2P3DXAS)");
  return out;
}

// The transferred configurations' terms from an .rcn31_out's state summaries: F and G at 80 %,
// zeta rounded to ttmult's three decimals.
void read_transferred(const Rcn31& hf, const std::filesystem::path& file, TransferredTerms& t) {
  const auto rounded = [](double x) { return std::round(x * 1000.0) / 1000.0; };
  auto initial = hf.states.at(1), final = hf.states.at(2);
  if (initial[1].size() == 2) {
    t.f2dd_initial = 0.8 * initial[1][0];
    t.f4dd_initial = 0.8 * initial[1][1];
  }
  if (!initial[2].empty()) t.zeta3d_initial = rounded(initial[2].back());
  if (final[1].size() == 2) {
    t.f2dd_final = 0.8 * final[1][0];
    t.f4dd_final = 0.8 * final[1][1];
  }
  if (final[2].empty()) throw Error(file.string() + ": state 2 has no zeta(2p)");
  t.zeta2p = rounded(final[2][0]);
  if (final[2].size() == 2) t.zeta3d_final = rounded(final[2][1]);
  if (final[3].size() == 1) t.f2pd = 0.8 * final[3][0];
  if (final[4].size() == 2) {
    t.g1pd = 0.8 * final[4][0];
    t.g3pd = 0.8 * final[4][1];
  }
}

}  // namespace

TtmultModel read_ttmult(const std::filesystem::path& ban, const AtomicTable& table,
                        const std::filesystem::path& hartree_fock) {
  std::ifstream in(ban);
  if (!in) throw Error(ban.string() + ": cannot open");
  std::optional<int> nconf;
  std::map<std::string, double> def;
  std::vector<double> xmix, xham;
  std::string line;
  int number_of_line = 0;
  while (std::getline(in, line)) {
    ++number_of_line;
    const std::string where = ban.string() + ":" + std::to_string(number_of_line);
    std::vector<std::string> w = words_of(line);
    if (w.empty()) continue;
    const std::string key = upper(w[0]);
    if (key == "NCONF" && w.size() >= 3) {
      const int initial = static_cast<int>(number(w[1], where)), final = static_cast<int>(number(w[2], where));
      if (initial != final || initial < 1 || initial > 3) {
        throw Error(where + ": NCONF " + w[1] + " " + w[2] + ": only equal counts of 1 to 3 configurations");
      }
      nconf = initial;
    } else if (key == "DEF" && w.size() >= 4 && w[2] == "=") {
      def[upper(w[1])] = number(w[3], where);
    } else if (key == "XMIX" || key == "XHAM") {
      if (w.size() < 2) throw Error(where + ": " + key + " without its values");
      const int count = static_cast<int>(number(w[1], where));
      if (static_cast<int>(w.size()) < 2 + count) throw Error(where + ": " + key + " announces " + w[1] + " values");
      std::vector<double>& values = key == "XMIX" ? xmix : xham;
      values.clear();
      for (int k = 0; k < count; ++k) values.push_back(number(w[static_cast<std::size_t>(2 + k)], where));
      if (count != 2 && count != 4) {
        throw Error(where + ": " + key + " with " + w[1] + " values; 2 (Oh) or 4 (D4h) are read");
      }
    }
  }
  const auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw Error(ban.string() + ": no " + what);
  };
  need(nconf.has_value(), "NCONF line");
  need(*nconf >= 2, "charge transfer (NCONF 1 1 is a crystal-field model: use --ion and --tendq)");
  need(def.contains("EG2") && def.contains("EF2"), "DEF EG2 and DEF EF2");
  need(!xmix.empty(), "XMIX line");
  need(!xham.empty(), "XHAM line");
  if (std::abs(xham[0] - 1.0) > 1e-12) {
    throw Error(ban.string() + ": XHAM scales the atomic Hamiltonian by " + std::to_string(xham[0]) + "; only 1.0 is read");
  }
  const double eg1 = def.contains("EG1") ? def["EG1"] : 0.0, ef1 = def.contains("EF1") ? def["EF1"] : 0.0;
  const double delta = def["EG2"] - eg1, delta_final = def["EF2"] - ef1;
  double udd = 0.0;
  if (*nconf == 3) {
    need(def.contains("EG3") && def.contains("EF3"), "DEF EG3 and DEF EF3 (three configurations)");
    udd = def["EG3"] - eg1 - 2.0 * delta;
    const double final_udd = def["EF3"] - ef1 - 2.0 * delta_final;
    if (std::abs(final_udd - udd) > 1e-6) {
      throw Error(ban.string() + ": EG3 and EF3 give Udd " + std::to_string(udd) + " and " + std::to_string(final_udd) +
                  " eV; the model has one Udd for both states");
    }
  }

  // The Hartree-Fock values: a .rcg (what ttmult read, every configuration's) or an .rcn31_out
  // (the transferred configurations'; the first from the table).
  std::filesystem::path hf_file = hartree_fock;
  if (hf_file.empty()) {
    std::filesystem::path rcg = ban;
    rcg.replace_extension(".rcg");
    hf_file = ban;
    hf_file.replace_extension(std::filesystem::exists(rcg) ? ".rcg" : ".rcn31_out");
  }
  const bool from_rcg = hf_file.extension() == ".rcg";
  TtmultModel out;
  out.hartree_fock = hf_file;
  MultipletParameters& p = out.parameters;
  Rcn31 hf;
  Rcg rcg;
  if (from_rcg) {
    rcg = read_rcg(hf_file);
    try {
      out.ion = parse_ion(rcg.ion);
    } catch (const Error& e) {
      throw Error(hf_file.string() + ": " + e.what());
    }
    if (static_cast<int>(rcg.initial.size()) != *nconf || static_cast<int>(rcg.final.size()) != *nconf) {
      throw Error(hf_file.string() + ": " + std::to_string(rcg.initial.size()) + " initial and " +
                  std::to_string(rcg.final.size()) + " final configurations; the .ban's NCONF is " + std::to_string(*nconf));
    }
    if (rcg.initial[0].n3d != out.ion.n3d) {
      throw Error(hf_file.string() + ": its first configuration has " + std::to_string(rcg.initial[0].n3d) +
                  " 3d electrons; " + out.ion.name() + " has " + std::to_string(out.ion.n3d));
    }
  } else {
    hf = read_rcn31(hf_file);
    std::string element;
    try {
      element = element_symbol(hf.z);
    } catch (const Error& e) {
      throw Error(hf_file.string() + ": " + e.what());
    }
    out.ion = parse_ion(element + std::to_string(hf.ion + 1) + "+");
  }
  p = make_parameters(out.ion, table.lookup(out.ion), ParameterScaling{});
  p.temperature_k = 0.0;
  ChargeTransferParameters& ct = p.charge_transfer;
  ct.configurations = *nconf;
  ct.delta = delta;
  ct.udd = udd;
  ct.upd = delta + udd - delta_final;
  const bool d4h = xmix.size() == 4 || xham.size() == 4;
  if (d4h) p.symmetry = CrystalSymmetry::kD4h;
  if (xmix.size() == 4) {
    // CTM4XAS's order (its template .rac's actors B1hybr, A1hybr, B2hybr, Ehybr).
    ct.v_b1 = xmix[0];
    ct.v_a1 = xmix[1];
    ct.v_b2 = xmix[2];
    ct.v_e = xmix[3];
  } else {
    ct.v_eg = xmix[0];
    ct.v_t2g = xmix[1];
  }
  if (xham.size() == 4) {
    // The template's actors HAMILTONIAN, 10Dq, Dt, Ds. Its Dt actor lacks Dt's part of the X400
    // branch, which CTM4XAS folds into the 10Dq it writes (10Dq - 35/6 Dt): undone here.
    p.dt = xham[2];
    p.ds = xham[3];
    p.tendq = xham[1] + 35.0 / 6.0 * p.dt;
  } else {
    p.tendq = xham[1];
  }
  if (from_rcg) {
    const auto set = [](double& field, double value) {
      if (!std::isnan(value)) field = value;
    };
    const RcgConfiguration &g = rcg.initial[0], &f = rcg.final[0];
    set(p.f2dd_initial, g.f2dd);
    set(p.f4dd_initial, g.f4dd);
    set(p.zeta3d_initial, g.zeta3d);
    set(p.f2dd_final, f.f2dd);
    set(p.f4dd_final, f.f4dd);
    set(p.zeta3d_final, f.zeta3d);
    set(p.zeta2p, f.zeta2p);
    set(p.f2pd, f.f2pd);
    set(p.g1pd, f.g1pd);
    set(p.g3pd, f.g3pd);
    // The model gives every configuration with transferred electrons one set of terms.
    const auto same_as_second = [](const RcgConfiguration& a, const RcgConfiguration& b) {
      const auto eq = [](double x, double y) { return (std::isnan(x) && std::isnan(y)) || std::abs(x - y) < 1e-4; };
      return eq(a.f2dd, b.f2dd) && eq(a.f4dd, b.f4dd) && eq(a.zeta3d, b.zeta3d) && eq(a.zeta2p, b.zeta2p) &&
             eq(a.f2pd, b.f2pd) && eq(a.g1pd, b.g1pd) && eq(a.g3pd, b.g3pd);
    };
    if (*nconf == 3 && (!same_as_second(rcg.initial[2], rcg.initial[1]) || !same_as_second(rcg.final[2], rcg.final[1]))) {
      throw Error(hf_file.string() + ": the third configuration's terms differ from the second's; the model gives "
                  "3d^(n+2)L^2 the terms of 3d^(n+1)L");
    }
    TransferredTerms& t = ct.transferred;
    t.f2dd_initial = rcg.initial[1].f2dd;
    t.f4dd_initial = rcg.initial[1].f4dd;
    t.zeta3d_initial = rcg.initial[1].zeta3d;
    t.f2dd_final = rcg.final[1].f2dd;
    t.f4dd_final = rcg.final[1].f4dd;
    t.zeta3d_final = rcg.final[1].zeta3d;
    t.zeta2p = rcg.final[1].zeta2p;
    t.f2pd = rcg.final[1].f2pd;
    t.g1pd = rcg.final[1].g1pd;
    t.g3pd = rcg.final[1].g3pd;
  } else {
    read_transferred(hf, hf_file, ct.transferred);
  }

  char text[320];
  if (d4h) {
    const auto or_else = [](double v, double fallback) { return std::isnan(v) ? fallback : v; };
    std::snprintf(text, sizeof text,
                  "%s, D4h, %d configurations, Delta %.3f, Delta' %.3f, Udd %.3f, V(b1) %.3f, V(a1) %.3f, V(b2) %.3f, "
                  "V(e) %.3f, 10Dq %.3f, Ds %.3f, Dt %.3f eV",
                  out.ion.name().c_str(), *nconf, delta, delta_final, udd, or_else(ct.v_b1, ct.v_eg),
                  or_else(ct.v_a1, ct.v_eg), or_else(ct.v_b2, ct.v_t2g), or_else(ct.v_e, ct.v_t2g), p.tendq, p.ds, p.dt);
  } else {
    std::snprintf(text, sizeof text,
                  "%s, %d configurations, Delta %.3f, Delta' %.3f, Udd %.3f, V(e_g) %.3f, V(t2g) %.3f, 10Dq %.3f eV",
                  out.ion.name().c_str(), *nconf, delta, delta_final, udd, xmix[0], xmix[1], xham[1]);
  }
  out.summary = text;
  return out;
}

double ttmult_energy_offset(const MultipletDiagnostics& d) {
  return 20.0 - (d.final_average_ev - d.initial_average_ev);
}

Broadening ttmult_broadening(double offset) {
  Broadening b;
  b.lorentz_l3_ev = 0.2;
  b.lorentz_l2_ev = 0.4;
  b.gauss_ev = 0.2;
  b.rule = LifetimeRule::kSplitEnergy;
  b.split_ev = 30.0 - offset;
  return b;
}

}  // namespace xasmap
