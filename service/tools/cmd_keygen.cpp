// xasmap keygen: a CURVE key pair for a daemon socket or a client (docs/operations.md).

#include <iostream>

#include "commands.hpp"
#include "curve.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kKeygenOptions = {
    {"out", true, "NAME", "write NAME.key (the secret key, mode 600) and NAME.pub (the public key)"},
    {"force", false, "", "replace NAME.key and NAME.pub if they exist"},
};

int run_keygen(const CliArgs& args) {
  const auto out = args.value("out");
  if (!out || out->empty()) throw UsageError("--out NAME is required (it writes NAME.key and NAME.pub)");
  if (!args.positionals().empty()) throw UsageError("unexpected argument '" + args.positionals().front() + "'");
  try {
    const CurveKeyPair keys = generate_curve_keys();
    write_curve_keys(*out, keys, args.has("force"));
    std::cout << "wrote " << *out << ".key (secret: keep it to this side) and " << *out
              << ".pub (public: list it in the other side's authorized_keys_file)\n"
              << "public key " << keys.public_z85 << "\n";
  } catch (const CurveKeyError& e) {
    std::cerr << "xasmap keygen: " << e.what() << "\n";
    return 73;  // EX_CANTCREAT
  }
  return 0;
}

}  // namespace xasmap::service
