#include "xasmap/core/atomic_data.hpp"

#include <array>
#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

#include "xasmap/core/error.hpp"

namespace xasmap {

namespace {

constexpr std::array<std::pair<const char*, int>, 8> kElements{{
    {"Ti", 22}, {"V", 23}, {"Cr", 24}, {"Mn", 25}, {"Fe", 26}, {"Co", 27}, {"Ni", 28}, {"Cu", 29}}};

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

double parse_number(const std::string& text, const std::string& where) {
  double v = 0.0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    throw Error(where + ": '" + text + "' is not a number");
  }
  return v;
}

// Reads a CSV file with a header; calls `row(fields, where)` for every data line.
template <class F>
void read_csv(const std::filesystem::path& file, std::size_t min_fields, F&& row) {
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot read the atomic data file");
  std::string line;
  int line_number = 0;
  bool header = true;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    if (header) {
      header = false;
      continue;
    }
    const auto fields = split_csv(line);
    const std::string where = file.string() + ":" + std::to_string(line_number);
    if (fields.size() < min_fields) {
      throw Error(where + ": expected at least " + std::to_string(min_fields) + " fields, found " +
                  std::to_string(fields.size()));
    }
    row(fields, where);
  }
  if (header) throw Error(file.string() + ": the file is empty");
}

}  // namespace

std::string element_symbol(int z) {
  for (const auto& [symbol, number] : kElements) {
    if (number == z) return symbol;
  }
  throw Error("Z = " + std::to_string(z) + " is not a 3d element Ti..Cu");
}

Ion parse_ion(const std::string& text) {
  for (const auto& [symbol, z] : kElements) {
    const std::string element(symbol);
    if (text.rfind(element, 0) != 0) continue;
    std::string rest = text.substr(element.size());
    const bool signed_charge = !rest.empty() && rest.back() == '+';
    if (signed_charge) rest.pop_back();
    int charge = 0;
    const auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), charge);
    if (ec != std::errc() || ptr != rest.data() + rest.size() || rest.empty()) break;
    // "Mn2" might be a typo of Mn2+ or of something else: the config spells ions Mn2+, and so must
    // every other input, so that one spelling names one ion everywhere.
    if (!signed_charge) {
      throw Error("ion '" + text + "': write the charge with its sign, e.g. " + element + rest +
                  "+");
    }
    const int n3d = z - 18 - charge;
    if (charge < 1 || n3d < 0 || n3d > 9) {
      throw Error("ion '" + text + "': " + element + " with charge +" + std::to_string(charge) +
                  " has " + std::to_string(n3d) + " 3d electrons; an L2,3 calculation needs 0 to 9");
    }
    return Ion{element, z, charge, n3d};
  }
  throw Error("ion '" + text + "': expected a 3d element Ti..Cu with its charge, e.g. Mn3+");
}

AtomicTable AtomicTable::load(const std::filesystem::path& folder) {
  AtomicTable table;
  // element,Z,edrixs_key,configuration,role,ion_charge,n3d,n3d_initial_state,F2_dd_eV,F4_dd_eV,
  // F2_pd_eV,G1_pd_eV,G3_pd_eV,zeta_3d_eV,zeta_2p_eV,note
  read_csv(folder / "slater_3d_L23.csv", 15,
           [&](const std::vector<std::string>& f, const std::string& where) {
             const auto value = [&](std::size_t i) {
               return f[i].empty() ? 0.0 : parse_number(f[i], where);
             };
             Row r;
             r.f2dd = value(8);
             r.f4dd = value(9);
             r.f2pd = value(10);
             r.g1pd = value(11);
             r.g3pd = value(12);
             r.zeta3d = value(13);
             r.zeta2p = value(14);
             table.rows_[{f[0], f[2]}] = r;
           });
  // element,Z,edge,binding_energy_eV,width_FWHM_eV,edrixs_gamma_c_HWHM_eV
  read_csv(folder / "edges_3d.csv", 4,
           [&](const std::vector<std::string>& f, const std::string& where) {
             table.edges_[{f[0], f[2]}] = parse_number(f[3], where);
           });
  return table;
}

HartreeFockValues AtomicTable::lookup(const Ion& ion) const {
  const std::string initial_key = "3d" + std::to_string(ion.n3d);
  const std::string final_key = "3d" + std::to_string(ion.n3d + 1) + "_2p5";
  const auto initial = rows_.find({ion.element, initial_key});
  const auto final_row = rows_.find({ion.element, final_key});
  if (initial == rows_.end() || final_row == rows_.end()) {
    throw Error("ion " + ion.name() + ": the atomic table has no row " + ion.element + " " +
                (initial == rows_.end() ? initial_key : final_key));
  }
  HartreeFockValues v;
  v.f2dd_initial = initial->second.f2dd;
  v.f4dd_initial = initial->second.f4dd;
  v.zeta3d_initial = initial->second.zeta3d;
  v.f2dd_final = final_row->second.f2dd;
  v.f4dd_final = final_row->second.f4dd;
  v.f2pd = final_row->second.f2pd;
  v.g1pd = final_row->second.g1pd;
  v.g3pd = final_row->second.g3pd;
  v.zeta3d_final = final_row->second.zeta3d;
  v.zeta2p = final_row->second.zeta2p;
  const auto l3 = edges_.find({ion.element, "L3"});
  const auto l2 = edges_.find({ion.element, "L2"});
  if (l3 != edges_.end()) v.edge_l3_ev = l3->second;
  if (l2 != edges_.end()) v.edge_l2_ev = l2->second;
  return v;
}

}  // namespace xasmap
