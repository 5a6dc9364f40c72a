// Text made safe for XML 1.0 character data and attributes, for the command line's XML outputs
// (JUnit reports, SVG timelines): markup characters escaped, and characters XML 1.0 cannot
// hold at all (most C0 controls, U+FFFE/U+FFFF, surrogates, invalid or overlong UTF-8)
// replaced by U+FFFD, so a trace path or a finding's text never breaks the document.
#pragma once

#include <string>
#include <string_view>

namespace crashsim {

std::string XmlEscape(std::string_view text);

}  // namespace crashsim
