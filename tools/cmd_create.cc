// `crashsim create [-f qcow2] [-o OPTS]... [-b BACKING -F FMT] [-q] IMG [SIZE]`: qemu-img
// create's syntax and output. Every option and the backing file are checked before the target
// file is opened, and the image is written under a temporary name that replaces the target only
// once it is complete (AtomicOutputFile), so a failed command never creates, truncates or
// half-writes a file. Like qemu-img, an existing file is overwritten (on success).
#include <fmt/format.h>

#include <string>
#include <vector>

#include "engine/atomic_output_file.h"
#include "engine/posix_device.h"
#include "tools/common.h"

namespace crashsim::tools {
namespace {

struct CreateArgs {
  std::string format = "qcow2";
  std::vector<std::string> options;
  std::string backing_file;
  std::string backing_format;
  bool quiet = false;
  std::string image;
  std::string size;
};

// Whether any -o string names `key` (so the Formatting line shows it as qemu-img does).
bool OptionGiven(const std::vector<std::string>& options, std::string_view key) {
  for (const std::string& o : options) {
    std::string text = "," + o;
    if (text.find("," + std::string(key) + "=") != std::string::npos) return true;
  }
  return false;
}

// Opens the backing file the way the new image will and returns its virtual size.
Result<uint64_t> BackingVirtualSize(const std::string& image, const CreateOptions& o) {
  QcowHeader named;
  named.backing_file = o.backing_file;
  named.backing_format = o.backing_format;
  OpenOptions options;
  options.open_backing = PosixBackingOpener(image);
  ASSIGN_OR_RETURN(std::unique_ptr<GuestReader> backing, OpenBacking(named, options));
  return backing->virtual_size();
}

// qemu-img's line, in its key order.
std::string FormattingLine(const CreateArgs& args, const CreateOptions& o) {
  std::string line = fmt::format("Formatting '{}', fmt=qcow2 cluster_size={} extended_l2={}",
                                 args.image, o.cluster_size, o.extended_l2 ? "on" : "off");
  if (OptionGiven(args.options, "preallocation")) {
    line += fmt::format(" preallocation={}",
                        o.preallocation == Preallocation::kMetadata ? "metadata" : "off");
  }
  line += fmt::format(" compression_type={} size={}",
                      o.compression_type == CompressionType::kZstd ? "zstd" : "zlib", o.size);
  if (!o.backing_file.empty()) line += " backing_file=" + o.backing_file;
  if (!o.backing_format.empty()) line += " backing_fmt=" + o.backing_format;
  if (OptionGiven(args.options, "compat")) {
    line += fmt::format(" compat={}", o.version == 2 ? "0.10" : "1.1");
  }
  line += fmt::format(" lazy_refcounts={} refcount_bits={}", o.lazy_refcounts ? "on" : "off",
                      o.refcount_bits);
  return line;
}

// Everything that can be decided without touching the target file.
Result<CreateOptions> PrepareOptions(const CreateArgs& args) {
  RETURN_IF_ERROR(CheckFormat(args.format, {"qcow2"}));
  CreateOptions o;
  for (const std::string& text : args.options) RETURN_IF_ERROR(ParseCreateOptions(text, o));
  if (!args.backing_file.empty()) o.backing_file = args.backing_file;
  if (!args.backing_format.empty()) o.backing_format = args.backing_format;
  if (!args.size.empty()) {
    auto size = ParseSize(args.size);
    if (!size.ok()) return size.status();
    o.size = *size;
  }
  if (!o.backing_file.empty() && o.backing_format.empty()) {
    return Status::InvalidArgument(
        "Backing file specified without backing format (use -F qcow2 or -F raw)");
  }
  if (o.backing_file.empty() && args.size.empty() && !OptionGiven(args.options, "size")) {
    return Status::InvalidArgument("Image creation needs a size parameter");
  }
  RETURN_IF_ERROR(o.Validate());
  if (!o.backing_file.empty()) {
    ASSIGN_OR_RETURN(uint64_t backing_size, BackingVirtualSize(args.image, o));
    if (args.size.empty() && !OptionGiven(args.options, "size")) {
      o.size = AlignUp(backing_size, 512);
      RETURN_IF_ERROR(o.Validate());
    }
  }
  return o;
}

int RunCreate(const CreateArgs& args) {
  auto prepared = PrepareOptions(args);
  if (!prepared.ok()) return Fail(InFile(args.image, prepared.status().message()));
  const CreateOptions& o = *prepared;
  if (!args.quiet) fmt::print("{}\n", FormattingLine(args, o));
  auto output = AtomicOutputFile::Create(args.image);
  if (!output.ok()) return Fail(output.status());
  auto device = (*output)->Device();
  if (!device.ok()) return Fail(device.status());
  // Backing names resolve next to the target, where the image will live, not the temporary.
  Status st = Image::Create(**device, o, PosixBackingOpener(args.image));
  if (st.ok()) st = (*output)->Commit();
  if (!st.ok()) return Fail(InFile(args.image, st.message()));
  return 0;
}

}  // namespace

void AddCreateCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<CreateArgs>();
  CLI::App* cmd = app.add_subcommand("create", "create a qcow2 image (qemu-img create syntax)");
  AddFormatFlag(cmd, args->format);
  cmd->add_option("-o", args->options, "creation options key=value[,...]; may repeat")
      ->allow_extra_args(false);
  cmd->add_option("-b", args->backing_file, "backing file (relative to the image's directory)");
  cmd->add_option("-F", args->backing_format, "backing file format: qcow2 or raw");
  cmd->add_flag("-q", args->quiet, "quiet: no Formatting line");
  cmd->add_option("image", args->image, "image file to create")->required();
  cmd->add_option("size", args->size, "virtual size, e.g. 64M (optional with -b)");
  cmd->callback([args, &exit_code] { exit_code = RunCreate(*args); });
}

}  // namespace crashsim::tools
