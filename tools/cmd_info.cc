// `crashsim info [-f qcow2] [--output=human|json] [--backing-chain] IMG`: qemu-img info's fields
// and layout. Like qemu-img's info (which opens with NO_IO and NO_BACKING), it decodes only the
// header: the file is opened read-only, a dirty image is reported and never repaired, a
// corrupt-bit image is shown, and the backing file need not exist. The snapshot table is read for
// qemu's "Snapshot list". With --backing-chain, as qemu-img: every image of the chain, top first
// (human: separated by a blank line; json: an array), a backing file that is not qcow2 shown as
// raw, and an image of the chain that does not open an error with nothing printed.
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include "engine/check/snapshot_table.h"
#include "engine/coding.h"
#include "engine/format/header.h"
#include "engine/posix_device.h"
#include "tools/common.h"

namespace crashsim::tools {
namespace {

struct InfoArgs {
  std::string format = "qcow2";
  std::string output = "human";
  bool backing_chain = false;
  std::string image;
};

struct ImageInfo {
  std::string format = "qcow2";  // or "raw": a backing file of the chain
  uint64_t raw_size = 0;         // the virtual size of a raw file: its length
  QcowHeader header;
  std::vector<SnapshotEntry> snapshots;
  uint64_t actual_size = 0;  // allocated bytes on the host, as stat's st_blocks * 512
  std::string full_backing_filename;
};

// Reads the header of `path` as `format` ("qcow2" or "raw"; empty: probed by the qcow2 magic, as
// qemu-img probes a backing file that names no format).
Result<ImageInfo> ReadInfo(const std::string& path, const std::string& format) {
  ASSIGN_OR_RETURN(std::unique_ptr<PosixDevice> device,
                   PosixDevice::Open(path, PosixOpenOptions{.read_only = true}));
  ASSIGN_OR_RETURN(uint64_t file_size, device->Size());
  std::vector<uint8_t> cluster0(std::min<uint64_t>(file_size, uint64_t{1} << kMaxClusterBits));
  RETURN_IF_ERROR(device->Read(0, cluster0));
  ImageInfo info;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) info.actual_size = static_cast<uint64_t>(st.st_blocks) * 512;
  info.format = format;
  if (info.format.empty()) {
    info.format = cluster0.size() >= 4 && LoadBE32(cluster0.data()) == kQcowMagic ? "qcow2" : "raw";
  }
  if (info.format == "raw") {
    info.raw_size = file_size;
    return info;
  }
  RETURN_IF_ERROR(CheckFormat(info.format, {"qcow2", "raw"}));
  ASSIGN_OR_RETURN(info.header, DecodeHeader(cluster0, file_size));
  const QcowHeader& h = info.header;
  if (h.nb_snapshots > 0) {
    SnapshotTableOptions options{
        .version = h.version, .cluster_size = h.cluster_size(), .virtual_size = h.size};
    ASSIGN_OR_RETURN(SnapshotTable table, ReadSnapshotTable(*device, file_size, h.snapshots_offset,
                                                            h.nb_snapshots, options));
    info.snapshots = std::move(table.entries);
  }
  const std::string& backing = info.header.backing_file;
  size_t slash = path.rfind('/');
  info.full_backing_filename = backing.starts_with('/') || slash == std::string::npos
                                   ? backing
                                   : path.substr(0, slash + 1) + backing;
  return info;
}

const char* Compat(const QcowHeader& h) { return h.version == 2 ? "0.10" : "1.1"; }
const char* CompressionName(const QcowHeader& h) {
  return h.compression_type == CompressionType::kZstd ? "zstd" : "zlib";
}
const char* Bool(bool b) { return b ? "true" : "false"; }

constexpr uint64_t kNanosPerSecond = 1000000000;

// qemu's bdrv_snapshot_dump() table: header, then one row per snapshot.
std::string SnapshotList(const std::vector<SnapshotEntry>& snapshots) {
  std::string out = fmt::format("Snapshot list:\n{:<10}{:<17}{:>8}{:>20}{:>13}{:>11}\n", "ID",
                                "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
  for (const SnapshotEntry& sn : snapshots) {
    std::time_t t = sn.date_sec;
    std::tm tm{};
    localtime_r(&t, &tm);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
    uint64_t secs = sn.vm_clock_nsec / kNanosPerSecond;
    std::string clock = fmt::format("{:02}:{:02}:{:02}.{:03}", secs / 3600, (secs / 60) % 60,
                                    secs % 60, (sn.vm_clock_nsec / 1000000) % 1000);
    std::string icount = sn.icount == ~uint64_t{0} ? "" : std::to_string(sn.icount);
    out += fmt::format("{:<9} {:<16} {:>8}{:>20}{:>13}{:>11}\n", sn.id, sn.name,
                       SizeToStr(sn.vm_state_size), date, clock, icount);
  }
  return out;
}

// qemu-img info's "snapshots" JSON array, in its key order.
std::string SnapshotsJson(const std::vector<SnapshotEntry>& snapshots) {
  std::string out = "[\n";
  for (size_t i = 0; i < snapshots.size(); ++i) {
    const SnapshotEntry& sn = snapshots[i];
    std::string fields;
    if (sn.icount != ~uint64_t{0})
      fields += fmt::format("            \"icount\": {},\n", sn.icount);
    fields += fmt::format(
        "            \"vm-clock-nsec\": {},\n            \"name\": {},\n"
        "            \"date-sec\": {},\n            \"date-nsec\": {},\n"
        "            \"vm-clock-sec\": {},\n            \"id\": {},\n"
        "            \"vm-state-size\": {}\n",
        sn.vm_clock_nsec % kNanosPerSecond, JsonString(sn.name), sn.date_sec, sn.date_nsec,
        sn.vm_clock_nsec / kNanosPerSecond, JsonString(sn.id), sn.vm_state_size);
    out += "        {\n" + fields + "        }" + (i + 1 < snapshots.size() ? ",\n" : "\n");
  }
  return out + "    ]";
}

// qemu's lines for a raw file: what every format shows, and nothing format specific.
std::string RawHumanInfo(const std::string& path, const ImageInfo& info) {
  return fmt::format("image: {}\nfile format: raw\nvirtual size: {} ({} bytes)\ndisk size: {}\n",
                     path, SizeToStr(info.raw_size), info.raw_size, SizeToStr(info.actual_size));
}

std::string HumanInfo(const std::string& path, const ImageInfo& info) {
  if (info.format == "raw") return RawHumanInfo(path, info);
  const QcowHeader& h = info.header;
  std::string out = fmt::format(
      "image: {}\nfile format: qcow2\nvirtual size: {} ({} bytes)\ndisk size: {}\n"
      "cluster_size: {}\n",
      path, SizeToStr(h.size), h.size, SizeToStr(info.actual_size), h.cluster_size());
  if (h.dirty()) out += "cleanly shut down: no\n";
  if (h.has_backing_file()) {
    out += "backing file: " + h.backing_file;
    if (info.full_backing_filename != h.backing_file) {
      out += " (actual path: " + info.full_backing_filename + ")";
    }
    out += "\n";
    if (h.backing_format) out += "backing file format: " + *h.backing_format + "\n";
  }
  if (!info.snapshots.empty()) out += SnapshotList(info.snapshots);
  out += fmt::format("Format specific information:\n    compat: {}\n    compression type: {}\n",
                     Compat(h), CompressionName(h));
  if (h.version >= 3) out += fmt::format("    lazy refcounts: {}\n", Bool(h.lazy_refcounts()));
  out += fmt::format("    refcount bits: {}\n", h.refcount_bits());
  if (h.version >= 3) {
    out += fmt::format("    corrupt: {}\n    extended l2: {}\n", Bool(h.corrupt()),
                       Bool(h.extended_l2()));
  }
  return out;
}

// A JSON object from its members, each already "\"key\": value", four spaces in.
std::string JsonObject(const std::vector<std::string>& members) {
  std::string out = "{\n";
  for (size_t i = 0; i < members.size(); ++i) {
    out += "    " + members[i] + (i + 1 < members.size() ? ",\n" : "\n");
  }
  return out + "}\n";
}

std::string RawJsonInfo(const std::string& path, const ImageInfo& info) {
  return JsonObject({
      fmt::format("\"virtual-size\": {}", info.raw_size),
      fmt::format("\"filename\": {}", JsonString(path)),
      "\"format\": \"raw\"",
      fmt::format("\"actual-size\": {}", info.actual_size),
      "\"dirty-flag\": false",
  });
}

std::string JsonInfo(const std::string& path, const ImageInfo& info) {
  if (info.format == "raw") return RawJsonInfo(path, info);
  const QcowHeader& h = info.header;
  std::vector<std::string> data = {
      fmt::format("\"compat\": \"{}\"", Compat(h)),
      fmt::format("\"compression-type\": \"{}\"", CompressionName(h)),
  };
  if (h.version >= 3)
    data.push_back(fmt::format("\"lazy-refcounts\": {}", Bool(h.lazy_refcounts())));
  data.push_back(fmt::format("\"refcount-bits\": {}", h.refcount_bits()));
  if (h.version >= 3) {
    data.push_back(fmt::format("\"corrupt\": {}", Bool(h.corrupt())));
    data.push_back(fmt::format("\"extended-l2\": {}", Bool(h.extended_l2())));
  }
  // Keys in the order qemu-img 7.2 prints them (its dictionary's order, not alphabetical).
  std::vector<std::string> top;
  if (h.has_backing_file() && h.backing_format) {
    top.push_back(fmt::format("\"backing-filename-format\": {}", JsonString(*h.backing_format)));
  }
  if (!info.snapshots.empty()) top.push_back("\"snapshots\": " + SnapshotsJson(info.snapshots));
  top.insert(top.end(), {
                            fmt::format("\"virtual-size\": {}", h.size),
                            fmt::format("\"filename\": {}", JsonString(path)),
                            fmt::format("\"cluster-size\": {}", h.cluster_size()),
                            "\"format\": \"qcow2\"",
                            fmt::format("\"actual-size\": {}", info.actual_size),
                        });
  std::string specific = "{\n        \"type\": \"qcow2\",\n        \"data\": {\n";
  for (size_t i = 0; i < data.size(); ++i) {
    specific += "            " + data[i] + (i + 1 < data.size() ? ",\n" : "\n");
  }
  specific += "        }\n    }";
  top.push_back("\"format-specific\": " + specific);
  if (h.has_backing_file()) {
    top.push_back(
        fmt::format("\"full-backing-filename\": {}", JsonString(info.full_backing_filename)));
    top.push_back(fmt::format("\"backing-filename\": {}", JsonString(h.backing_file)));
  }
  top.push_back(fmt::format("\"dirty-flag\": {}", Bool(h.dirty())));
  return JsonObject(top);
}

// One image of a backing chain: the name qemu-img shows for it, and its header.
struct ChainLink {
  std::string path;
  ImageInfo info;
};

// The image and, with --backing-chain, each backing file in turn, by its full backing filename
// and its backing format (probed if the header names none). Fails, as qemu-img does, on an image
// that does not open and on a chain that loops.
Result<std::vector<ChainLink>> ReadChain(const InfoArgs& args) {
  std::vector<ChainLink> chain;
  std::set<std::string> seen;
  std::string path = args.image;
  std::string format = args.format;
  for (;;) {
    if (!seen.insert(path).second) {
      return Status::InvalidArgument(
          fmt::format("backing file '{}' creates an infinite loop", path));
    }
    auto info = ReadInfo(path, format);
    if (!info.ok() && chain.empty()) {
      return Status(info.status().code(), CouldNotOpen(path, info.status()));
    }
    if (!info.ok()) {  // worded as the engine words a backing file that does not open
      const ChainLink& parent = chain.back();
      const std::string& name = parent.info.header.backing_file;
      return Status(info.status().code(),
                    fmt::format("Could not open '{}': Could not open backing file '{}': {}{}",
                                parent.path, name, path == name ? "" : path + ": ",
                                OpenFailureReason(path, info.status())));
    }
    chain.push_back(ChainLink{path, std::move(info).value()});
    const ImageInfo& last = chain.back().info;
    if (!args.backing_chain || last.format != "qcow2" || !last.header.has_backing_file()) {
      return chain;
    }
    path = last.full_backing_filename;
    format = last.header.backing_format.value_or("");
  }
}

// Indents every line of `text` by four spaces: an object as an element of qemu's JSON array.
std::string Indent(const std::string& text) {
  std::string out;
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find('\n', begin);
    end = end == std::string::npos ? text.size() : end + 1;
    out += "    " + text.substr(begin, end - begin);
    begin = end;
  }
  return out;
}

int RunInfo(const InfoArgs& args) {
  Status format_ok = CheckFormat(args.format, {"qcow2"});
  if (!format_ok.ok()) return Fail(format_ok);
  auto chain = ReadChain(args);
  if (!chain.ok()) return Fail(chain.status());
  const bool json = args.output == "json";
  if (!args.backing_chain) {
    const ChainLink& only = chain->front();
    fmt::print("{}", json ? JsonInfo(only.path, only.info) : HumanInfo(only.path, only.info));
    return 0;
  }
  // qemu-img: a blank line between images; in JSON, an array of the objects.
  std::string out;
  for (const ChainLink& link : *chain) {
    if (json) {
      std::string object = Indent(JsonInfo(link.path, link.info));
      object.pop_back();  // the newline: a comma or the closing bracket's line follows
      out += (out.empty() ? "[\n" : ",\n") + object;
    } else {
      out += (out.empty() ? "" : "\n") + HumanInfo(link.path, link.info);
    }
  }
  fmt::print("{}", json ? out + "\n]\n" : out);
  return 0;
}

}  // namespace

void AddInfoCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* cmd = app.add_subcommand("info", "show an image's header (qemu-img info fields)");
  AddFormatFlag(cmd, args->format);
  cmd->add_option("--output", args->output, "human or json")
      ->check(CLI::IsMember({"human", "json"}));
  cmd->add_flag("--backing-chain", args->backing_chain,
                "show every image of the backing chain, top first (qemu-img info --backing-chain)");
  cmd->add_option("image", args->image, "image file")->required();
  cmd->callback([args, &exit_code] { exit_code = RunInfo(*args); });
}

}  // namespace crashsim::tools
