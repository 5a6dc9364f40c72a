#include "tools/junit.h"

#include <gtest/gtest.h>

#include <string>

namespace crashsim {
namespace {

TEST(ReplayCommand, QuotesForAShell) {
  EXPECT_EQ(ReplayCommand("/t/trace.cstrace"), "crashsim replay '/t/trace.cstrace'");
  EXPECT_EQ(ReplayCommand("/t/it's here"), "crashsim replay '/t/it'\\''s here'");
}

TEST(JunitXml, CountsCasesAndFailures) {
  JunitCase pass;
  pass.classname = "crashsim.explore";
  pass.name = "writethrough lazy_refcounts=off power-loss";
  pass.seconds = 1.5;
  JunitCase failed = pass;
  failed.name = "writeback <b>";
  failed.seconds = 0.25;
  failed.failure_message = "1 failing crash state(s)";
  failed.failure_text = "trace: /t/x\n";
  failed.output = "report";
  const std::string xml = JunitXml("crashsim explore", {pass, failed});
  EXPECT_NE(xml.find("<testsuite name=\"crashsim explore\" tests=\"2\" failures=\"1\" errors=\"0\" "
                     "skipped=\"0\" time=\"1.750\">"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testcase classname=\"crashsim.explore\" name=\"writeback &lt;b&gt;\" "
                     "time=\"0.250\">\n      <failure message=\"1 failing crash state(s)\" "
                     "type=\"failure\">trace: /t/x\n</failure>\n      "
                     "<system-out>report</system-out>"),
            std::string::npos)
      << xml;
  EXPECT_EQ(xml.find("<failure", xml.find("<testcase")), xml.find("<failure"));
  EXPECT_EQ(xml.rfind("<failure"), xml.find("<failure")) << "only the failed case fails";
}

}  // namespace
}  // namespace crashsim
