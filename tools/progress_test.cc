#include "tools/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

namespace crashsim {
namespace {

// A meter writing to memory, on a clock the test moves.
class Fixture {
 public:
  explicit Fixture(ProgressStyle style) {
    out_ = open_memstream(&buf_, &size_);
    meter_.emplace("explore", "states", style, out_, [this] { return now_; });
  }
  ~Fixture() {
    meter_.reset();
    std::fclose(out_);
    std::free(buf_);
  }
  void At(double t) { now_ = t; }
  ProgressMeter& meter() { return *meter_; }
  std::string Written() {
    std::fflush(out_);
    return std::string(buf_, size_);
  }

 private:
  double now_ = 100;  // the meter starts here
  char* buf_ = nullptr;
  size_t size_ = 0;
  std::FILE* out_ = nullptr;
  std::optional<ProgressMeter> meter_;
};

TEST(ProgressMeter, QuietWritesNothing) {
  Fixture f(ProgressStyle::kQuiet);
  for (double t : {100.5, 106.0, 120.0}) {
    f.At(t);
    f.meter().Update(10, 100);
  }
  f.meter().Finish();
  EXPECT_EQ(f.Written(), "");
}

TEST(ProgressMeter, PlainWritesALineEveryFewSeconds) {
  Fixture f(ProgressStyle::kPlain);
  f.At(104.9);
  f.meter().Update(10, 100);
  EXPECT_EQ(f.Written(), "") << "a run shorter than the interval stays silent";
  f.At(105);
  f.meter().Update(50, 100);
  const std::string first = "explore 50/100 states (50%), 10/s, 5s left, 5s so far\n";
  EXPECT_EQ(f.Written(), first);
  f.At(109);
  f.meter().Update(90, 100);
  EXPECT_EQ(f.Written(), first) << "the next line waits a whole interval";
  f.At(110);
  f.meter().Update(100, 100);
  f.meter().Finish();
  EXPECT_EQ(f.Written(), first + "explore 100/100 states (100%), 10/s, 10s so far\n");
  EXPECT_EQ(f.Written().find('\r'), std::string::npos) << "no terminal control in a log";
}

TEST(ProgressMeter, TerminalRedrawsOneLineAndClearsIt) {
  Fixture f(ProgressStyle::kTerminal);
  f.At(100.05);
  f.meter().Update(1, 0);
  EXPECT_EQ(f.Written(), "") << "at most ten redraws a second";
  f.At(102);
  f.meter().Update(2000, 0);
  const std::string unknown = "explore 2000 states, 1000/s, 2s so far";
  EXPECT_EQ(f.Written(), "\r" + unknown);
  f.At(104);
  f.meter().Update(1000, 4000);
  const std::string known =
      "explore [######..................] 1000/4000 states (25%), 250/s, 12s left, 4s so far";
  EXPECT_EQ(f.Written(), "\r" + unknown + "\r" + known);
  f.At(105);
  f.meter().Update(1, 0);
  const std::string shorter = "explore 1 states, 0/s, 5s so far";
  // Padded over the longer line before it, so nothing of that one is left on screen.
  EXPECT_EQ(f.Written(), "\r" + unknown + "\r" + known + "\r" + shorter +
                             std::string(known.size() - shorter.size(), ' '));
  const size_t before = f.Written().size();
  f.meter().Finish();
  // The padding is blank already: clearing the last line's own characters empties the line.
  EXPECT_EQ(f.Written().substr(before), "\r" + std::string(shorter.size(), ' ') + "\r");
  f.meter().Finish();
  EXPECT_EQ(f.Written().size(), before + shorter.size() + 2) << "Finish twice clears once";
}

TEST(ProgressMeter, LongRunsShowHoursAndMinutes) {
  Fixture f(ProgressStyle::kPlain);
  EXPECT_EQ(f.meter().Line(3600, 7300, 100 + 3600),
            "explore 3600/7300 states (49%), 1/s, 1h01m left, 1h00m so far");
  EXPECT_EQ(f.meter().Line(10, 100, 100 + 10),
            "explore 10/100 states (10%), 1/s, 1m30s left, 10s so far");
}

}  // namespace
}  // namespace crashsim
