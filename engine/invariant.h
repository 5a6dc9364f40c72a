// Always-on assertions for in-memory invariants (TigerBeetle style): a broken invariant is a bug
// in crashsim, never bad input, so it aborts in release builds too. Bytes read from an image are
// untrusted and are reported as Status::Corruption instead, never asserted.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace crashsim::detail {
[[noreturn]] inline void InvariantFailed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "crashsim: invariant failed: %s (%s:%d)\n", expr, file, line);
  std::abort();
}
}  // namespace crashsim::detail

#define INVARIANT(expr) \
  ((expr) ? (void)0 : ::crashsim::detail::InvariantFailed(#expr, __FILE__, __LINE__))
