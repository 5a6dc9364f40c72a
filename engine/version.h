// The crashsim version, recorded in traces and printed by --version.
#pragma once

namespace crashsim {
const char* Version();
}  // namespace crashsim
