// The trace reader's line cursor and word parsers (FORMAT.md): lines in order, comments set
// aside, every error naming the trace, the line and its byte offset, numbers bounded before
// anything is sized from them. Used by trace.cc and trace_settings.cc only.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/status.h"

namespace crashsim::traces {

// The words of a line, split at runs of spaces.
std::vector<std::string_view> Words(std::string_view line);

// One-line text fields (comments, details, target versions) escape backslash, LF and CR.
std::string Escape(std::string_view s);
std::string Unescape(std::string_view s);

class LineReader {
 public:
  LineReader(std::string_view text, std::string_view name) : text_(text), name_(name) {}

  // The next line that is not blank and not a comment; comments are handed to `comments` when
  // given. nullopt at the end of input.
  std::optional<std::string_view> Next(std::vector<std::string>* comments = nullptr);
  // A Corruption status naming the trace, the current line and its byte offset.
  Status Error(const std::string& message) const;
  // The next line, which must start with `keyword`; returns its words after the keyword.
  Result<std::vector<std::string_view>> Expect(std::string_view keyword, std::string_view shape,
                                               std::vector<std::string>* comments = nullptr);
  // The next line as a whole (for sections with their own syntax).
  Result<std::string_view> Line(std::string_view shape);
  size_t line_start() const { return line_start_; }
  // The first word of the next line that is not blank and not a comment, without consuming it.
  std::string PeekKeyword();
  bool AtEnd();

  // At most 60 characters of `s`, for quoting input in errors.
  static std::string Clip(std::string_view s);

 private:
  struct Position {
    size_t pos, line_start, line_no;
  };
  Position Mark() const { return {pos_, line_start_, line_no_}; }
  void Restore(Position p);

  std::string_view text_;
  std::string_view name_;
  size_t pos_ = 0;
  size_t line_start_ = 0;
  size_t line_no_ = 0;
  bool at_end_ = false;
  bool too_long_ = false;
};

// A decimal or 0x-prefixed number no larger than `max`; `what` names it in errors.
Result<uint64_t> Number(const LineReader& r, std::string_view word, std::string_view what,
                        uint64_t max = UINT64_MAX);
// Exactly 16 lower-case hex digits (checksums, hashes).
Result<uint64_t> Hex64(const LineReader& r, std::string_view word, std::string_view what);
Result<bool> OnOffWord(const LineReader& r, std::string_view w, std::string_view what);
Status ExpectCount(const LineReader& r, const std::vector<std::string_view>& words, size_t n,
                   std::string_view shape);

// "key=value" words in any order; each key at most once, all required `keys` present, the
// `optional_keys` allowed.
class KeyValues {
 public:
  static Result<KeyValues> Parse(const LineReader& r, const std::vector<std::string_view>& words,
                                 std::initializer_list<std::string_view> keys,
                                 std::string_view shape,
                                 std::initializer_list<std::string_view> optional_keys = {});
  std::optional<std::string_view> Get(std::string_view key) const;

 private:
  std::vector<std::pair<std::string_view, std::string_view>> pairs_;
};

}  // namespace crashsim::traces
