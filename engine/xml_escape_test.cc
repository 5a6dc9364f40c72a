#include "engine/xml_escape.h"

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

}  // namespace
}  // namespace crashsim
