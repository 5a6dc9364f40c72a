#include "tools/junit.h"

#include <gtest/gtest.h>

#include <string>

namespace crashsim {
namespace {

TEST(XmlEscape, MarkupBecomesEntities) {
  EXPECT_EQ(XmlEscape(R"(a<b>&"c'd)"), "a&lt;b&gt;&amp;&quot;c&apos;d");
}

TEST(XmlEscape, KeepsWhatXmlCanHold) {
  EXPECT_EQ(XmlEscape("tab\tline\nret\r"), "tab\tline\nret\r");
  EXPECT_EQ(XmlEscape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(XmlEscape, ReplacesWhatXmlCannotHold) {
  const std::string r = "\xef\xbf\xbd";
  EXPECT_EQ(XmlEscape(std::string("a\0b", 3)), "a" + r + "b") << "NUL";
  EXPECT_EQ(XmlEscape("\x1b[0m"), r + "[0m") << "a control character";
  EXPECT_EQ(XmlEscape("\xff"), r) << "not UTF-8";
  EXPECT_EQ(XmlEscape("\xc3"), r) << "a truncated sequence";
  EXPECT_EQ(XmlEscape("\xc0\xaf"), r + r) << "an overlong '/'";
  EXPECT_EQ(XmlEscape("\xed\xa0\x80"), r + r + r) << "a surrogate";
  EXPECT_EQ(XmlEscape("\xef\xbf\xbe"), r + r + r) << "U+FFFE";
}

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
