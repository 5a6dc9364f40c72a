// Explaining a trace to a person: the guest ops and the device ops they caused, with the qcow2
// structure each write served, the flush barriers, what the crash did to each pending write
// (persisted, torn, dropped), the dirty bit as the crash left it, what the checker finds on the
// crashed image and the verdict; as text, and as an SVG timeline a browser shows.
//
// The device-op fates are computed from the trace alone, so a trace still explains itself on a
// build whose engine no longer issues the same ops; the dirty bit, the checker's findings and
// the verdict need the crashed image, and are shown only when this build reproduces the log.
#pragma once

#include <string>

#include "traces/trace.h"

namespace crashsim::traces {

struct ExplainOptions {
  bool reads = false;  // list device reads too (they never change a crash state)
};

struct Explanation {
  std::string text;
  std::string svg;
  bool reproduced_log = false;  // this build issued the trace's device ops
};

Result<Explanation> Explain(const Trace& trace, const ExplainOptions& options = {});

}  // namespace crashsim::traces
