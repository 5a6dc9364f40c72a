// Shared helpers for the crashsim subcommands (see tools/common.h).
#include "tools/common.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "engine/posix_device.h"

namespace crashsim::tools {

int Fail(std::string_view message) {
  std::fflush(stdout);
  fmt::print(stderr, "crashsim: {}\n", message);
  return kExitFailure;
}

int Fail(const Status& status) { return Fail(status.message()); }

std::string InFile(const std::string& path, const std::string& message) {
  if (message.starts_with(path + ":")) return message;
  return path + ": " + message;
}

std::string OpenFailureReason(const std::string& path, const Status& why) {
  std::string message = why.message();
  // PosixDevice and the engine name the file as "PATH: reason"; CouldNotOpen names it already.
  if (message.starts_with(path + ": ")) message.erase(0, path.size() + 2);
  return message;
}

std::string CouldNotOpen(const std::string& path, const Status& why) {
  return fmt::format("Could not open '{}': {}", path, OpenFailureReason(path, why));
}

int FailOpen(const std::string& path, const Status& why) { return Fail(CouldNotOpen(path, why)); }

void AddFormatFlag(CLI::App* cmd, std::string& format) {
  cmd->add_option("-f,--format", format, "image format (only qcow2)");
}

Status CheckFormat(const std::string& format, std::initializer_list<std::string_view> allowed) {
  for (std::string_view a : allowed) {
    if (format == a) return Status::Ok();
  }
  std::string list;
  for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  return Status::NotSupported(
      fmt::format("format '{}' is not supported here (supported: {})", format, list));
}

Result<std::unique_ptr<Image>> OpenImageFile(const std::string& path,
                                             const ImageOpenParams& params) {
  PosixOpenOptions device_options;
  device_options.read_only = params.read_only;
  device_options.direct = CacheModeDirect(params.cache_mode);
  ASSIGN_OR_RETURN(std::unique_ptr<PosixDevice> device, PosixDevice::Open(path, device_options));
  OpenOptions options;
  options.read_only = params.read_only;
  options.cache_mode = params.cache_mode;
  options.for_check = params.for_check;
  options.overlap_check = params.overlap_check;
  options.lazy_refcounts = params.lazy_refcounts;
  options.open_backing = PosixBackingOpener(path);
  auto image = Image::Open(std::unique_ptr<BlockDevice>(std::move(device)), options);
  // A read-write open of a dirty image repaired it first; say what was fixed, as QEMU does.
  if (image.ok() && !(*image)->repair_log().empty()) {
    std::fputs((*image)->repair_log().c_str(), stderr);
  }
  return image;
}

Result<Workload> ReadWorkloadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": cannot read the workload file");
  std::stringstream text;
  text << in.rdbuf();
  auto w = Workload::Parse(text.str());
  if (!w.ok()) return w.status().WithContext(path);
  return w;
}

std::string SizeToStr(uint64_t bytes) {
  static const char* const kSuffixes[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
  // As qemu: switch to the next unit once the integer part reaches 1000.
  int exponent = 0;
  std::frexp(static_cast<double>(bytes) / (1000.0 / 1024.0), &exponent);
  int unit = exponent <= 0 ? 0 : (exponent - 1) / 10;
  if (unit > 6) unit = 6;
  double value = static_cast<double>(bytes) / static_cast<double>(uint64_t{1} << (unit * 10));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%0.3g %sB", value, kSuffixes[unit]);
  return buf;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace crashsim::tools
