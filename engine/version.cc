#include "engine/version.h"

namespace crashsim {
const char* Version() { return CRASHSIM_VERSION; }
}  // namespace crashsim
