// Shared by the libFuzzer targets: what a target asserts, and the bounds every target puts on
// its input. A property that fails prints what it saw and aborts, so libFuzzer keeps the input;
// a target never writes files and never depends on time, so every input replays the same way.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

namespace crashsim::fuzz {

// A fuzz property failed: `what` says which, `detail` what the target saw.
[[noreturn]] inline void PropertyFailed(const char* what, const std::string& detail) {
  std::fprintf(stderr, "crashsim fuzz: property failed: %s\n%s\n", what, detail.c_str());
  std::abort();
}

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace crashsim::fuzz

#define FUZZ_PROPERTY(expr, detail) \
  ((expr) ? (void)0 : ::crashsim::fuzz::PropertyFailed(#expr, (detail)))
