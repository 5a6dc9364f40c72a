// Image creation and open options in qemu-img's syntax: the "-o key=value"
// creation options with qemu-img's validation rules and messages, qemu's size syntax, and the
// default backing-file opener. Pure parsing except PosixBackingOpener, which opens files through
// PosixDevice (never the OS directly).
#include "engine/options.h"

#include <fmt/format.h>

#include <bit>
#include <cctype>
#include <charconv>
#include <limits>
#include <utility>
#include <vector>

#include "engine/format/entries.h"
#include "engine/posix_device.h"

namespace crashsim {
namespace {

constexpr uint64_t kMinClusterSize = uint64_t{1} << kMinClusterBits;
constexpr uint64_t kMaxClusterSize = uint64_t{1} << kMaxClusterBits;
constexpr uint64_t kMinExtendedL2ClusterSize = 16384;
constexpr uint64_t kMaxSize = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
constexpr const char* kUseCompat11 = "(use compat=1.1 or greater)";

const char* OnOff(bool b) { return b ? "on" : "off"; }

Result<bool> ParseBool(std::string_view key, std::string_view value) {
  if (value == "on" || value == "true" || value == "yes") return true;
  if (value == "off" || value == "false" || value == "no") return false;
  return Status::InvalidArgument(
      fmt::format("Parameter '{}' expects 'on' or 'off', not '{}'", key, value));
}

Result<uint64_t> ParseDecimal(std::string_view key, std::string_view value) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
    return Status::InvalidArgument(
        fmt::format("Parameter '{}' expects a number, not '{}'", key, value));
  }
  return n;
}

// Splits "a=1,b=2" at single commas; ",," is an escaped comma (qemu's option syntax).
std::vector<std::string> SplitOptions(std::string_view text) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != ',') {
      parts.back() += text[i];
    } else if (i + 1 < text.size() && text[i + 1] == ',') {
      parts.back() += ',';
      ++i;
    } else {
      parts.emplace_back();
    }
  }
  return parts;
}

std::string EscapeCommas(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

// Options qemu-img knows for qcow2 that this engine does not implement.
bool IsUnsupportedQemuKey(std::string_view key) {
  return key == "data_file" || key == "data_file_raw" || key == "encryption" ||
         key.starts_with("encrypt.") || key == "encrypt";
}

Status ApplyOption(std::string_view key, std::string_view value, CreateOptions& o) {
  if (key == "compat") {
    if (value == "0.10" || value == "v2") {
      o.version = 2;
    } else if (value == "1.1" || value == "v3") {
      o.version = 3;
    } else {
      return Status::InvalidArgument(fmt::format(
          "Parameter 'compat' does not accept value '{}' (valid: 0.10, v2, 1.1, v3)", value));
    }
  } else if (key == "cluster_size") {
    ASSIGN_OR_RETURN(o.cluster_size, ParseSize(value));
  } else if (key == "size") {
    ASSIGN_OR_RETURN(o.size, ParseSize(value));
  } else if (key == "lazy_refcounts") {
    ASSIGN_OR_RETURN(o.lazy_refcounts, ParseBool(key, value));
  } else if (key == "extended_l2") {
    ASSIGN_OR_RETURN(o.extended_l2, ParseBool(key, value));
  } else if (key == "refcount_bits") {
    ASSIGN_OR_RETURN(uint64_t bits, ParseDecimal(key, value));
    if (bits > 64 || !std::has_single_bit(bits)) {
      return Status::InvalidArgument(
          "Refcount width must be a power of two and may not exceed 64 bits");
    }
    o.refcount_bits = static_cast<uint32_t>(bits);
  } else if (key == "compression_type") {
    if (value == "zlib") {
      o.compression_type = CompressionType::kDeflate;
    } else if (value == "zstd") {
      o.compression_type = CompressionType::kZstd;
    } else {
      return Status::InvalidArgument(fmt::format(
          "Parameter 'compression_type' does not accept value '{}' (valid: zlib, zstd)", value));
    }
  } else if (key == "preallocation") {
    if (value == "off") {
      o.preallocation = Preallocation::kOff;
    } else if (value == "metadata") {
      o.preallocation = Preallocation::kMetadata;
    } else if (value == "falloc" || value == "full") {
      return Status::NotSupported(fmt::format(
          "preallocation={} is not supported by crashsim (supported: off, metadata)", value));
    } else {
      return Status::InvalidArgument(fmt::format(
          "Parameter 'preallocation' does not accept value '{}' (valid: off, metadata)", value));
    }
  } else if (key == "backing_file") {
    o.backing_file = std::string(value);
  } else if (key == "backing_fmt") {
    o.backing_format = std::string(value);
  } else if (IsUnsupportedQemuKey(key)) {
    return Status::NotSupported(fmt::format("Parameter '{}' is not supported by crashsim", key));
  } else {
    return Status::InvalidArgument(fmt::format("Invalid parameter '{}'", key));
  }
  return Status::Ok();
}

uint64_t SuffixMultiplier(char c) {
  switch (std::tolower(static_cast<unsigned char>(c))) {
    case 'b':
      return 1;
    case 'k':
      return uint64_t{1} << 10;
    case 'm':
      return uint64_t{1} << 20;
    case 'g':
      return uint64_t{1} << 30;
    case 't':
      return uint64_t{1} << 40;
    case 'p':
      return uint64_t{1} << 50;
    case 'e':
      return uint64_t{1} << 60;
    default:
      return 0;
  }
}

Status SizeSyntaxError(std::string_view text) {
  return Status::InvalidArgument(
      fmt::format("Invalid size '{}': expected a number with an optional suffix k, M, G, T, P or E "
                  "(binary multiples) or b (bytes)",
                  text));
}

bool IsHexDigit(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// qemu's path_has_protocol(): a ':' before any '/' names a protocol ("nbd:", "json:", "file:").
bool HasProtocolPrefix(const std::string& name) {
  size_t colon = name.find(':');
  if (colon == std::string::npos) return false;
  return name.find('/') > colon;
}

std::string ResolveBackingName(const std::string& image_path, const std::string& name) {
  if (name.starts_with('/')) return name;
  size_t slash = image_path.rfind('/');
  if (slash == std::string::npos) return name;
  return image_path.substr(0, slash + 1) + name;
}

}  // namespace

Status CreateOptions::Validate() const {
  if (version != 2 && version != 3) {
    return Status::InvalidArgument(fmt::format("Unsupported qcow2 version {}", version));
  }
  if (cluster_size < kMinClusterSize || cluster_size > kMaxClusterSize ||
      !std::has_single_bit(cluster_size)) {
    return Status::InvalidArgument("Cluster size must be a power of two between 512 and 2048k");
  }
  if (refcount_bits == 0 || refcount_bits > 64 || !std::has_single_bit(refcount_bits)) {
    return Status::InvalidArgument(
        "Refcount width must be a power of two and may not exceed 64 bits");
  }
  if (version == 2) {
    if (lazy_refcounts) {
      return Status::InvalidArgument(fmt::format(
          "Lazy refcounts only supported with compatibility level 1.1 and above {}", kUseCompat11));
    }
    if (refcount_bits != 16) {
      return Status::InvalidArgument(fmt::format(
          "Different refcount widths than 16 bits require compatibility level 1.1 or above {}",
          kUseCompat11));
    }
    if (extended_l2) {
      return Status::InvalidArgument(fmt::format(
          "Extended L2 entries are only supported with compatibility level 1.1 and above {}",
          kUseCompat11));
    }
    if (compression_type != CompressionType::kDeflate) {
      return Status::InvalidArgument(fmt::format(
          "Non-zlib compression type is only supported with compatibility level 1.1 and above {}",
          kUseCompat11));
    }
  }
  if (extended_l2 && cluster_size < kMinExtendedL2ClusterSize) {
    return Status::InvalidArgument(fmt::format(
        "Extended L2 entries are only supported with cluster sizes of at least {} bytes",
        kMinExtendedL2ClusterSize));
  }
  if (size % 512 != 0) {
    return Status::InvalidArgument("Image size must be a multiple of 512 bytes");
  }
  if (size > kMaxSize) {
    return Status::InvalidArgument("Image size must be less than 8 EiB");
  }
  Geometry geometry{static_cast<uint32_t>(std::countr_zero(cluster_size)),
                    static_cast<uint32_t>(std::countr_zero(refcount_bits)), extended_l2};
  if (geometry.l1_entries_for(size) > kMaxL1Entries) {
    return Status::InvalidArgument(
        "The image size is too large for file format 'qcow2' (try using a larger cluster size)");
  }
  if (backing_file.empty()) {
    if (!backing_format.empty()) {
      return Status::InvalidArgument("Backing format cannot be used without backing file");
    }
  } else {
    if (backing_file.size() > kMaxBackingFileNameLength) {
      return Status::InvalidArgument(fmt::format("Backing file name too long: {} bytes (limit {})",
                                                 backing_file.size(), kMaxBackingFileNameLength));
    }
    if (!backing_format.empty() && backing_format != "qcow2" && backing_format != "raw") {
      return Status::NotSupported(
          fmt::format("Backing format '{}' is not supported by crashsim (supported: qcow2, raw)",
                      backing_format));
    }
    if (preallocation != Preallocation::kOff && !extended_l2) {
      return Status::InvalidArgument(
          "Backing file and preallocation can only be used at the same time if extended_l2 is "
          "on");
    }
  }
  return Status::Ok();
}

std::string CreateOptions::ToString() const {
  std::string s = fmt::format(
      "compat={},cluster_size={},lazy_refcounts={},refcount_bits={},extended_l2={},"
      "compression_type={},preallocation={},size={}",
      version == 2 ? "0.10" : "1.1", cluster_size, OnOff(lazy_refcounts), refcount_bits,
      OnOff(extended_l2), compression_type == CompressionType::kZstd ? "zstd" : "zlib",
      preallocation == Preallocation::kMetadata ? "metadata" : "off", size);
  if (!backing_file.empty()) s += ",backing_file=" + EscapeCommas(backing_file);
  if (!backing_format.empty()) s += ",backing_fmt=" + EscapeCommas(backing_format);
  return s;
}

Status ParseCreateOptions(std::string_view text, CreateOptions& options) {
  if (text.empty()) return Status::Ok();
  for (const std::string& part : SplitOptions(text)) {
    if (part.empty()) continue;  // "a=1,,"-style trailing commas are harmless
    size_t eq = part.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(fmt::format("Invalid option '{}': expected key=value", part));
    }
    std::string_view key(part.data(), eq);
    std::string_view value(part.data() + eq + 1, part.size() - eq - 1);
    RETURN_IF_ERROR(ApplyOption(key, value, options));
  }
  return Status::Ok();
}

Result<std::string> ParseImageOpts(std::string_view text, OpenOptions& options) {
  std::string filename;
  for (const std::string& part : SplitOptions(text)) {
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(fmt::format("Invalid option '{}': expected key=value", part));
    }
    const std::string_view key(part.data(), eq);
    const std::string_view value(part.data() + eq + 1, part.size() - eq - 1);
    ASSIGN_OR_RETURN(bool overlap, ApplyOverlapCheckOption(key, value, options.overlap_check));
    if (overlap) continue;
    if (key == "driver") {
      if (value != "qcow2") {
        return Status::NotSupported(fmt::format("driver={}: only qcow2 is supported", value));
      }
    } else if (key == "file.filename" || key == "file") {
      filename = std::string(value);
    } else if (key == "file.driver") {
      if (value != "file") {
        return Status::NotSupported(fmt::format("file.driver={}: only file is supported", value));
      }
    } else if (key == "lazy-refcounts") {
      if (value != "on" && value != "off") {
        return Status::InvalidArgument(fmt::format("lazy-refcounts={}: expected on or off", value));
      }
      options.lazy_refcounts = value == "on";
    } else {
      return Status::InvalidArgument(fmt::format(
          "Block format 'qcow2' does not support the option '{}' (supported: driver, "
          "file.filename, file.driver, lazy-refcounts, overlap-check, overlap-check.CLASS)",
          key));
    }
  }
  if (filename.empty()) {
    return Status::InvalidArgument("--image-opts: no file.filename=PATH among the options");
  }
  return filename;
}

Result<uint64_t> ParseSize(std::string_view text) {
  if (text.empty()) return SizeSyntaxError(text);
  if (text.front() == '-') {
    return Status::InvalidArgument(fmt::format("Invalid size '{}': must not be negative", text));
  }
  __extension__ typedef unsigned __int128 Wide;
  const Wide limit = kMaxSize;
  size_t i = 0;
  Wide integer = 0;
  Wide fraction_num = 0;  // fraction digits as an integer ...
  Wide fraction_den = 1;  // ... over this power of ten
  bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  if (hex) {
    i = 2;
    if (!IsHexDigit(text[i])) return SizeSyntaxError(text);
    for (; i < text.size() && IsHexDigit(text[i]); ++i) {
      char c = static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
      integer = integer * 16 + static_cast<unsigned>(IsDigit(c) ? c - '0' : c - 'a' + 10);
      if (integer > limit) break;
    }
  } else {
    if (!IsDigit(text[0])) return SizeSyntaxError(text);
    for (; i < text.size() && IsDigit(text[i]); ++i) {
      integer = integer * 10 + static_cast<unsigned>(text[i] - '0');
      if (integer > limit) break;
    }
    if (i < text.size() && text[i] == '.') {
      ++i;
      if (i >= text.size() || !IsDigit(text[i])) return SizeSyntaxError(text);
      for (; i < text.size() && IsDigit(text[i]); ++i) {
        if (fraction_den < Wide{1000000000000000000ull}) {  // 18 digits are plenty
          fraction_num = fraction_num * 10 + static_cast<unsigned>(text[i] - '0');
          fraction_den *= 10;
        }
      }
    }
  }
  if (integer > limit) {
    return Status::InvalidArgument(
        fmt::format("Invalid size '{}': too large (must be less than 8 EiB)", text));
  }
  uint64_t multiplier = 1;
  if (i < text.size()) {
    multiplier = SuffixMultiplier(text[i]);
    if (multiplier == 0 || i + 1 != text.size()) return SizeSyntaxError(text);
  }
  if (fraction_num != 0 && multiplier == 1) {
    return Status::InvalidArgument(
        fmt::format("Invalid size '{}': a fraction needs a suffix (k, M, G, T, P or E)", text));
  }
  Wide value = integer * multiplier + fraction_num * multiplier / fraction_den;
  if (value > limit) {
    return Status::InvalidArgument(
        fmt::format("Invalid size '{}': too large (must be less than 8 EiB)", text));
  }
  return static_cast<uint64_t>(value);
}

// Its errors say only what went wrong with the backing file: OpenBacking prefixes "Could not open
// backing file 'NAME'" and Image::Open the image's name, so neither is repeated here.
BackingOpener PosixBackingOpener(const std::string& image_path) {
  return [image_path](const std::string& name) -> Result<std::unique_ptr<BlockDevice>> {
    if (name.empty()) return Status::InvalidArgument("the name is empty");
    if (HasProtocolPrefix(name)) {
      return Status::NotSupported(fmt::format(
          "the name has a protocol prefix; crashsim opens backing files only as plain local "
          "paths (write './{}' for a local file with a colon in its name)",
          name));
    }
    std::string path = ResolveBackingName(image_path, name);
    auto device = PosixDevice::Open(path, PosixOpenOptions{.read_only = true});
    // PosixDevice says "PATH: why"; OpenBacking names the backing file, so the resolved path is
    // news only where it differs from that name.
    if (!device.ok() && path == name) {
      std::string why = device.status().message();
      if (why.starts_with(path + ": ")) why.erase(0, path.size() + 2);
      return Status(device.status().code(), why);
    }
    if (!device.ok()) return device.status();
    return std::unique_ptr<BlockDevice>(std::move(device).value());
  };
}

}  // namespace crashsim
