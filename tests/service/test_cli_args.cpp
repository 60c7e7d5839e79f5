#include <catch2/catch.hpp>

#include "cli_args.hpp"

using namespace xasmap::service;

namespace {
const std::vector<OptionSpec> kSpecs = {
    {"config", true, "FILE", ""}, {"tendq", true, "EV", ""}, {"plain", false, "", ""}};
}

TEST_CASE("options take values in both spellings, flags take none", "[service][cli]") {
  const char* argv[] = {"xasmap", "cmd", "--config", "a.yaml", "--tendq=0.9", "--plain", "file.csv"};
  const CliArgs args(7, argv, 2, kSpecs);
  CHECK(args.value("config") == std::optional<std::string>("a.yaml"));
  CHECK(args.number("tendq", 0.0) == 0.9);
  CHECK(args.has("plain"));
  CHECK(args.positionals() == std::vector<std::string>{"file.csv"});
  CHECK(args.number("missing", 1.5) == 1.5);
}

TEST_CASE("a negative number is a value, not an option", "[service][cli]") {
  const char* argv[] = {"xasmap", "--tendq", "-0.2"};
  const CliArgs args(3, argv, 1, kSpecs);
  CHECK(args.number("tendq", 0.0) == -0.2);
}

TEST_CASE("bad command lines are usage errors that say why", "[service][cli]") {
  const char* unknown[] = {"xasmap", "--confg", "x"};
  CHECK_THROWS_WITH(CliArgs(3, unknown, 1, kSpecs),
                    Catch::Contains("unknown option '--confg'") &&
                        Catch::Contains("did you mean '--config'?"));
  const char* missing[] = {"xasmap", "--config"};
  CHECK_THROWS_WITH(CliArgs(2, missing, 1, kSpecs), Catch::Contains("needs a value FILE"));
  const char* not_number[] = {"xasmap", "--tendq", "abc"};
  const CliArgs args(3, not_number, 1, kSpecs);
  CHECK_THROWS_AS(args.number("tendq", 0), UsageError);
  const char* flag_value[] = {"xasmap", "--plain=yes"};
  CHECK_THROWS_WITH(CliArgs(2, flag_value, 1, kSpecs), Catch::Contains("takes no value"));
}
