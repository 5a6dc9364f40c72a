// Progress lines (progress.h).
#include "tools/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace crashsim {
namespace {

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// 1m05s, 3h02m, 42s: the time left, to the precision a person waits by.
std::string Duration(double seconds) {
  const auto s = static_cast<uint64_t>(std::llround(std::max(seconds, 0.0)));
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

constexpr size_t kBarWidth = 24;

}  // namespace

ProgressStyle ProgressStyleFor(bool quiet, int fd) {
  if (quiet) return ProgressStyle::kQuiet;
  return ::isatty(fd) ? ProgressStyle::kTerminal : ProgressStyle::kPlain;
}

ProgressMeter::ProgressMeter(std::string label, std::string unit, ProgressStyle style,
                             std::FILE* out, Clock clock)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      style_(style),
      out_(out),
      clock_(clock ? std::move(clock) : Clock(SteadySeconds)),
      start_(clock_()) {}

std::string ProgressMeter::Line(uint64_t done, uint64_t total, double now) const {
  const double elapsed = now - start_;
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  std::string line = label_ + " ";
  if (total > 0) {
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    if (style_ == ProgressStyle::kTerminal) {
      const auto filled = static_cast<size_t>(fraction * kBarWidth);
      line += "[" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "] ";
    }
    line += fmt::format("{}/{} {} ({:.0f}%)", done, total, unit_, 100 * fraction);
  } else {
    line += fmt::format("{} {}", done, unit_);
  }
  line += fmt::format(", {:.0f}/s", rate);
  // Before a second has passed the rate says little, and an estimate from it less.
  if (total > 0 && rate > 0 && done < total && elapsed >= 1) {
    line += ", " + Duration(static_cast<double>(total - done) / rate) + " left";
  }
  line += ", " + Duration(elapsed) + " so far";
  return line;
}

void ProgressMeter::Update(uint64_t done, uint64_t total) {
  if (style_ == ProgressStyle::kQuiet) return;
  const double now = clock_();
  const double interval = style_ == ProgressStyle::kTerminal ? kTerminalInterval : kPlainInterval;
  // The plain style's first line comes after one interval too: a short run stays silent.
  const double since = last_draw_ < 0 ? now - start_ : now - last_draw_;
  if (since < interval) return;
  last_draw_ = now;
  const std::string line = Line(done, total, now);
  if (style_ == ProgressStyle::kPlain) {
    fmt::print(out_, "{}\n", line);
  } else {
    // Pad over what the previous, longer line left.
    fmt::print(out_, "\r{:<{}}", line, std::max(drawn_width_, line.size()));
    drawn_width_ = line.size();
  }
  std::fflush(out_);
}

void ProgressMeter::Finish() {
  if (style_ != ProgressStyle::kTerminal || drawn_width_ == 0) return;
  fmt::print(out_, "\r{}\r", std::string(drawn_width_, ' '));
  std::fflush(out_);
  drawn_width_ = 0;
}

}  // namespace crashsim
