// `crashsim resize [-f qcow2] [--shrink] [-q] IMG [+|-]SIZE`: qemu-img resize's syntax, messages
// and exit codes. SIZE takes qemu's suffixes; a leading + or - is relative to the current size.
// Shrinking needs --shrink, as qemu-img has required since 5.1. The engine's Image::Resize does
// the work (engine/resize.cc); the new size is durable when the command exits 0.
#include <fmt/format.h>

#include <string>

#include "tools/common.h"

namespace crashsim::tools {
namespace {

struct ResizeArgs {
  std::string format = "qcow2";
  bool shrink = false;
  bool quiet = false;
  std::string image;
  std::string size;
};

// The new size `text` asks for, given the current one: "1G", "+64k", "-512".
Result<uint64_t> NewSize(const std::string& text, uint64_t current) {
  const bool relative = !text.empty() && (text[0] == '+' || text[0] == '-');
  auto amount = ParseSize(relative ? std::string_view(text).substr(1) : std::string_view(text));
  if (!amount.ok()) return amount.status().WithContext("Invalid image size specified");
  if (!relative) {
    if (*amount == 0) return Status::InvalidArgument("New image size must be positive");
    return *amount;
  }
  if (text[0] == '+') {
    if (*amount > UINT64_MAX - current) {
      return Status::InvalidArgument("Invalid image size specified: too large");
    }
    return current + *amount;
  }
  if (*amount >= current) return Status::InvalidArgument("New image size must be positive");
  return current - *amount;
}

int RunResize(const ResizeArgs& args) {
  Status format_ok = CheckFormat(args.format, {"qcow2"});
  if (!format_ok.ok()) return Fail(format_ok);
  auto image = OpenImageFile(args.image, {.read_only = false});
  if (!image.ok()) return FailOpen(args.image, image.status());
  auto size = NewSize(args.size, (*image)->virtual_size());
  if (!size.ok()) return Fail(size.status());
  if (*size < (*image)->virtual_size() && !args.shrink) {
    Fail("Use the --shrink option to perform a shrink operation.");
    return Fail(
        "warning: Shrinking an image will delete all data beyond the shrunken image's end. "
        "Before performing such an operation, make sure there is no important data there.");
  }
  Status resized = (*image)->Resize(*size);
  if (!resized.ok()) return Fail(InFile(args.image, resized.message()));
  Status closed = (*image)->Close();
  if (!closed.ok()) return Fail(InFile(args.image, "close failed: " + closed.message()));
  if (!args.quiet) fmt::print("Image resized.\n");
  return 0;
}

}  // namespace

void AddResizeCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ResizeArgs>();
  CLI::App* cmd = app.add_subcommand("resize", "change an image's virtual size (qemu-img resize)");
  AddFormatFlag(cmd, args->format);
  cmd->add_flag("--shrink", args->shrink, "allow the size to fall (data past the end is lost)");
  cmd->add_flag("-q", args->quiet, "quiet: no \"Image resized.\" line");
  cmd->add_option("image", args->image, "image file")->required();
  cmd->add_option("size", args->size, "new size, e.g. 2G, +64M or -512 (relative)")->required();
  cmd->callback([args, &exit_code] { exit_code = RunResize(*args); });
}

static const RegisterCommand kRegisterResize(AddResizeCommand);

}  // namespace crashsim::tools
