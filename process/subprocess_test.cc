#include "process/subprocess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crashsim {
namespace {

using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;

TEST(RunCommand, ReportsTheExitStatusAndBothStreams) {
  ProcessResult r = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"}, 10000);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_THAT(r.output, HasSubstr("out\n"));
  EXPECT_THAT(r.output, HasSubstr("err\n"));
}

TEST(RunCommand, PassesArgumentsUnchangedWithoutAShell) {
  ProcessResult r = RunCommand({"printf", "%s|", "two words", "$HOME", "*"}, 10000);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "two words|$HOME|*|");
}

TEST(RunCommand, KillsAChildThatOverstaysItsDeadline) {
  ProcessResult r = RunCommand({"sleep", "30"}, 200);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + 9);  // SIGKILL
}

TEST(RunCommand, AMissingProgramExits127AndSaysSo) {
  ProcessResult r = RunCommand({"crashsim-no-such-program"}, 10000);
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_THAT(r.output, HasSubstr("'crashsim-no-such-program' not found"));
  EXPECT_EQ(RunCommand({}, 1000).exit_code, 127);
}

TEST(Subprocess, FindsProgramsAndItself) {
  EXPECT_THAT(FindProgram("sh"), EndsWith("/sh"));
  EXPECT_EQ(FindProgram("crashsim-no-such-program"), "");
  EXPECT_THAT(SelfExecutable(), EndsWith("/process_test"));
}

TEST(SplitWords, QuotesGroupWordsAndAreRemoved) {
  EXPECT_THAT(SplitWords("qemu-img  check -f qcow2\t'{image} x' \"a'b\"\n"),
              ElementsAre("qemu-img", "check", "-f", "qcow2", "{image} x", "a'b"));
  EXPECT_THAT(SplitWords("''"), ElementsAre(""));
  EXPECT_TRUE(SplitWords("  ").empty());
}

TEST(Interactive, DrivesAChildOneLineAtATime) {
  auto child =
      Interactive::Start({"sh", "-c", "while read l; do echo \"got $l\"; echo '> '; done"});
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  ASSERT_TRUE((*child)->SendLine("one").ok());
  auto first = (*child)->ReadUntil("> \n", 10000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, "got one\n");
  ASSERT_TRUE((*child)->SendLine("two").ok());
  auto second = (*child)->ReadUntil("> \n", 10000);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, "got two\n");
  ProcessResult end = (*child)->Finish(10000);
  EXPECT_EQ(end.exit_code, 0);
  EXPECT_FALSE(end.timed_out);
}

TEST(Interactive, ReadUntilFailsWhenTheChildExitsFirst) {
  auto child = Interactive::Start({"sh", "-c", "echo partial; exit 0"});
  ASSERT_TRUE(child.ok());
  auto r = (*child)->ReadUntil("never", 10000);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT((*child)->output_so_far(), HasSubstr("partial"));
}

}  // namespace
}  // namespace crashsim
