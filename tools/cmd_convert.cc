// `crashsim convert [-f qcow2] [-O raw] IMG OUT`: exports an image's guest content (through its
// backing chain) to a raw file, the way `qemu-img convert -O raw` does, so interop tests can
// compare what crashsim reads with what QEMU reads; without -O the output is raw, qemu-img's
// default. The source is opened read-only (a dirty image is read as it is, never repaired); the
// output is written sparsely: all-zero chunks are left as holes, under a temporary name that
// replaces OUT only once every byte is written (AtomicOutputFile): a raw file of the full size
// with holes would look complete.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/all_zero.h"
#include "engine/atomic_output_file.h"
#include "tools/common.h"

namespace crashsim::tools {
namespace {

constexpr uint64_t kChunkBytes = 1 << 20;

struct ConvertArgs {
  std::string format = "qcow2";
  std::string output_format = "raw";  // qemu-img convert's default
  bool quiet = false;
  std::string image;
  std::string output;
};

int RunConvert(const ConvertArgs& args) {
  for (Status st :
       {CheckFormat(args.format, {"qcow2"}), CheckFormat(args.output_format, {"raw"})}) {
    if (!st.ok()) return Fail(st);
  }
  auto image = OpenImageFile(args.image, {.read_only = true});
  if (!image.ok()) return FailOpen(args.image, image.status());
  auto output = AtomicOutputFile::Create(args.output);
  if (!output.ok()) return Fail(output.status());
  auto out = (*output)->Device();
  if (!out.ok()) return Fail(out.status());
  const uint64_t size = (*image)->virtual_size();
  if (Status st = (*out)->Resize(size); !st.ok()) return Fail(InFile(args.output, st.message()));
  std::vector<uint8_t> buf(kChunkBytes);
  for (uint64_t offset = 0; offset < size; offset += kChunkBytes) {
    size_t n = static_cast<size_t>(std::min(kChunkBytes, size - offset));
    std::span<uint8_t> chunk(buf.data(), n);
    Status st = (*image)->Read(offset, chunk);
    if (!st.ok()) {
      return Fail(fmt::format("{}: read of {} bytes at offset {} failed: {}", args.image, n, offset,
                              st.message()));
    }
    if (AllZero(std::span<const uint8_t>(buf.data(), n))) continue;
    st = (*out)->Write(offset, chunk, WriteOptions{});
    if (!st.ok()) return Fail(InFile(args.output, st.message()));
  }
  Status committed = (*output)->Commit();
  if (!committed.ok()) return Fail(InFile(args.output, committed.message()));
  return 0;
}

}  // namespace

void AddConvertCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand("convert", "export an image's guest content to a raw file");
  AddFormatFlag(cmd, args->format);
  cmd->add_option("-O", args->output_format, "output format (only raw)");
  cmd->add_flag("-q", args->quiet, "quiet (accepted for qemu-img compatibility)");
  cmd->add_option("image", args->image, "source image")->required();
  cmd->add_option("output", args->output, "raw output file")->required();
  cmd->callback([args, &exit_code] { exit_code = RunConvert(*args); });
}

}  // namespace crashsim::tools
