// The trace text form: writer and validating reader (FORMAT.md). The reader walks the lines in
// the fixed order the writer emits them; every error says where (file:line, byte offset) and
// what was expected there. Numbers are bounded before anything is sized from them.
#include "traces/trace.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <memory>

#include <zstd.h>

#include "engine/atomic_output_file.h"
#include "engine/protocol.h"
#include "engine/version.h"
#include "simdisk/hash.h"

namespace crashsim::traces {
namespace {

using simdisk::OpKind;

// ---- names ---------------------------------------------------------------------------------

const char* StatusWord(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kIoError: return "io-error";
    case StatusCode::kNoSpace: return "no-space";
    case StatusCode::kCorruption: return "corruption";
    case StatusCode::kInvalidArgument: return "invalid-argument";
    case StatusCode::kNotSupported: return "not-supported";
    case StatusCode::kReadOnly: return "read-only";
    case StatusCode::kNotFound: return "not-found";
  }
  return "?";
}

std::optional<StatusCode> ParseStatusWord(std::string_view w) {
  for (int i = 1; i <= static_cast<int>(StatusCode::kNotFound); ++i) {
    if (w == StatusWord(static_cast<StatusCode>(i))) return static_cast<StatusCode>(i);
  }
  return std::nullopt;
}

std::optional<IoTag> ParseTag(std::string_view w) {
  for (int i = 0; i < kIoTagCount; ++i) {
    if (w == IoTagName(static_cast<IoTag>(i))) return static_cast<IoTag>(i);
  }
  return std::nullopt;
}

std::optional<uint8_t> ParseStep(std::string_view w) {
  for (int i = 1; i < kDurableStepCount; ++i) {
    if (w == DurableStepName(static_cast<DurableStep>(i))) return static_cast<uint8_t>(i);
  }
  return std::nullopt;
}

std::optional<OpKind> ParseOpKind(std::string_view w) {
  for (OpKind k : {OpKind::kRead, OpKind::kWrite, OpKind::kFlush, OpKind::kResize,
                   OpKind::kGuestBegin, OpKind::kGuestAck}) {
    if (w == simdisk::OpKindName(k)) return k;
  }
  return std::nullopt;
}

const char* OrderWord(simdisk::OrderModel o) {
  return o == simdisk::OrderModel::kPrefix ? "prefix" : "any";
}
const char* TearsWord(simdisk::TearShape t) {
  switch (t) {
    case simdisk::TearShape::kNone: return "none";
    case simdisk::TearShape::kPrefix: return "prefix";
    case simdisk::TearShape::kAnySubset: return "any";
  }
  return "?";
}
const char* ContentWord(simdisk::TearContent c) {
  return c == simdisk::TearContent::kGarbage ? "garbage" : "old-or-new";
}
const char* OnOff(bool b) { return b ? "on" : "off"; }

const char* AnchorWord(PortablePoint::Anchor a) {
  switch (a) {
    case PortablePoint::Anchor::kStart: return "start";
    case PortablePoint::Anchor::kBegin: return "begin";
    case PortablePoint::Anchor::kAck: return "ack";
  }
  return "?";
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

// ---- embedded data: zstd-compressed, base64 ------------------------------------------------

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64(std::span<const uint8_t> in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = uint32_t{in[i]} << 16;
    if (i + 1 < in.size()) v |= uint32_t{in[i + 1]} << 8;
    if (i + 2 < in.size()) v |= in[i + 2];
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kBase64[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kBase64[v & 63] : '=';
  }
  return out;
}

// Strict: padded, canonical (unused bits zero), no other characters.
std::optional<std::vector<uint8_t>> Unbase64(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    const size_t pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=') : 0;
    if (pad == 1 && in[i + 2] == '=') return std::nullopt;
    uint32_t v = 0;
    for (size_t j = 0; j < 4; ++j) {
      if (j >= 4 - pad) {
        v <<= 6;
        continue;
      }
      const int d = value(in[i + j]);
      if (d < 0) return std::nullopt;
      v = v << 6 | static_cast<uint32_t>(d);
    }
    if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff))) return std::nullopt;
    out.push_back(static_cast<uint8_t>(v >> 16));
    if (pad < 2) out.push_back(static_cast<uint8_t>(v >> 8));
    if (pad < 1) out.push_back(static_cast<uint8_t>(v));
  }
  return out;
}

std::string EncodeBlob(std::span<const uint8_t> raw) {
  std::vector<uint8_t> packed(ZSTD_compressBound(raw.size()));
  const size_t n = ZSTD_compress(packed.data(), packed.size(), raw.data(), raw.size(), 9);
  INVARIANT(!ZSTD_isError(n));
  packed.resize(n);
  return Base64(packed);
}

// Decodes one data line's payload, which must hold exactly `length` bytes.
std::optional<std::vector<uint8_t>> DecodeBlob(std::string_view text, uint64_t length,
                                               std::string* why) {
  std::optional<std::vector<uint8_t>> packed = Unbase64(text);
  if (!packed) {
    *why = "the data is not canonical base64";
    return std::nullopt;
  }
  const unsigned long long declared = ZSTD_getFrameContentSize(packed->data(), packed->size());
  if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN) {
    *why = "the data is not a zstd frame with a content size";
    return std::nullopt;
  }
  if (declared != length) {
    *why = fmt::format("the data decompresses to {} bytes, the line says {}", declared, length);
    return std::nullopt;
  }
  std::vector<uint8_t> out(length);
  const size_t n = ZSTD_decompress(out.data(), out.size(), packed->data(), packed->size());
  if (ZSTD_isError(n) || n != length) {
    *why = fmt::format("the data does not decompress ({})",
                       ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short");
    return std::nullopt;
  }
  return out;
}

bool AllZero(std::span<const uint8_t> b) {
  for (uint8_t c : b) {
    if (c != 0) return false;
  }
  return true;
}

// ---- the line cursor -----------------------------------------------------------------------

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

class Reader {
 public:
  Reader(std::string_view text, std::string_view name) : text_(text), name_(name) {}

  // The next line that is not blank and not a comment; comments are handed to `comments` when
  // given. nullopt at the end of input.
  std::optional<std::string_view> Next(std::vector<std::string>* comments = nullptr) {
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

  Status Error(const std::string& message) const {
    return Status::Corruption(fmt::format("{}:{} (byte {}{}): {}", name_, line_no_, line_start_,
                                          at_end_ ? ", end of input" : "", message));
  }
  // The next line, which must start with `keyword`; returns its words after the keyword.
  Result<std::vector<std::string_view>> Expect(std::string_view keyword, std::string_view shape,
                                               std::vector<std::string>* comments = nullptr) {
    std::optional<std::string_view> line = Next(comments);
    if (!line) {
      return Error(fmt::format("expected '{}': the trace is truncated", shape));
    }
    if (too_long_) {
      return Error(fmt::format("line longer than {} bytes (expected '{}')", kMaxTraceLineLength,
                               shape));
    }
    std::vector<std::string_view> words = Words(*line);
    if (words.empty() || words[0] != keyword) {
      return Error(fmt::format("expected '{}', got '{}'", shape, Clip(*line)));
    }
    words.erase(words.begin());
    return words;
  }
  // The next line as a whole (for sections with their own syntax).
  Result<std::string_view> Line(std::string_view shape) {
    std::optional<std::string_view> line = Next();
    if (!line) return Error(fmt::format("expected {}: the trace is truncated", shape));
    if (too_long_) return Error(fmt::format("line longer than {} bytes", kMaxTraceLineLength));
    return *line;
  }

  size_t line_start() const { return line_start_; }
  // The first word of the next line that is not blank and not a comment, without consuming it.
  std::string PeekKeyword() {
    size_t save_pos = pos_, save_start = line_start_, save_no = line_no_;
    std::optional<std::string_view> line = Next();
    std::string word;
    if (line) {
      std::vector<std::string_view> w = Words(*line);
      if (!w.empty()) word = std::string(w[0]);
    }
    pos_ = save_pos;
    line_start_ = save_start;
    line_no_ = save_no;
    at_end_ = false;
    too_long_ = false;
    return word;
  }
  bool AtEnd() {
    size_t save_pos = pos_, save_start = line_start_, save_no = line_no_;
    bool end = !Next().has_value();
    pos_ = save_pos;
    line_start_ = save_start;
    line_no_ = save_no;
    at_end_ = false;
    return end;
  }

  static std::string Clip(std::string_view s) {
    return s.size() > 60 ? std::string(s.substr(0, 60)) + "..." : std::string(s);
  }

 private:
  std::string_view text_;
  std::string_view name_;
  size_t pos_ = 0;
  size_t line_start_ = 0;
  size_t line_no_ = 0;
  bool at_end_ = false;
  bool too_long_ = false;
};

Result<uint64_t> Number(const Reader& r, std::string_view word, std::string_view what,
                        uint64_t max = UINT64_MAX) {
  std::string_view digits = word;
  int base = 10;
  if (digits.starts_with("0x")) {
    digits.remove_prefix(2);
    base = 16;
  }
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  if (digits.empty() || ec == std::errc::invalid_argument ||
      ptr != digits.data() + digits.size()) {
    return r.Error(fmt::format("{}: expected a number, got '{}'", what, Reader::Clip(word)));
  }
  if (ec == std::errc::result_out_of_range || v > max) {
    return r.Error(fmt::format("{} {} is out of range (at most {})", what, Reader::Clip(word),
                               max));
  }
  return v;
}

Result<uint64_t> Hex64(const Reader& r, std::string_view word, std::string_view what) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), v, 16);
  bool lower = true;  // the canonical form: a flipped case bit must not go unnoticed
  for (char c : word) lower &= !(c >= 'A' && c <= 'F');
  if (word.size() != 16 || !lower || ec != std::errc() || ptr != word.data() + word.size()) {
    return r.Error(fmt::format("{}: expected 16 hex digits, got '{}'", what, Reader::Clip(word)));
  }
  return v;
}

// "key=value" words in any order; each key at most once, all required keys present.
class KeyValues {
 public:
  static Result<KeyValues> Parse(const Reader& r, const std::vector<std::string_view>& words,
                                 std::initializer_list<std::string_view> keys,
                                 std::string_view shape) {
    KeyValues kv;
    for (std::string_view w : words) {
      size_t eq = w.find('=');
      std::string_view key = w.substr(0, eq);
      bool known = false;
      for (std::string_view k : keys) known |= k == key;
      if (eq == std::string_view::npos || !known) {
        return r.Error(fmt::format("unexpected '{}' (expected '{}')", Reader::Clip(w), shape));
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
  std::optional<std::string_view> Get(std::string_view key) const {
    for (auto& [k, v] : pairs_) {
      if (k == key) return v;
    }
    return std::nullopt;
  }

 private:
  std::vector<std::pair<std::string_view, std::string_view>> pairs_;
};

Result<bool> OnOffWord(const Reader& r, std::string_view w, std::string_view what) {
  if (w == "on") return true;
  if (w == "off") return false;
  return r.Error(fmt::format("{}: expected on or off, got '{}'", what, Reader::Clip(w)));
}

Status ExpectCount(const Reader& r, const std::vector<std::string_view>& words, size_t n,
                   std::string_view shape) {
  if (words.size() != n) return r.Error(fmt::format("expected '{}'", shape));
  return Status::Ok();
}

// ---- sections ------------------------------------------------------------------------------

Status ParseSettings(Reader& r, TraceSettings& s, std::vector<std::string>& comments) {
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("image", "image OPTIONS", &comments));
    for (std::string& c : comments) c = Unescape(c);
    RETURN_IF_ERROR(ExpectCount(r, w, 1, "image OPTIONS"));
    CreateOptions image;
    if (Status st = ParseCreateOptions(w[0], image); !st.ok()) {
      return r.Error("image options: " + st.message());
    }
    if (Status st = image.Validate(); !st.ok()) return r.Error("image options: " + st.message());
    if (!image.backing_file.empty()) return r.Error("image options: backing files are not traced");
    s.image = image;
  }
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("cache", "cache MODE"));
    RETURN_IF_ERROR(ExpectCount(r, w, 1, "cache MODE"));
    auto mode = ParseCacheMode(w[0]);
    if (!mode.ok()) return r.Error(mode.status().message());
    s.cache_mode = *mode;
  }
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("crash", "crash power-loss|process-kill"));
    RETURN_IF_ERROR(ExpectCount(r, w, 1, "crash power-loss|process-kill"));
    if (w[0] == "power-loss") {
      s.crash = simdisk::CrashKind::kPowerLoss;
    } else if (w[0] == "process-kill") {
      s.crash = simdisk::CrashKind::kProcessKill;
    } else {
      return r.Error(fmt::format("expected crash kind power-loss or process-kill, got '{}'",
                                 Reader::Clip(w[0])));
    }
  }
  {
    constexpr std::string_view kShape =
        "model order=any|prefix tears=none|prefix|any content=old-or-new|garbage unit=512|4096";
    ASSIGN_OR_RETURN(auto w, r.Expect("model", kShape));
    ASSIGN_OR_RETURN(KeyValues kv,
                     KeyValues::Parse(r, w, {"order", "tears", "content", "unit"}, kShape));
    std::string_view order = *kv.Get("order"), tears = *kv.Get("tears"),
                     content = *kv.Get("content");
    if (order == "any") {
      s.model.order = simdisk::OrderModel::kAnySubset;
    } else if (order == "prefix") {
      s.model.order = simdisk::OrderModel::kPrefix;
    } else {
      return r.Error(fmt::format("order: expected any or prefix, got '{}'", Reader::Clip(order)));
    }
    if (tears == "none") {
      s.model.tears = simdisk::TearShape::kNone;
    } else if (tears == "prefix") {
      s.model.tears = simdisk::TearShape::kPrefix;
    } else if (tears == "any") {
      s.model.tears = simdisk::TearShape::kAnySubset;
    } else {
      return r.Error(fmt::format("tears: expected none, prefix or any, got '{}'",
                                 Reader::Clip(tears)));
    }
    if (content == "old-or-new") {
      s.model.content = simdisk::TearContent::kOldOrNew;
    } else if (content == "garbage") {
      s.model.content = simdisk::TearContent::kGarbage;
    } else {
      return r.Error(fmt::format("content: expected old-or-new or garbage, got '{}'",
                                 Reader::Clip(content)));
    }
    ASSIGN_OR_RETURN(s.atomic_unit, Number(r, *kv.Get("unit"), "unit", kMaxTraceAtomicUnit));
    if (s.atomic_unit == 0 || (s.atomic_unit & (s.atomic_unit - 1)) != 0) {
      return r.Error(fmt::format("unit {} is not a power of two", s.atomic_unit));
    }
  }
  {
    constexpr std::string_view kShape =
        "explore seed=N k=N budget=N samples=N metadata-first=on|off";
    ASSIGN_OR_RETURN(auto w, r.Expect("explore", kShape));
    ASSIGN_OR_RETURN(KeyValues kv, KeyValues::Parse(r, w, {"seed", "k", "budget", "samples",
                                                           "metadata-first"}, kShape));
    ASSIGN_OR_RETURN(s.seed, Number(r, *kv.Get("seed"), "seed"));
    ASSIGN_OR_RETURN(s.k, Number(r, *kv.Get("k"), "k", 64));
    ASSIGN_OR_RETURN(s.exhaustive_budget, Number(r, *kv.Get("budget"), "budget"));
    ASSIGN_OR_RETURN(s.samples, Number(r, *kv.Get("samples"), "samples"));
    ASSIGN_OR_RETURN(s.metadata_first, OnOffWord(r, *kv.Get("metadata-first"), "metadata-first"));
  }
  {
    constexpr std::string_view kShape =
        "check writes-after-repair=on|off repair-crash-states=N [backing=raw|qcow2] "
        "[fault=KIND#N:EIO|ENOSPC]";
    ASSIGN_OR_RETURN(auto w, r.Expect("check", kShape));
    // backing= and fault= are optional, so they are taken out before the required keys.
    for (auto it = w.begin(); it != w.end(); ++it) {
      if (!it->starts_with("fault=")) continue;
      auto fault = simdisk::ParseFault(it->substr(6));
      if (!fault.ok()) return r.Error(fault.status().message());
      s.fault = *fault;
      w.erase(it);
      break;
    }
    for (auto it = w.begin(); it != w.end(); ++it) {
      if (!it->starts_with("backing=")) continue;
      std::string_view kind = it->substr(8);
      if (kind == "raw") {
        s.backing = BackingKind::kRaw;
      } else if (kind == "qcow2") {
        s.backing = BackingKind::kQcow2;
      } else if (kind == "none") {
        s.backing = BackingKind::kNone;
      } else {
        return r.Error(fmt::format("backing: expected raw, qcow2 or none, got '{}'",
                                   Reader::Clip(kind)));
      }
      w.erase(it);
      break;
    }
    ASSIGN_OR_RETURN(KeyValues kv, KeyValues::Parse(r, w, {"writes-after-repair",
                                                           "repair-crash-states"}, kShape));
    ASSIGN_OR_RETURN(s.writes_after_repair,
                     OnOffWord(r, *kv.Get("writes-after-repair"), "writes-after-repair"));
    ASSIGN_OR_RETURN(s.repair_crash_states,
                     Number(r, *kv.Get("repair-crash-states"), "repair-crash-states", 1 << 20));
  }
  return Status::Ok();
}

Status ParseWorkload(Reader& r, Workload& workload) {
  ASSIGN_OR_RETURN(auto w, r.Expect("workload", "workload OP_COUNT"));
  RETURN_IF_ERROR(ExpectCount(r, w, 1, "workload OP_COUNT"));
  ASSIGN_OR_RETURN(uint64_t count, Number(r, w[0], "workload op count", kMaxTraceOps));
  ASSIGN_OR_RETURN(auto d, r.Expect("disk", "disk SIZE"));
  RETURN_IF_ERROR(ExpectCount(r, d, 1, "disk SIZE"));
  ASSIGN_OR_RETURN(workload.disk_size, Number(r, d[0], "disk size", kMaxTraceDiskSize));
  if (workload.disk_size == 0) return r.Error("disk size 0");
  const std::string disk_line = fmt::format("disk {}\n", workload.disk_size);
  workload.ops.clear();
  for (uint64_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(std::string_view line,
                     r.Line(fmt::format("workload op {} of {}", i, count)));
    auto parsed = Workload::Parse(disk_line + std::string(line));
    if (!parsed.ok() || parsed->ops.size() != 1) {
      std::string why = parsed.ok() ? "expected one operation" : parsed.status().message();
      // Workload::Parse numbers lines of its own input; the location is ours.
      if (size_t colon = why.find(": "); why.starts_with("workload line") && colon != why.npos) {
        why = why.substr(colon + 2);
      }
      return r.Error(fmt::format("workload op {} of {}: {}", i, count, why));
    }
    workload.ops.push_back(parsed->ops[0]);
  }
  return Status::Ok();
}

Result<TraceOp> ParseDeviceOp(const Reader& r, std::string_view line, uint64_t seq,
                              uint64_t count) {
  std::vector<std::string_view> w = Words(line);
  const std::string where = fmt::format("device op {} of {}", seq, count);
  if (w.size() < 2) return r.Error(fmt::format("{}: expected 'SEQ KIND ...'", where));
  ASSIGN_OR_RETURN(uint64_t got_seq, Number(r, w[0], where + " sequence number"));
  if (got_seq != seq) {
    return r.Error(fmt::format("expected device op {}, got op {} (a line is missing or "
                               "repeated)", seq, got_seq));
  }
  TraceOp op;
  std::optional<OpKind> kind = ParseOpKind(w[1]);
  if (!kind) {
    return r.Error(fmt::format("{}: unknown kind '{}' (expected read, write, flush, resize, "
                               "guest-begin, guest-ack)", where, Reader::Clip(w[1])));
  }
  op.kind = *kind;
  size_t i = 2;
  if (op.kind == OpKind::kRead || op.kind == OpKind::kWrite) {
    if (w.size() <= i) return r.Error(where + ": expected OFFSET+LENGTH");
    size_t plus = w[i].find('+');
    if (plus == std::string_view::npos) {
      return r.Error(fmt::format("{}: expected OFFSET+LENGTH, got '{}'", where,
                                 Reader::Clip(w[i])));
    }
    ASSIGN_OR_RETURN(op.offset, Number(r, w[i].substr(0, plus), where + " offset"));
    ASSIGN_OR_RETURN(op.length, Number(r, w[i].substr(plus + 1), where + " length",
                                       UINT64_MAX - op.offset));
    ++i;
  } else if (op.kind == OpKind::kResize) {
    if (w.size() <= i) return r.Error(where + ": expected the new SIZE");
    ASSIGN_OR_RETURN(op.offset, Number(r, w[i], where + " size"));
    ++i;
  }
  bool have_hash = false, have_tag = false;
  for (; i < w.size(); ++i) {
    std::string_view word = w[i];
    if (word == "fua" && op.kind == OpKind::kWrite && !op.fua) {
      op.fua = true;
    } else if (word == "ignored" && (op.kind == OpKind::kWrite || op.kind == OpKind::kFlush) &&
               op.honoured) {
      op.honoured = false;
    } else if (word.starts_with("tag=") && op.kind == OpKind::kWrite && !have_tag) {
      std::optional<IoTag> tag = ParseTag(word.substr(4));
      if (!tag) return r.Error(fmt::format("{}: unknown tag '{}'", where, Reader::Clip(word)));
      op.tag = *tag;
      have_tag = true;
    } else if (word.starts_with("step=") && op.kind == OpKind::kWrite && op.step == 0) {
      std::optional<uint8_t> step = ParseStep(word.substr(5));
      if (!step) return r.Error(fmt::format("{}: unknown step '{}'", where, Reader::Clip(word)));
      op.step = *step;
    } else if (word.starts_with("hash=") && op.kind == OpKind::kWrite && !have_hash) {
      ASSIGN_OR_RETURN(op.data_hash, Hex64(r, word.substr(5), where + " hash"));
      have_hash = true;
    } else if (word.starts_with("guest=") && op.guest_op == simdisk::kNoGuestOp) {
      ASSIGN_OR_RETURN(op.guest_op, Number(r, word.substr(6), where + " guest", kMaxTraceOps));
    } else if (word.starts_with("failed=") && op.status == StatusCode::kOk) {
      std::optional<StatusCode> code = ParseStatusWord(word.substr(7));
      if (!code) {
        return r.Error(fmt::format("{}: unknown status '{}'", where, Reader::Clip(word)));
      }
      op.status = *code;
    } else {
      return r.Error(fmt::format("{}: unexpected '{}' for a {}", where, Reader::Clip(word),
                                 simdisk::OpKindName(op.kind)));
    }
  }
  if (op.kind == OpKind::kWrite && (!have_hash || !have_tag)) {
    return r.Error(fmt::format("{}: a write needs tag= and hash=", where));
  }
  if ((op.kind == OpKind::kGuestBegin || op.kind == OpKind::kGuestAck) &&
      op.guest_op == simdisk::kNoGuestOp) {
    return r.Error(fmt::format("{}: a guest event needs guest=", where));
  }
  return op;
}

Status ParseDeviceOps(Reader& r, std::vector<TraceOp>& ops) {
  ASSIGN_OR_RETURN(auto w, r.Expect("device-ops", "device-ops COUNT"));
  RETURN_IF_ERROR(ExpectCount(r, w, 1, "device-ops COUNT"));
  ASSIGN_OR_RETURN(uint64_t count, Number(r, w[0], "device op count", kMaxTraceOps));
  ops.clear();
  for (uint64_t seq = 0; seq < count; ++seq) {
    ASSIGN_OR_RETURN(std::string_view line,
                     r.Line(fmt::format("device op {} of {}", seq, count)));
    ASSIGN_OR_RETURN(TraceOp op, ParseDeviceOp(r, line, seq, count));
    ops.push_back(op);
  }
  return Status::Ok();
}

// The embedded data of a version 2 trace (FORMAT.md, "Embedded runs"): the initial medium's
// extents, then every successful write's bytes in pieces, each checked against the op's hash.
Status ParseEmbeddedData(Reader& r, const std::vector<TraceOp>& ops, EmbeddedRun& run) {
  {
    constexpr std::string_view kShape = "medium SIZE EXTENTS";
    ASSIGN_OR_RETURN(auto w, r.Expect("medium", kShape));
    RETURN_IF_ERROR(ExpectCount(r, w, 2, kShape));
    ASSIGN_OR_RETURN(run.medium_size, Number(r, w[0], "medium size", kMaxTraceMediumSize));
    ASSIGN_OR_RETURN(uint64_t count, Number(r, w[1], "medium extent count", kMaxTraceOps));
    uint64_t end = 0;
    for (uint64_t i = 0; i < count; ++i) {
      const std::string shape = fmt::format("m OFFSET LENGTH DATA (medium extent {} of {})", i,
                                            count);
      ASSIGN_OR_RETURN(auto m, r.Expect("m", shape));
      RETURN_IF_ERROR(ExpectCount(r, m, 3, shape));
      ASSIGN_OR_RETURN(uint64_t offset, Number(r, m[0], "extent offset", run.medium_size));
      ASSIGN_OR_RETURN(uint64_t length, Number(r, m[1], "extent length", kTraceDataPiece));
      if (offset < end) {
        return r.Error(fmt::format("medium extent at {:#x} overlaps or precedes the one before "
                                   "(ending at {:#x})", offset, end));
      }
      if (length == 0 || offset + length > run.medium_size) {
        return r.Error(fmt::format("medium extent {:#x}+{} is empty or past the medium size {}",
                                   offset, length, run.medium_size));
      }
      std::string why;
      auto bytes = DecodeBlob(m[2], length, &why);
      if (!bytes) return r.Error(fmt::format("medium extent {:#x}+{}: {}", offset, length, why));
      end = offset + length;
      run.medium.emplace_back(offset, std::move(*bytes));
    }
  }
  constexpr std::string_view kShape = "data PIECES";
  ASSIGN_OR_RETURN(auto w, r.Expect("data", kShape));
  RETURN_IF_ERROR(ExpectCount(r, w, 1, kShape));
  ASSIGN_OR_RETURN(uint64_t count, Number(r, w[0], "data piece count", kMaxTraceOps));
  run.write_data.assign(ops.size(), {});
  auto needs_data = [&](uint64_t seq) {
    return ops[seq].kind == OpKind::kWrite && ops[seq].status == StatusCode::kOk &&
           ops[seq].length > 0;
  };
  uint64_t next_seq = 0;  // ops before this have all their data
  auto complete_up_to = [&](uint64_t seq) -> Status {
    for (; next_seq < seq; ++next_seq) {
      if (needs_data(next_seq) && run.write_data[next_seq].size() != ops[next_seq].length) {
        return r.Error(fmt::format("device op {} ({}) has {} of its {} data bytes", next_seq,
                                   TraceOpToText(ops[next_seq]),
                                   run.write_data[next_seq].size(), ops[next_seq].length));
      }
    }
    return Status::Ok();
  };
  for (uint64_t i = 0; i < count; ++i) {
    const std::string shape = fmt::format("d SEQ OFFSET LENGTH DATA (data piece {} of {})", i,
                                          count);
    ASSIGN_OR_RETURN(auto d, r.Expect("d", shape));
    RETURN_IF_ERROR(ExpectCount(r, d, 4, shape));
    ASSIGN_OR_RETURN(uint64_t seq, Number(r, d[0], "data op", kMaxTraceOps));
    if (seq >= ops.size() || !needs_data(seq)) {
      return r.Error(fmt::format("data for device op {}, which is not a successful write", seq));
    }
    if (seq < next_seq) {
      return r.Error(fmt::format("data for device op {} after data of op {} (out of order)", seq,
                                 next_seq));
    }
    RETURN_IF_ERROR(complete_up_to(seq));
    std::vector<uint8_t>& data = run.write_data[seq];
    ASSIGN_OR_RETURN(uint64_t offset, Number(r, d[1], "data offset", ops[seq].length));
    ASSIGN_OR_RETURN(uint64_t length, Number(r, d[2], "data length", kTraceDataPiece));
    if (offset != data.size()) {
      return r.Error(fmt::format("device op {}: data piece at {} but {} bytes came before it",
                                 seq, offset, data.size()));
    }
    if (length == 0 || offset + length > ops[seq].length) {
      return r.Error(fmt::format("device op {}: data piece {}+{} is empty or past the write's {} "
                                 "bytes", seq, offset, length, ops[seq].length));
    }
    std::string why;
    auto bytes = DecodeBlob(d[3], length, &why);
    if (!bytes) return r.Error(fmt::format("device op {}: {}", seq, why));
    data.insert(data.end(), bytes->begin(), bytes->end());
    if (data.size() == ops[seq].length) {
      const uint64_t hash = simdisk::HashBytes(data, 0);
      if (hash != ops[seq].data_hash) {
        return r.Error(fmt::format("device op {}: its {} data bytes hash to {:016x}, the op says "
                                   "hash={:016x} (the data is corrupt)", seq, data.size(), hash,
                                   ops[seq].data_hash));
      }
    }
  }
  return complete_up_to(ops.size());
}

// The crash state must name a point of the log and fates of pending writes before it.
Status ValidateState(const Reader& r, const simdisk::CrashState& s,
                     const std::vector<TraceOp>& ops) {
  if (s.point > ops.size()) {
    return r.Error(fmt::format("crash point {} is past the {} device ops", s.point, ops.size()));
  }
  for (const simdisk::WriteFate& f : s.fates) {
    if (f.op >= s.point) {
      return r.Error(fmt::format("fate of op {} is not before the crash point {}", f.op,
                                 s.point));
    }
    OpKind k = ops[f.op].kind;
    if (k != OpKind::kWrite && k != OpKind::kResize) {
      return r.Error(fmt::format("fate of op {}, a {}, not a write or resize", f.op,
                                 simdisk::OpKindName(k)));
    }
  }
  return Status::Ok();
}

Result<PortablePoint> ParsePortablePoint(const Reader& r,
                                         std::vector<std::string_view> w) {
  constexpr std::string_view kShape =
      "crash-point after=start|begin|ack [guest=N] changes=N [last=CLASS#N]";
  PortablePoint p;
  for (size_t i = 0; i < w.size(); ++i) {
    if (!w[i].starts_with("last=")) continue;
    std::string_view v = w[i].substr(5);
    size_t hash = v.find('#');
    if (hash == std::string_view::npos || hash == 0) {
      return r.Error(fmt::format("last: expected CLASS#N, got '{}'", Reader::Clip(v)));
    }
    std::string_view cls = v.substr(0, hash);
    if (cls != "flush" && cls != "resize" && !ParseTag(cls)) {
      return r.Error(fmt::format("last: unknown class '{}' (a write's tag, flush or resize)",
                                 Reader::Clip(cls)));
    }
    p.last = std::string(cls);
    ASSIGN_OR_RETURN(p.last_index, Number(r, v.substr(hash + 1), "last index", kMaxTraceOps));
    if (p.last_index == 0) return r.Error("last index 0 (it counts from 1)");
    w.erase(w.begin() + static_cast<ptrdiff_t>(i));
    break;
  }
  bool start = false;
  for (std::string_view word : w) start |= word == "after=start";
  if (start) {
    ASSIGN_OR_RETURN(KeyValues kv, KeyValues::Parse(r, w, {"after", "changes"}, kShape));
    ASSIGN_OR_RETURN(p.changes, Number(r, *kv.Get("changes"), "changes", kMaxTraceOps));
    return p;
  }
  ASSIGN_OR_RETURN(KeyValues kv, KeyValues::Parse(r, w, {"after", "guest", "changes"}, kShape));
  std::string_view after = *kv.Get("after");
  if (after == "begin") {
    p.anchor = PortablePoint::Anchor::kBegin;
  } else if (after == "ack") {
    p.anchor = PortablePoint::Anchor::kAck;
  } else {
    return r.Error(fmt::format("after: expected start, begin or ack, got '{}'",
                               Reader::Clip(after)));
  }
  ASSIGN_OR_RETURN(p.guest, Number(r, *kv.Get("guest"), "guest", kMaxTraceOps));
  ASSIGN_OR_RETURN(p.changes, Number(r, *kv.Get("changes"), "changes", kMaxTraceOps));
  return p;
}

}  // namespace

// ---- public --------------------------------------------------------------------------------

TraceOp TraceOpFrom(const simdisk::OpRecord& r) {
  TraceOp op;
  op.kind = r.kind;
  op.offset = r.offset;
  op.length = r.length;
  op.fua = r.kind == OpKind::kWrite && r.fua;
  op.honoured = (r.kind == OpKind::kFlush || op.fua) ? r.honoured : true;
  op.tag = r.kind == OpKind::kWrite ? r.tag : IoTag::kUnknown;
  op.data_hash = r.kind == OpKind::kWrite ? r.data_hash : 0;
  op.guest_op = r.guest_op;
  op.status = r.status;
  if (r.kind != OpKind::kRead && r.kind != OpKind::kWrite) op.length = 0;
  if (r.kind != OpKind::kRead && r.kind != OpKind::kWrite && r.kind != OpKind::kResize) {
    op.offset = 0;
  }
  return op;
}

std::string TraceOpToText(const TraceOp& op) {
  std::string text = simdisk::OpKindName(op.kind);
  switch (op.kind) {
    case OpKind::kRead: text += fmt::format(" {:#x}+{}", op.offset, op.length); break;
    case OpKind::kWrite:
      text += fmt::format(" {:#x}+{}{}{} tag={}", op.offset, op.length, op.fua ? " fua" : "",
                          op.honoured ? "" : " ignored", IoTagName(op.tag));
      if (op.step != 0) text += fmt::format(" step={}", DurableStepName(DurableStep{op.step}));
      text += fmt::format(" hash={:016x}", op.data_hash);
      break;
    case OpKind::kFlush:
      if (!op.honoured) text += " ignored";
      break;
    case OpKind::kResize: text += fmt::format(" {:#x}", op.offset); break;
    case OpKind::kGuestBegin:
    case OpKind::kGuestAck: break;
  }
  if (op.guest_op != simdisk::kNoGuestOp) text += fmt::format(" guest={}", op.guest_op);
  if (op.status != StatusCode::kOk) text += fmt::format(" failed={}", StatusWord(op.status));
  return text;
}

std::string PortablePoint::ToText() const {
  std::string s = anchor == Anchor::kStart
                      ? fmt::format("after=start changes={}", changes)
                      : fmt::format("after={} guest={} changes={}", AnchorWord(anchor), guest,
                                    changes);
  if (!last.empty()) s += fmt::format(" last={}#{}", last, last_index);
  return s;
}

std::string ChangeClass(const TraceOp& op) {
  switch (op.kind) {
    case OpKind::kWrite: return IoTagName(op.tag);
    case OpKind::kFlush: return "flush";
    case OpKind::kResize: return "resize";
    default: return "";
  }
}

const char* VerdictName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kClean: return "clean";
    case Outcome::kLeaksOnly: return "leaks-only";
    case Outcome::kDirtyRepaired: return "dirty-repaired";
    case Outcome::kFailure: return "failure";
  }
  return "?";
}

std::optional<Outcome> ParseVerdict(std::string_view word) {
  for (int i = 0; i < kOutcomeCount; ++i) {
    if (word == VerdictName(static_cast<Outcome>(i))) return static_cast<Outcome>(i);
  }
  return std::nullopt;
}

TraceSettings SettingsFrom(const ExploreOptions& o) {
  TraceSettings s;
  s.image = o.image;
  s.cache_mode = o.cache_mode;
  s.crash = o.crash;
  s.model = o.model;
  s.atomic_unit = o.atomic_unit;
  s.seed = o.seed;
  s.k = o.k;
  s.exhaustive_budget = o.exhaustive_budget;
  s.samples = o.samples;
  s.metadata_first = o.metadata_first;
  s.writes_after_repair = o.writes_after_repair;
  s.repair_crash_states = o.repair_crash_states;
  s.backing = o.backing;
  s.fault = o.fault;
  return s;
}

bool TraceSettings::operator==(const TraceSettings& o) const {
  return image.ToString() == o.image.ToString() && cache_mode == o.cache_mode &&
         crash == o.crash && model.order == o.model.order && model.tears == o.model.tears &&
         model.content == o.model.content && atomic_unit == o.atomic_unit && seed == o.seed &&
         k == o.k && exhaustive_budget == o.exhaustive_budget && samples == o.samples &&
         metadata_first == o.metadata_first && writes_after_repair == o.writes_after_repair &&
         repair_crash_states == o.repair_crash_states && backing == o.backing &&
         fault.has_value() == o.fault.has_value() &&
         (!fault || simdisk::FaultText(*fault) == simdisk::FaultText(*o.fault));
}

ExploreOptions ExploreOptionsFor(const TraceSettings& s) {
  ExploreOptions o;
  o.image = s.image;
  o.cache_mode = s.cache_mode;
  o.crash = s.crash;
  o.model = s.model;
  o.atomic_unit = s.atomic_unit;
  o.seed = s.seed;
  o.k = s.k;
  o.exhaustive_budget = s.exhaustive_budget;
  o.samples = s.samples;
  o.metadata_first = s.metadata_first;
  o.writes_after_repair = s.writes_after_repair;
  o.repair_crash_states = s.repair_crash_states;
  o.backing = s.backing;
  o.fault = s.fault;
  o.max_failures = 0;
  return o;
}

uint64_t TraceChecksum(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string Trace::ToText() const {
  const TraceSettings& s = settings;
  CreateOptions image = s.image;
  image.size = workload.disk_size;
  const uint32_t version = embedded ? kTraceFormatVersionEmbedded : 1;
  std::string out = fmt::format("crashsim-trace {}\ncrashsim-version {}\n", version,
                                crashsim_version.empty() ? Version() : crashsim_version);
  for (const std::string& c : comments) out += fmt::format("# {}\n", Escape(c));
  out += fmt::format("image {}\ncache {}\ncrash {}\n", image.ToString(),
                     CacheModeName(s.cache_mode), simdisk::CrashKindName(s.crash));
  out += fmt::format("model order={} tears={} content={} unit={}\n", OrderWord(s.model.order),
                     TearsWord(s.model.tears), ContentWord(s.model.content), s.atomic_unit);
  out += fmt::format("explore seed={} k={} budget={} samples={} metadata-first={}\n", s.seed, s.k,
                     s.exhaustive_budget, s.samples, OnOff(s.metadata_first));
  out += fmt::format("check writes-after-repair={} repair-crash-states={}{}{}\n",
                     OnOff(s.writes_after_repair), s.repair_crash_states,
                     s.backing == BackingKind::kNone
                         ? std::string()
                         : std::string(" backing=") + BackingKindName(s.backing),
                     s.fault ? " fault=" + simdisk::FaultText(*s.fault) : std::string());
  if (embedded) {
    out += fmt::format("target {} {}\n", embedded->target, Escape(embedded->target_version));
  }
  out += fmt::format("workload {}\n", workload.ops.size());
  out += workload.ToText();
  out += fmt::format("device-ops {}\n", device_ops.size());
  for (size_t i = 0; i < device_ops.size(); ++i) {
    out += fmt::format("{} {}\n", i, TraceOpToText(device_ops[i]));
  }
  if (embedded) {
    std::string lines;
    uint64_t n = 0;
    for (const auto& [offset, bytes] : embedded->medium) {
      for (size_t at = 0; at < bytes.size(); at += kTraceDataPiece) {
        const size_t len = std::min<size_t>(kTraceDataPiece, bytes.size() - at);
        std::span<const uint8_t> piece(bytes.data() + at, len);
        if (AllZero(piece)) continue;
        lines += fmt::format("m {:#x} {} {}\n", offset + at, len, EncodeBlob(piece));
        ++n;
      }
    }
    out += fmt::format("medium {} {}\n", embedded->medium_size, n) + lines;
    lines.clear();
    n = 0;
    for (size_t seq = 0; seq < embedded->write_data.size(); ++seq) {
      const std::vector<uint8_t>& bytes = embedded->write_data[seq];
      for (size_t at = 0; at < bytes.size(); at += kTraceDataPiece) {
        const size_t len = std::min<size_t>(kTraceDataPiece, bytes.size() - at);
        lines += fmt::format("d {} {} {} {}\n", seq, at, len,
                             EncodeBlob(std::span<const uint8_t>(bytes.data() + at, len)));
        ++n;
      }
    }
    out += fmt::format("data {}\n", n) + lines;
  }
  out += fmt::format("crash-state {}\n", state.ToText());
  out += fmt::format("crash-point {}\n", portable_point.ToText());
  out += fmt::format("verdict {} dirty={}\n", VerdictName(verdict), dirty ? "yes" : "no");
  if (!detail.empty()) out += fmt::format("detail {}\n", Escape(detail));
  out += fmt::format("end {:016x}\n", TraceChecksum(out));
  return out;
}

Result<Trace> Trace::Parse(std::string_view text, std::string_view name) {
  Reader r(text, name);
  Trace t;
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("crashsim-trace", "crashsim-trace VERSION (not a crashsim "
                                                        "trace?)"));
    RETURN_IF_ERROR(ExpectCount(r, w, 1, "crashsim-trace VERSION"));
    ASSIGN_OR_RETURN(uint64_t v, Number(r, w[0], "format version"));
    if (v == 0 || v > kTraceFormatVersion) {
      return r.Error(fmt::format("trace format version {} is not supported: this crashsim ({}) "
                                 "reads versions 1 to {}", v, Version(), kTraceFormatVersion));
    }
    t.format_version = static_cast<uint32_t>(v);
  }
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("crashsim-version", "crashsim-version VERSION"));
    RETURN_IF_ERROR(ExpectCount(r, w, 1, "crashsim-version VERSION"));
    t.crashsim_version = std::string(w[0]);
  }
  RETURN_IF_ERROR(ParseSettings(r, t.settings, t.comments));
  if (t.format_version >= kTraceFormatVersionEmbedded && r.PeekKeyword() == "target") {
    ASSIGN_OR_RETURN(std::string_view line, r.Line("target NAME VERSION"));
    std::vector<std::string_view> w = Words(line);
    if (w.size() < 3) return r.Error("expected 'target NAME VERSION'");
    t.embedded.emplace();
    t.embedded->target = std::string(w[1]);
    const size_t at = line.find(w[2], line.find(w[1]) + w[1].size());
    t.embedded->target_version = Unescape(line.substr(at));
  }
  // ToText() writes version 2 exactly when a run is embedded: a version 2 trace without one
  // would read back as version 1, and the reader accepts only what round-trips.
  if (t.format_version >= kTraceFormatVersionEmbedded && !t.embedded) {
    return r.Error(fmt::format("a version {} trace carries an embedded run, starting with a "
                               "'target NAME VERSION' line (without one it is version 1)",
                               t.format_version));
  }
  RETURN_IF_ERROR(ParseWorkload(r, t.workload));
  if (t.settings.image.size != t.workload.disk_size) {
    return r.Error(fmt::format("the image size {} differs from the workload's disk size {}",
                               t.settings.image.size, t.workload.disk_size));
  }
  RETURN_IF_ERROR(ParseDeviceOps(r, t.device_ops));
  if (t.embedded) RETURN_IF_ERROR(ParseEmbeddedData(r, t.device_ops, *t.embedded));
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("crash-state", "crash-state STATE"));
    std::string joined;
    for (std::string_view word : w) joined += (joined.empty() ? "" : " ") + std::string(word);
    auto state = simdisk::CrashState::Parse(joined);
    if (!state.ok()) return r.Error("crash-state: " + state.status().message());
    if (state->kind != t.settings.crash) {
      return r.Error(fmt::format("crash-state is a {} but the header says crash {}",
                                 simdisk::CrashKindName(state->kind),
                                 simdisk::CrashKindName(t.settings.crash)));
    }
    RETURN_IF_ERROR(ValidateState(r, *state, t.device_ops));
    t.state = *state;
  }
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("crash-point", "crash-point after=... changes=N"));
    ASSIGN_OR_RETURN(t.portable_point, ParsePortablePoint(r, w));
  }
  {
    constexpr std::string_view kShape = "verdict clean|leaks-only|dirty-repaired|failure dirty=yes|no";
    ASSIGN_OR_RETURN(auto w, r.Expect("verdict", kShape));
    if (w.size() != 2 || (w[1] != "dirty=yes" && w[1] != "dirty=no")) {
      return r.Error(fmt::format("expected '{}'", kShape));
    }
    std::optional<Outcome> v = ParseVerdict(w[0]);
    if (!v) return r.Error(fmt::format("unknown verdict '{}' (expected '{}')", Reader::Clip(w[0]), kShape));
    t.verdict = *v;
    t.dirty = w[1] == "dirty=yes";
  }
  ASSIGN_OR_RETURN(std::string_view line, r.Line("'detail TEXT' or 'end CHECKSUM'"));
  if (line.starts_with("detail ")) {
    t.detail = Unescape(line.substr(7));
    ASSIGN_OR_RETURN(line, r.Line("'end CHECKSUM'"));
  }
  const size_t end_start = r.line_start();
  std::vector<std::string_view> w = Words(line);
  if (w.size() != 2 || w[0] != "end") {
    return r.Error(fmt::format("expected 'end CHECKSUM', got '{}'", Reader::Clip(line)));
  }
  ASSIGN_OR_RETURN(uint64_t sum, Hex64(r, w[1], "checksum"));
  const uint64_t computed = TraceChecksum(text.substr(0, end_start));
  if (sum != computed) {
    return r.Error(fmt::format("checksum mismatch: the end line says {:016x}, the {} bytes "
                               "before it hash to {:016x} (the trace was edited or corrupted)",
                               sum, end_start, computed));
  }
  if (text.size() == end_start + line.size() || text[end_start + line.size()] != '\n') {
    return r.Error("the end line has no newline: the trace is truncated");
  }
  if (!r.AtEnd()) {
    r.Next();
    return r.Error("unexpected data after the end line");
  }
  return t;
}

Result<Trace> ReadTraceFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return Status::NotFound(fmt::format("{}: cannot open the trace", path));
  std::string text;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxTraceOps * 256) {
      return Status::InvalidArgument(fmt::format("{}: larger than any trace ({} bytes read)", path,
                                                 text.size()));
    }
  }
  if (std::ferror(f.get())) return Status::IoError(fmt::format("{}: read error", path));
  return Trace::Parse(text, path);
}

Status WriteTraceFile(const std::string& path, const Trace& trace) {
  return WriteFileAtomically(path, trace.ToText());
}

}  // namespace crashsim::traces
