#pragma once
// Small text helpers shared by the parsers of config files, command lines and messages.

#include <cstddef>
#include <string>
#include <vector>

namespace xasmap {

// Levenshtein distance: insertions, deletions and substitutions each cost 1.
std::size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word`, or "" when none is close enough to be a typo of it (more than
// max(2, |word|/3) edits away).
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace xasmap
