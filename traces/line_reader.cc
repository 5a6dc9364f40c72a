// The trace reader's line cursor and word parsers (line_reader.h).
#include "traces/line_reader.h"

#include <fmt/format.h>

#include <charconv>

#include "engine/number_text.h"
#include "traces/trace.h"

namespace crashsim::traces {

std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char c = s[++i];
      out += c == 'n' ? '\n' : c == 'r' ? '\r' : c;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::string_view> LineReader::Next(std::vector<std::string>* comments) {
  while (pos_ < text_.size()) {
    size_t eol = text_.find('\n', pos_);
    size_t end = eol == std::string_view::npos ? text_.size() : eol;
    line_start_ = pos_;
    ++line_no_;
    pos_ = eol == std::string_view::npos ? text_.size() : eol + 1;
    std::string_view line = text_.substr(line_start_, end - line_start_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxTraceLineLength) {
      too_long_ = true;
      return line;
    }
    if (line.empty()) continue;
    if (line.front() == '#') {
      if (comments) {
        std::string_view c = line.substr(1);
        if (!c.empty() && c.front() == ' ') c.remove_prefix(1);
        comments->emplace_back(c);
      }
      continue;
    }
    return line;
  }
  line_start_ = text_.size();
  ++line_no_;
  at_end_ = true;
  return std::nullopt;
}

Status LineReader::Error(const std::string& message) const {
  return Status::Corruption(fmt::format("{}:{} (byte {}{}): {}", name_, line_no_, line_start_,
                                        at_end_ ? ", end of input" : "", message));
}

Result<std::vector<std::string_view>> LineReader::Expect(std::string_view keyword,
                                                         std::string_view shape,
                                                         std::vector<std::string>* comments) {
  std::optional<std::string_view> line = Next(comments);
  if (!line) return Error(fmt::format("expected '{}': the trace is truncated", shape));
  if (too_long_) {
    return Error(
        fmt::format("line longer than {} bytes (expected '{}')", kMaxTraceLineLength, shape));
  }
  std::vector<std::string_view> words = Words(*line);
  if (words.empty() || words[0] != keyword) {
    return Error(fmt::format("expected '{}', got '{}'", shape, Clip(*line)));
  }
  words.erase(words.begin());
  return words;
}

Result<std::string_view> LineReader::Line(std::string_view shape) {
  std::optional<std::string_view> line = Next();
  if (!line) return Error(fmt::format("expected {}: the trace is truncated", shape));
  if (too_long_) return Error(fmt::format("line longer than {} bytes", kMaxTraceLineLength));
  return *line;
}

void LineReader::Restore(Position p) {
  pos_ = p.pos;
  line_start_ = p.line_start;
  line_no_ = p.line_no;
  at_end_ = false;
  too_long_ = false;
}

std::string LineReader::PeekKeyword() {
  const Position mark = Mark();
  std::optional<std::string_view> line = Next();
  std::string word;
  if (line) {
    std::vector<std::string_view> w = Words(*line);
    if (!w.empty()) word = std::string(w[0]);
  }
  Restore(mark);
  return word;
}

bool LineReader::AtEnd() {
  const Position mark = Mark();
  const bool end = !Next().has_value();
  Restore(mark);
  return end;
}

std::string LineReader::Clip(std::string_view s) { return ClipForMessage(s); }

Result<uint64_t> Number(const LineReader& r, std::string_view word, std::string_view what,
                        uint64_t max) {
  auto v = ParseBoundedNumber(word, what, max);
  if (!v.ok()) return r.Error(v.status().message());
  return *v;
}

Result<uint64_t> Hex64(const LineReader& r, std::string_view word, std::string_view what) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), v, 16);
  bool lower = true;  // the canonical form: a flipped case bit must not go unnoticed
  for (char c : word) lower &= !(c >= 'A' && c <= 'F');
  if (word.size() != 16 || !lower || ec != std::errc() || ptr != word.data() + word.size()) {
    return r.Error(
        fmt::format("{}: expected 16 hex digits, got '{}'", what, LineReader::Clip(word)));
  }
  return v;
}

Result<bool> OnOffWord(const LineReader& r, std::string_view w, std::string_view what) {
  if (w == "on") return true;
  if (w == "off") return false;
  return r.Error(fmt::format("{}: expected on or off, got '{}'", what, LineReader::Clip(w)));
}

Status ExpectCount(const LineReader& r, const std::vector<std::string_view>& words, size_t n,
                   std::string_view shape) {
  if (words.size() != n) return r.Error(fmt::format("expected '{}'", shape));
  return Status::Ok();
}

Result<KeyValues> KeyValues::Parse(const LineReader& r, const std::vector<std::string_view>& words,
                                   std::initializer_list<std::string_view> keys,
                                   std::string_view shape,
                                   std::initializer_list<std::string_view> optional_keys) {
  KeyValues kv;
  for (std::string_view w : words) {
    size_t eq = w.find('=');
    std::string_view key = w.substr(0, eq);
    bool known = false;
    for (std::string_view k : keys) known |= k == key;
    for (std::string_view k : optional_keys) known |= k == key;
    if (eq == std::string_view::npos || !known) {
      return r.Error(fmt::format("unexpected '{}' (expected '{}')", LineReader::Clip(w), shape));
    }
    for (auto& [k, v] : kv.pairs_) {
      if (k == key) return r.Error(fmt::format("'{}' given twice", key));
    }
    kv.pairs_.emplace_back(key, w.substr(eq + 1));
  }
  for (std::string_view k : keys) {
    if (!kv.Get(k)) return r.Error(fmt::format("missing '{}=' (expected '{}')", k, shape));
  }
  return kv;
}

std::optional<std::string_view> KeyValues::Get(std::string_view key) const {
  for (auto& [k, v] : pairs_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

}  // namespace crashsim::traces
