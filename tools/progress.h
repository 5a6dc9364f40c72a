// Progress a person can read while a long command runs. On a terminal: one line on stderr,
// redrawn in place at most ten times a second: label, a bar and done/total when the total is
// known, the rate and the time left. Elsewhere (a CI log, a pipe): a plain line every few
// seconds, so a log shows the run is alive without filling up. Quiet: nothing. The line is
// cleared (terminal) when the work is done: the command's own report follows.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace crashsim {

enum class ProgressStyle : uint8_t { kTerminal, kPlain, kQuiet };

// kQuiet when `quiet`, else kTerminal when `fd` is a terminal, else kPlain.
ProgressStyle ProgressStyleFor(bool quiet, int fd);

class ProgressMeter {
 public:
  // Seconds on a monotonic clock; tests pass their own.
  using Clock = std::function<double()>;
  static constexpr double kTerminalInterval = 0.1;
  static constexpr double kPlainInterval = 5.0;

  ProgressMeter(std::string label, std::string unit, ProgressStyle style, std::FILE* out = stderr,
                Clock clock = {});
  ~ProgressMeter() { Finish(); }
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;

  // `total` 0: not known (yet). Draws only when the style's interval has passed.
  void Update(uint64_t done, uint64_t total = 0);
  // Clears the terminal line; nothing else in the other styles. Idempotent.
  void Finish();

  // The text of one update, without the terminal's carriage return: for tests.
  std::string Line(uint64_t done, uint64_t total, double now) const;

 private:
  std::string label_;
  std::string unit_;
  ProgressStyle style_;
  std::FILE* out_;
  Clock clock_;
  double start_ = 0;
  double last_draw_ = -1;
  size_t drawn_width_ = 0;  // terminal: characters on the line now
};

}  // namespace crashsim
