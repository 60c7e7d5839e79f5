#include "xasmap/core/ttmult.hpp"

#include <cctype>
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

}  // namespace

TtmultModel read_ttmult(const std::filesystem::path& ban, const AtomicTable& table) {
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
      if (count != 2) {
        throw Error(where + ": " + key + " with " + w[1] +
                    " values is a D4h model; charge transfer is implemented in Oh only (" + key + " 2 ...)");
      }
    }
  }
  const auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw Error(ban.string() + ": no " + what);
  };
  need(nconf.has_value(), "NCONF line");
  need(*nconf >= 2, "charge transfer (NCONF 1 1 is a crystal-field model: use --ion and --tendq)");
  need(def.contains("EG2") && def.contains("EF2"), "DEF EG2 and DEF EF2");
  need(xmix.size() == 2, "XMIX line");
  need(xham.size() == 2, "XHAM line");
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

  std::filesystem::path rcn = ban;
  rcn.replace_extension(".rcn31_out");
  const Rcn31 hf = read_rcn31(rcn);
  std::string element;
  try {
    element = element_symbol(hf.z);
  } catch (const Error& e) {
    throw Error(rcn.string() + ": " + e.what());
  }
  TtmultModel out;
  out.ion = parse_ion(element + std::to_string(hf.ion + 1) + "+");
  MultipletParameters& p = out.parameters;
  p = make_parameters(out.ion, table.lookup(out.ion), ParameterScaling{});
  p.tendq = xham[1];
  p.temperature_k = 0.0;
  ChargeTransferParameters& ct = p.charge_transfer;
  ct.configurations = *nconf;
  ct.delta = delta;
  ct.udd = udd;
  ct.upd = delta + udd - delta_final;
  ct.v_eg = xmix[0];
  ct.v_t2g = xmix[1];
  const auto rounded = [](double x) { return std::round(x * 1000.0) / 1000.0; };
  auto initial = hf.states.at(1), final = hf.states.at(2);
  if (initial[1].size() == 2) {
    ct.transferred.f2dd_initial = 0.8 * initial[1][0];
    ct.transferred.f4dd_initial = 0.8 * initial[1][1];
  }
  if (!initial[2].empty()) ct.transferred.zeta3d_initial = rounded(initial[2].back());
  if (final[1].size() == 2) {
    ct.transferred.f2dd_final = 0.8 * final[1][0];
    ct.transferred.f4dd_final = 0.8 * final[1][1];
  }
  if (final[2].empty()) throw Error(rcn.string() + ": state 2 has no zeta(2p)");
  ct.transferred.zeta2p = rounded(final[2][0]);
  if (final[2].size() == 2) ct.transferred.zeta3d_final = rounded(final[2][1]);
  if (final[3].size() == 1) ct.transferred.f2pd = 0.8 * final[3][0];
  if (final[4].size() == 2) {
    ct.transferred.g1pd = 0.8 * final[4][0];
    ct.transferred.g3pd = 0.8 * final[4][1];
  }
  char text[256];
  std::snprintf(text, sizeof text,
                "%s, %d configurations, Delta %.3f, Delta' %.3f, Udd %.3f, V(e_g) %.3f, V(t2g) %.3f, 10Dq %.3f eV",
                out.ion.name().c_str(), *nconf, delta, delta_final, udd, xmix[0], xmix[1], xham[1]);
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
