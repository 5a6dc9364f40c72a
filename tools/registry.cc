// The self-registration list behind RegisterCommand (tools/common.h).
#include "tools/common.h"

namespace crashsim::tools {
namespace {
std::vector<AddCommandFn>& Mutable() {
  static std::vector<AddCommandFn> commands;
  return commands;
}
}  // namespace

RegisterCommand::RegisterCommand(AddCommandFn fn) { Mutable().push_back(fn); }
const std::vector<AddCommandFn>& RegisteredCommands() { return Mutable(); }

}  // namespace crashsim::tools
