// `crashsim io [-f qcow2] [-t CACHE] [-r] [--image-opts] IMG -c CMD [-c CMD ...]`: qemu-io's syntax
// and output lines, driving the engine. Commands:
//   write [-P pattern] [-c] [-z [-u]] [-q] OFF LEN   (default pattern 0xcd; -c compressed)
//   read [-P pattern] [-v] [-q] OFF LEN         (-P verifies; -v dumps hex)
//   discard [-q] OFF LEN
//   flush
//   truncate SIZE                                (the guest disk's new size: grows or shrinks)
//   map                                          (the image's allocated ranges, as qemu-io's)
//   sigraise SIGNAL                              (kill the process mid-run, for crash demos)
//   help [COMMAND]                               (lists these commands)
// OFF and LEN take qemu's size suffixes. The default cache mode is writethrough, as qemu-io's.
// As in qemu-io, a failing command does not stop the others; the exit code is then 1. The
// image is closed cleanly at the end unless a sigraise ended the process first.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tools/common.h"

namespace crashsim::tools {
namespace {

// qemu's BDRV_REQUEST_MAX_BYTES: the largest buffered request.
constexpr uint64_t kMaxRequestBytes = INT_MAX & ~uint64_t{511};
constexpr uint8_t kDefaultWritePattern = 0xcd;

struct IoArgs {
  std::string format = "qcow2";
  std::string cache = "writethrough";
  bool read_only = false;
  bool image_opts = false;
  std::vector<std::string> commands;
  std::string image;
};

// One tokenized command: its flags (with their values) and its positional arguments.
struct ParsedCommand {
  std::map<char, std::string> flags;
  std::vector<std::string> args;
  bool has(char flag) const { return flags.count(flag) != 0; }
};

// getopt-style parsing of `tokens` (after the command name). `spec` lists the flags, a ':'
// after a letter meaning it takes a value ("P:zuq"). Flags stop at the first positional.
Result<ParsedCommand> ParseFlags(const std::vector<std::string>& tokens, std::string_view spec) {
  ParsedCommand parsed;
  size_t i = 0;
  for (; i < tokens.size() && tokens[i].size() > 1 && tokens[i][0] == '-'; ++i) {
    const std::string& token = tokens[i];
    for (size_t j = 1; j < token.size(); ++j) {
      size_t pos = spec.find(token[j]);
      if (pos == std::string_view::npos || token[j] == ':') {
        return Status::InvalidArgument(fmt::format("invalid option -- '{}'", token[j]));
      }
      bool takes_value = pos + 1 < spec.size() && spec[pos + 1] == ':';
      if (!takes_value) {
        parsed.flags[token[j]] = "";
        continue;
      }
      if (j + 1 < token.size()) {
        parsed.flags[token[j]] = token.substr(j + 1);
      } else if (i + 1 < tokens.size()) {
        parsed.flags[token[j]] = tokens[++i];
      } else {
        return Status::InvalidArgument(
            fmt::format("option requires an argument -- '{}'", token[j]));
      }
      break;
    }
  }
  parsed.args.assign(tokens.begin() + static_cast<std::ptrdiff_t>(i), tokens.end());
  return parsed;
}

// qemu-io's parse_pattern(): a byte in C syntax (90, 0x5a, 0132).
Result<uint8_t> ParsePattern(const std::string& text) {
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 0);
  if (text.empty() || *end != '\0' || value < 0 || value > 255) {
    return Status::InvalidArgument(text + " is not a valid pattern byte");
  }
  return static_cast<uint8_t>(value);
}

struct Range {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// qemu-io's hex dump: "00000000:  5a 5a ...  ZZ..".
void DumpBuffer(const std::vector<uint8_t>& buf, uint64_t offset) {
  for (size_t i = 0; i < buf.size(); i += 16) {
    std::string line = fmt::format("{:08x}:  ", offset + i);
    size_t n = std::min<size_t>(16, buf.size() - i);
    for (size_t j = 0; j < n; ++j) line += fmt::format("{:02x} ", buf[i + j]);
    line += ' ';
    for (size_t j = 0; j < n; ++j) {
      line += std::isalnum(buf[i + j]) ? static_cast<char>(buf[i + j]) : '.';
    }
    fmt::print("{}\n", line);
  }
}

// qemu-io's cvtstr(): "64 KiB", "63.438 MiB", "512 bytes" (three decimals, ".000" dropped).
std::string IoSizeStr(uint64_t bytes) {
  static const char* const kUnits[] = {" KiB", " MiB", " GiB", " TiB", " PiB", " EiB"};
  for (int i = 5; i >= 0; --i) {
    const uint64_t unit = uint64_t{1} << (10 * (i + 1));
    if (bytes < unit) continue;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(bytes) / static_cast<double>(unit));
    std::string text = buf;
    if (text.ends_with(".000")) text.resize(text.size() - 4);
    return text + kUnits[i];
  }
  return std::to_string(bytes) + " bytes";
}

class IoSession;

// One command of the io subcommand: qemu-io's help line ("NAME ARGS -- ONELINE") and its handler.
struct IoCommand {
  const char* name;
  const char* args;
  const char* oneline;
  bool (IoSession::*run)(const std::vector<std::string>& tokens);
};

class IoSession {
 public:
  explicit IoSession(Image& image) : image_(image) {}

  // Runs one command line; false when it failed (qemu-io then goes on, exit code 1).
  bool Run(const std::string& line);

  // The commands (kIoCommands), each given the words after its name, are public below.

 private:
  static bool Error(const std::string& message) {
    std::fflush(stdout);
    fmt::print(stderr, "{}\n", message);
    return false;
  }

  // Parses "OFF LEN" and checks the range lies inside the image.
  Result<Range> ParseRange(const std::string& command, const ParsedCommand& parsed) {
    if (parsed.args.size() != 2) {
      return Status::InvalidArgument(
          fmt::format("{}: expected OFF LEN, got {} arguments", command, parsed.args.size()));
    }
    auto offset = ParseSize(parsed.args[0]);
    if (!offset.ok()) return offset.status().WithContext(command + ": offset");
    auto length = ParseSize(parsed.args[1]);
    if (!length.ok()) return length.status().WithContext(command + ": length");
    uint64_t size = image_.virtual_size();
    if (*offset > size || *length > size - *offset) {
      return Status::InvalidArgument(
          fmt::format("{}: request of {} bytes at offset {} exceeds the image size {}", command,
                      *length, *offset, size));
    }
    return Range{*offset, *length};
  }

  // qemu-io's result line, "wrote 4096/4096 bytes at offset 0", unless -q.
  static void Report(const ParsedCommand& parsed, const char* verb, const Range& range) {
    if (parsed.has('q')) return;
    fmt::print("{} {}/{} bytes at offset {}\n", verb, range.length, range.length, range.offset);
  }

  // The -P flag's pattern byte, if given.
  static Result<std::optional<uint8_t>> PatternFlag(const ParsedCommand& parsed) {
    if (!parsed.has('P')) return std::optional<uint8_t>();
    ASSIGN_OR_RETURN(uint8_t p, ParsePattern(parsed.flags.at('P')));
    return std::optional<uint8_t>(p);
  }

  static Result<std::vector<uint8_t>> Buffer(const std::string& command, uint64_t length) {
    if (length > kMaxRequestBytes) {
      return Status::InvalidArgument(
          fmt::format("{}: length cannot exceed {}", command, kMaxRequestBytes));
    }
    return std::vector<uint8_t>(length);
  }

 public:
  bool Write(const std::vector<std::string>& tokens) {
    auto parsed = ParseFlags(tokens, "P:zuqc");
    if (!parsed.ok()) return Error("write: " + parsed.status().message());
    bool zero = parsed->has('z');
    if (parsed->has('u') && !zero) return Error("write: -u requires -z to be specified");
    if (parsed->has('P') && zero)
      return Error("write: -z and -P cannot be specified at the same time");
    auto pattern = PatternFlag(*parsed);
    if (!pattern.ok()) return Error(pattern.status().message());
    auto range = ParseRange("write", *parsed);
    if (!range.ok()) return Error(range.status().message());
    Status st;
    if (zero) {
      st = image_.WriteZeroes(range->offset, range->length, parsed->has('u'));
    } else {
      auto buf = Buffer("write", range->length);
      if (!buf.ok()) return Error(buf.status().message());
      std::fill(buf->begin(), buf->end(), pattern->value_or(kDefaultWritePattern));
      // -c: whole clusters, compressed (with -z, qemu-io writes zeros as usual).
      st = parsed->has('c') ? image_.WriteCompressed(range->offset, *buf)
                            : image_.Write(range->offset, *buf);
    }
    if (!st.ok()) return Error("write failed: " + st.message());
    Report(*parsed, "wrote", *range);
    return true;
  }

  bool Read(const std::vector<std::string>& tokens) {
    auto parsed = ParseFlags(tokens, "P:vq");
    if (!parsed.ok()) return Error("read: " + parsed.status().message());
    auto pattern_flag = PatternFlag(*parsed);
    if (!pattern_flag.ok()) return Error(pattern_flag.status().message());
    std::optional<uint8_t> pattern = *pattern_flag;
    auto range = ParseRange("read", *parsed);
    if (!range.ok()) return Error(range.status().message());
    auto buf = Buffer("read", range->length);
    if (!buf.ok()) return Error(buf.status().message());
    Status st = image_.Read(range->offset, *buf);
    if (!st.ok()) return Error("read failed: " + st.message());
    bool ok = true;
    if (pattern) {
      auto bad = std::find_if(buf->begin(), buf->end(), [&](uint8_t b) { return b != *pattern; });
      if (bad != buf->end()) {
        fmt::print("Pattern verification failed at offset {}, {} bytes\n", range->offset,
                   range->length);
        uint64_t at = range->offset + static_cast<uint64_t>(bad - buf->begin());
        std::fflush(stdout);
        fmt::print(stderr, "first mismatch at offset {}: expected {:#04x}, read {:#04x}\n", at,
                   *pattern, *bad);
        ok = false;
      }
    }
    if (parsed->has('v')) DumpBuffer(*buf, range->offset);
    Report(*parsed, "read", *range);
    return ok;
  }

  bool Discard(const std::vector<std::string>& tokens) {
    auto parsed = ParseFlags(tokens, "q");
    if (!parsed.ok()) return Error("discard: " + parsed.status().message());
    auto range = ParseRange("discard", *parsed);
    if (!range.ok()) return Error(range.status().message());
    Status st = image_.Discard(range->offset, range->length);
    if (!st.ok()) return Error("discard failed: " + st.message());
    Report(*parsed, "discard", *range);
    return true;
  }

  bool Flush(const std::vector<std::string>& tokens) {
    if (!tokens.empty()) return Error("flush: takes no arguments");
    Status st = image_.Flush();
    if (!st.ok()) return Error("flush failed: " + st.message());
    return true;
  }

  // qemu-io's truncate: no --shrink guard (qemu-io has none), preallocation off.
  bool Truncate(const std::vector<std::string>& tokens) {
    auto parsed = ParseFlags(tokens, "");
    if (!parsed.ok()) return Error("truncate: " + parsed.status().message());
    if (parsed->args.size() != 1) return Error("truncate: expected SIZE");
    auto size = ParseSize(parsed->args[0]);
    if (!size.ok()) return Error("truncate: " + size.status().message());
    Status st = image_.Resize(*size);
    if (!st.ok()) return Error("truncate: " + st.message());
    return true;
  }

  bool Sigraise(const std::vector<std::string>& tokens) {
    char* end = nullptr;
    long sig = tokens.size() == 1 ? std::strtol(tokens[0].c_str(), &end, 10) : 0;
    if (tokens.size() != 1 || *end != '\0' || sig <= 0 || sig >= NSIG) {
      return Error("sigraise: expected a signal number, e.g. sigraise 9");
    }
    std::fflush(stdout);
    std::fflush(stderr);
    std::raise(static_cast<int>(sig));
    return true;
  }

  // qemu-io's map: the runs of clusters the image's own L2 tables map (data, zero or compressed:
  // "allocated") and of the rest, which read from the backing file or as zeros.
  bool Map(const std::vector<std::string>& tokens) {
    if (!tokens.empty()) return Error("map: takes no arguments");
    if (image_.geometry().extended_l2) {
      return Error("map: images with subclusters (extended_l2=on) are not supported");
    }
    const uint64_t cluster_size = image_.geometry().cluster_size();
    const uint64_t size = image_.virtual_size();
    std::vector<Range> allocated;  // merged, in guest order
    Status st = image_.ForEachMappedCluster([&](uint64_t guest_offset, ClusterType) {
      const uint64_t end = std::min(guest_offset + cluster_size, size);
      if (!allocated.empty() && allocated.back().offset + allocated.back().length == guest_offset) {
        allocated.back().length = end - allocated.back().offset;
      } else {
        allocated.push_back(Range{guest_offset, end - guest_offset});
      }
      return Status::Ok();
    });
    if (!st.ok()) return Error("map failed: " + st.message());
    auto print = [](uint64_t offset, uint64_t length, const char* what) {
      fmt::print("{} ({:#x}) bytes {} at offset {} ({:#x})\n", IoSizeStr(length), length, what,
                 IoSizeStr(offset), offset);
    };
    uint64_t offset = 0;
    for (const Range& run : allocated) {
      if (run.offset > offset) print(offset, run.offset - offset, "not allocated");
      print(run.offset, run.length, "    allocated");
      offset = run.offset + run.length;
    }
    if (offset < size) print(offset, size - offset, "not allocated");
    return true;
  }

  bool Help(const std::vector<std::string>& tokens);

 private:
  Image& image_;
};

// In qemu-io's order (by name), with its argument syntax where crashsim takes the same.
constexpr IoCommand kIoCommands[] = {
    {"discard", "[-q] off len", "discards a number of bytes at a specified offset",
     &IoSession::Discard},
    {"flush", "", "flush all in-core file state to disk", &IoSession::Flush},
    {"help", "[command]", "help for one or all commands", &IoSession::Help},
    {"map", "", "prints the allocated areas of a file", &IoSession::Map},
    {"read", "[-qv] [-P pattern] off len", "reads a number of bytes at a specified offset",
     &IoSession::Read},
    {"sigraise", "signal", "raises a signal", &IoSession::Sigraise},
    {"truncate", "off", "truncates the current file at the given offset", &IoSession::Truncate},
    {"write", "[-cquz] [-P pattern] off len", "writes a number of bytes at a specified offset",
     &IoSession::Write},
};

const IoCommand* FindIoCommand(const std::string& name) {
  for (const IoCommand& command : kIoCommands) {
    if (name == command.name) return &command;
  }
  return nullptr;
}

void PrintIoCommand(const IoCommand& command) {
  fmt::print("{} {} -- {}\n", command.name, command.args, command.oneline);
}

bool IoSession::Run(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> tokens;
  for (std::string t; in >> t;) tokens.push_back(t);
  if (tokens.empty()) return true;
  std::string name = tokens.front();
  tokens.erase(tokens.begin());
  const IoCommand* command = FindIoCommand(name);
  if (command == nullptr) return Error(fmt::format("command \"{}\" not found", name));
  return (this->*command->run)(tokens);
}

// "help": every command's line; "help NAME": that command's.
bool IoSession::Help(const std::vector<std::string>& tokens) {
  if (tokens.size() > 1) return Error("help: expected at most one command name");
  if (tokens.empty()) {
    for (const IoCommand& command : kIoCommands) PrintIoCommand(command);
    return true;
  }
  const IoCommand* command = FindIoCommand(tokens[0]);
  if (command == nullptr) return Error(fmt::format("command {} not found", tokens[0]));
  PrintIoCommand(*command);
  return true;
}

int RunIo(const IoArgs& args) {
  Status format_ok = CheckFormat(args.format, {"qcow2"});
  if (!format_ok.ok()) return Fail(format_ok);
  auto cache = ParseCacheMode(args.cache);
  if (!cache.ok()) return Fail(cache.status());
  ImageOpenParams params{.read_only = args.read_only, .cache_mode = *cache};
  std::string path = args.image;
  if (args.image_opts) {
    OpenOptions opts;
    auto named = ParseImageOpts(args.image, opts);
    if (!named.ok()) return Fail(named.status());
    path = *named;
    params.overlap_check = opts.overlap_check;
    params.lazy_refcounts = opts.lazy_refcounts;
  }
  auto image = OpenImageFile(path, params);
  if (!image.ok()) return FailOpen(path, image.status());
  IoSession session(**image);
  int exit_code = 0;
  for (const std::string& command : args.commands) {
    if (!session.Run(command)) exit_code = kExitFailure;
  }
  Status closed = (*image)->Close();
  if (!closed.ok()) return Fail(path + ": close failed: " + closed.message());
  return exit_code;
}

}  // namespace

void AddIoCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<IoArgs>();
  CLI::App* cmd = app.add_subcommand("io", "run qemu-io style commands on an image");
  AddFormatFlag(cmd, args->format);
  cmd->add_option("-t,--cache", args->cache,
                  "cache mode: writeback, writethrough, directsync, none, unsafe");
  cmd->add_flag("-r,--read-only", args->read_only, "open the image read-only");
  cmd->add_flag("--image-opts", args->image_opts,
                "IMAGE is an option string, as qemu-io takes it: driver=qcow2,file.filename=PATH"
                ",overlap-check=none|constant|cached (default)|all,overlap-check.CLASS=on|off,"
                "lazy-refcounts=on|off");
  cmd->add_option("-c,--cmd", args->commands,
                  "a command, e.g. 'write -P 0x5a 0 4k'; may repeat; -c help lists them")
      ->allow_extra_args(false);
  cmd->add_option("image", args->image, "image file")->required();
  cmd->callback([args, &exit_code] { exit_code = RunIo(*args); });
}

}  // namespace crashsim::tools
