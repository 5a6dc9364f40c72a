#include "properties/workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <sstream>

#include "engine/number_text.h"

namespace crashsim {
namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

Result<uint64_t> Number(std::string_view word, size_t line, const char* what) {
  uint64_t v = 0;
  if (ParseUnsigned(word, UINT64_MAX, v) != NumberParse::kOk) {
    return Status::InvalidArgument(
        fmt::format("workload line {}: {} '{}' is not a number", line, what, word));
  }
  return v;
}

// What is wrong with `op` on a disk of `size` bytes, or "".
std::string OpProblem(const WorkloadOp& op, uint64_t size) {
  if (op.kind == WorkloadOpKind::kResize) {
    if (op.new_size == 0 || op.new_size % 512 != 0) {
      return fmt::format("size {} is not a positive multiple of 512", op.new_size);
    }
    return "";
  }
  if (!op.TouchesData() && op.kind != WorkloadOpKind::kRead) return "";
  if (op.length == 0 || op.offset > size || op.length > size - op.offset) {
    return fmt::format("range {:#x}+{} is empty or outside the {}-byte disk", op.offset, op.length,
                       size);
  }
  return "";
}

}  // namespace

const char* WorkloadOpKindName(WorkloadOpKind kind) {
  switch (kind) {
    case WorkloadOpKind::kWrite:
      return "write";
    case WorkloadOpKind::kZero:
      return "zero";
    case WorkloadOpKind::kDiscard:
      return "discard";
    case WorkloadOpKind::kFlush:
      return "flush";
    case WorkloadOpKind::kReopen:
      return "reopen";
    case WorkloadOpKind::kRead:
      return "read";
    case WorkloadOpKind::kSnapshot:
      return "snapshot";
    case WorkloadOpKind::kResize:
      return "resize";
    case WorkloadOpKind::kDeleteSnapshot:
      return "delete-snapshot";
    case WorkloadOpKind::kApplySnapshot:
      return "apply-snapshot";
  }
  return "?";
}

namespace {

// The pattern's eight bytes at guest offsets [8 * word_index, 8 * word_index + 8), as the word
// a little-endian load would give. A compressible pattern keeps only each sector's first word
// position-dependent and repeats one word of its own over the rest.
uint64_t PatternWord(uint32_t pattern, uint64_t word_index) {
  if ((pattern & kCompressiblePattern) != 0 && word_index % 64 != 0) {
    return Mix((uint64_t{pattern} << 40) ^ 0xc0ffee0000000000ull);
  }
  return Mix((uint64_t{pattern} << 40) ^ word_index);
}

}  // namespace

uint8_t PatternByte(uint32_t pattern, uint64_t offset) {
  return static_cast<uint8_t>(PatternWord(pattern, offset >> 3) >> ((offset & 7) * 8));
}

namespace {

uint64_t LoadWord(const uint8_t* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}

}  // namespace

void FillPattern(uint32_t pattern, uint64_t offset, std::span<uint8_t> out) {
  size_t i = 0;
  // Bytes up to the first word boundary, then whole words, then the tail.
  while (i < out.size() && ((offset + i) & 7) != 0) {
    out[i] = PatternByte(pattern, offset + i);
    ++i;
  }
  for (; i + 8 <= out.size(); i += 8) {
    uint64_t w = PatternWord(pattern, (offset + i) >> 3);
    if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
    std::memcpy(&out[i], &w, sizeof w);
  }
  for (; i < out.size(); ++i) out[i] = PatternByte(pattern, offset + i);
}

size_t PatternMismatch(uint32_t pattern, uint64_t offset, std::span<const uint8_t> got) {
  size_t i = 0;
  while (i < got.size() && ((offset + i) & 7) != 0) {
    if (got[i] != PatternByte(pattern, offset + i)) return i;
    ++i;
  }
  for (; i + 8 <= got.size(); i += 8) {
    if (LoadWord(&got[i]) != PatternWord(pattern, (offset + i) >> 3)) break;  // find the byte below
  }
  for (; i < got.size(); ++i) {
    if (got[i] != PatternByte(pattern, offset + i)) return i;
  }
  return got.size();
}

std::string WorkloadOp::ToText() const {
  switch (kind) {
    case WorkloadOpKind::kWrite:
      return fmt::format("write {:#x} {} p={}{}", offset, length, pattern,
                         compressed ? " compressed" : "");
    case WorkloadOpKind::kZero:
      return fmt::format("zero {:#x} {}{}", offset, length, unmap ? " unmap" : "");
    case WorkloadOpKind::kDiscard:
      return fmt::format("discard {:#x} {}", offset, length);
    case WorkloadOpKind::kFlush:
      return "flush";
    case WorkloadOpKind::kReopen:
      return "reopen";
    case WorkloadOpKind::kRead:
      return fmt::format("read {:#x} {}", offset, length);
    case WorkloadOpKind::kSnapshot:
      return "snapshot";
    case WorkloadOpKind::kResize:
      return fmt::format("resize {}", new_size);
    case WorkloadOpKind::kDeleteSnapshot:
      return "delete-snapshot";
    case WorkloadOpKind::kApplySnapshot:
      return "apply-snapshot";
  }
  return "?";
}

void showValue(const Workload& workload, std::ostream& os) { os << workload.ToText(); }

std::string Workload::ToText() const {
  std::string out = fmt::format("disk {}\n", disk_size);
  for (const WorkloadOp& op : ops) out += op.ToText() + "\n";
  return out;
}

Result<Workload> Workload::Parse(std::string_view text) {
  Workload w;
  std::vector<size_t> op_lines;  // the line each op came from
  bool have_disk = false;
  size_t line_no = 0;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    auto words = Words(line);
    if (words.empty() || words[0].starts_with("#")) continue;
    std::string_view cmd = words[0];
    auto need = [&](size_t n) -> Status {
      if (words.size() < n) {
        return Status::InvalidArgument(
            fmt::format("workload line {}: '{}' needs {} arguments", line_no, cmd, n - 1));
      }
      return Status::Ok();
    };
    if (cmd == "disk") {
      // One disk size, before the ops: a later one would leave earlier ops outside the disk.
      if (have_disk) {
        return Status::InvalidArgument(fmt::format(
            "workload line {}: a second 'disk' line (the size is given once, on the first line)",
            line_no));
      }
      RETURN_IF_ERROR(need(2));
      if (words.size() > 2) {
        return Status::InvalidArgument(
            fmt::format("workload line {}: unexpected '{}'", line_no, words[2]));
      }
      ASSIGN_OR_RETURN(w.disk_size, Number(words[1], line_no, "disk size"));
      if (w.disk_size == 0 || w.disk_size % 512 != 0) {
        return Status::InvalidArgument(
            fmt::format("workload line {}: disk size {} is not a positive multiple of 512", line_no,
                        w.disk_size));
      }
      have_disk = true;
      continue;
    }
    if (!have_disk) {
      return Status::InvalidArgument(
          fmt::format("workload line {}: expected 'disk SIZE' first", line_no));
    }
    WorkloadOp op;
    if (cmd == "flush" || cmd == "reopen" || cmd == "snapshot" || cmd == "delete-snapshot" ||
        cmd == "apply-snapshot") {
      op.kind = cmd == "flush"             ? WorkloadOpKind::kFlush
                : cmd == "reopen"          ? WorkloadOpKind::kReopen
                : cmd == "snapshot"        ? WorkloadOpKind::kSnapshot
                : cmd == "delete-snapshot" ? WorkloadOpKind::kDeleteSnapshot
                                           : WorkloadOpKind::kApplySnapshot;
      if (words.size() > 1) {
        return Status::InvalidArgument(
            fmt::format("workload line {}: unexpected '{}'", line_no, words[1]));
      }
    } else if (cmd == "write" || cmd == "zero" || cmd == "discard" || cmd == "read") {
      op.kind = cmd == "write"  ? WorkloadOpKind::kWrite
                : cmd == "zero" ? WorkloadOpKind::kZero
                : cmd == "read" ? WorkloadOpKind::kRead
                                : WorkloadOpKind::kDiscard;
      RETURN_IF_ERROR(need(3));
      ASSIGN_OR_RETURN(op.offset, Number(words[1], line_no, "offset"));
      ASSIGN_OR_RETURN(op.length, Number(words[2], line_no, "length"));
      for (size_t i = 3; i < words.size(); ++i) {
        if (op.kind == WorkloadOpKind::kWrite && words[i].starts_with("p=")) {
          ASSIGN_OR_RETURN(uint64_t p, Number(words[i].substr(2), line_no, "pattern"));
          if (p > UINT32_MAX) {
            return Status::InvalidArgument(
                fmt::format("workload line {}: pattern {} is more than 32 bits", line_no, p));
          }
          op.pattern = static_cast<uint32_t>(p);
        } else if (op.kind == WorkloadOpKind::kZero && words[i] == "unmap") {
          op.unmap = true;
        } else if (op.kind == WorkloadOpKind::kWrite && words[i] == "compressed") {
          op.compressed = true;
        } else {
          return Status::InvalidArgument(
              fmt::format("workload line {}: unexpected '{}'", line_no, words[i]));
        }
      }
    } else if (cmd == "resize") {
      op.kind = WorkloadOpKind::kResize;
      RETURN_IF_ERROR(need(2));
      if (words.size() > 2) {
        return Status::InvalidArgument(
            fmt::format("workload line {}: unexpected '{}'", line_no, words[2]));
      }
      ASSIGN_OR_RETURN(op.new_size, Number(words[1], line_no, "size"));
    } else {
      return Status::InvalidArgument(fmt::format(
          "workload line {}: unknown operation '{}' (expected write, zero, discard, read, "
          "flush, reopen, snapshot, delete-snapshot, apply-snapshot, resize)",
          line_no, cmd));
    }
    w.ops.push_back(op);
    op_lines.push_back(line_no);
  }
  if (!have_disk) return Status::InvalidArgument("workload: empty (expected 'disk SIZE')");
  const std::vector<uint64_t> sizes = w.Sizes();
  for (size_t i = 0; i < w.ops.size(); ++i) {
    if (std::string problem = OpProblem(w.ops[i], sizes[i]); !problem.empty()) {
      return Status::InvalidArgument(fmt::format("workload line {}: {}", op_lines[i], problem));
    }
  }
  return w;
}

Status Workload::Validate() const {
  const std::vector<uint64_t> sizes = Sizes();
  for (size_t i = 0; i < ops.size(); ++i) {
    if (std::string problem = OpProblem(ops[i], sizes[i]); !problem.empty()) {
      return Status::InvalidArgument(
          fmt::format("workload op #{} ({}): {}", i, ops[i].ToText(), problem));
    }
  }
  return Status::Ok();
}

std::vector<uint64_t> Workload::Sizes() const {
  std::vector<uint64_t> sizes;
  sizes.reserve(ops.size() + 1);
  uint64_t size = disk_size;
  for (const WorkloadOp& op : ops) {
    sizes.push_back(size);
    if (op.kind == WorkloadOpKind::kResize) size = op.new_size;
  }
  sizes.push_back(size);
  return sizes;
}

uint64_t Workload::MinSize() const {
  const std::vector<uint64_t> sizes = Sizes();
  return *std::min_element(sizes.begin(), sizes.end());
}

}  // namespace crashsim
