// A stack's maps, pixel by pixel (stack_maps.hpp).

#include "stack_maps.hpp"

#include <algorithm>
#include <atomic>
#include <limits>

#include "xasmap/core/preprocess.hpp"

namespace xasmap::service {

void estimate_stack_maps(const Model& model, const Eigen::Ref<const Eigen::VectorXd>& energy, std::size_t pixels,
                         const PixelSource& pixel, const StackMapsOptions& options, const ChunkRunner& run,
                         protocol::EstimateMapMessage& m) {
  const auto& params = model.parameters();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  m.params.clear();
  m.uncertainty.clear();
  m.confidence.clear();
  m.categories.clear();
  m.fractions.clear();
  for (const ParameterInfo& p : params) {
    m.params.emplace_back(p.name, std::vector<float>(pixels, nan));
    (p.categorical ? m.confidence : m.uncertainty).emplace_back(p.name, std::vector<float>(pixels, nan));
    if (!p.category_names.empty()) m.categories.emplace_back(p.name, p.category_names);
  }
  m.novelty.assign(pixels, nan);
  if (model.options().edge_step_fit) {
    m.edge_step.assign(pixels, nan);
  } else {
    m.edge_step.clear();
  }
  // Mixed valence: the mean valence beside the parameters, and each charge's atom fraction.
  const MixtureOptions* mixing = options.mixture;
  const std::size_t valence = m.params.size();
  const std::vector<double>& charges = model.class_values();  // one fraction map each
  if (mixing) {
    m.params.emplace_back("valence", std::vector<float>(pixels, nan));
    m.uncertainty.emplace_back("valence", std::vector<float>(pixels, nan));
    for (double c : charges) m.fractions.emplace_back(protocol::fraction_key(c), std::vector<float>(pixels, nan));
  }
  std::atomic<std::uint64_t> rejected{0};
  run(pixels, std::max<std::size_t>(1, options.chunk), [&](std::size_t begin, std::size_t end) {
    // Per thread, kept from stack to stack: no allocation per pixel once warm.
    static thread_local Prepared prepared;
    static thread_local Estimate e;
    static thread_local Eigen::VectorXd scratch;
    for (std::size_t i = begin; i < end; ++i) {
      try {
        preprocess_into(energy, pixel(i, scratch), model.options().preprocess, prepared, options.session_offset_ev);
        model.estimate_into(prepared, e);
      } catch (const PreprocessError&) {
        ++rejected;
        continue;
      }
      if (mixing) {
        const Mixture x = model.mixture(prepared, e, *mixing);
        cap_class_confidence(x, e);
        m.params[valence].second[i] = static_cast<float>(x.mean_value);
        m.uncertainty.back().second[i] = static_cast<float>(x.mean_value_sd);
        for (auto& [key, f] : m.fractions) f[i] = 0.0f;
        for (const MixtureComponent& c : x.components) {
          const auto k = static_cast<std::size_t>(std::lower_bound(charges.begin(), charges.end(), c.class_value) -
                                                  charges.begin());
          if (k < charges.size()) m.fractions[k].second[i] = static_cast<float>(c.fraction);
        }
      }
      std::size_t ci = 0, ui = 0;
      for (std::size_t p = 0; p < params.size(); ++p) {
        m.params[p].second[i] = static_cast<float>(e.values[p]);
        if (params[p].categorical) {
          m.confidence[ci++].second[i] = static_cast<float>(e.confidence[p]);
        } else {
          m.uncertainty[ui++].second[i] = static_cast<float>(e.uncertainty[p]);
        }
      }
      m.novelty[i] = static_cast<float>(e.novelty);
      if (!m.edge_step.empty()) m.edge_step[i] = static_cast<float>(e.edge_step);
    }
  });
  m.rejected_pixels = rejected.load();
}

}  // namespace xasmap::service
