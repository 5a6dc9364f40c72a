#include "properties/backing_file.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/coding.h"
#include "engine/image.h"
#include "simdisk/medium.h"

namespace crashsim {
namespace {

// A raw backing file that is the pattern itself, generated on every read.
class PatternDevice final : public BlockDevice {
 public:
  explicit PatternDevice(uint64_t size) : size_(size) {}
  Status Read(uint64_t offset, std::span<uint8_t> data) override {
    if (offset > size_ || data.size() > size_ - offset) {
      return Status::IoError(
          fmt::format("backing file: read of {} bytes at {:#x} past its end", data.size(), offset));
    }
    FillPattern(kBackingPattern, offset, data);
    return Status::Ok();
  }
  Status Write(uint64_t, std::span<const uint8_t>, WriteOptions) override {
    return Status::ReadOnly("backing file: read-only");
  }
  Status Flush() override { return Status::Ok(); }
  Result<uint64_t> Size() override { return size_; }
  Status Resize(uint64_t) override { return Status::ReadOnly("backing file: read-only"); }
  std::string Name() const override { return "backing.img"; }

 private:
  uint64_t size_;
};

}  // namespace

Result<BackingFile> MakeBackingFile(BackingKind kind, const Workload& workload,
                                    uint64_t cluster_size) {
  BackingFile b;
  b.kind = kind;
  if (kind == BackingKind::kNone) return b;
  b.size = AlignDown(workload.disk_size * 3 / 4, 512);
  if (kind == BackingKind::kRaw) {
    b.initial.AddPattern(0, b.size);
    const uint64_t size = b.size;
    b.opener = [size](const std::string&) -> Result<std::unique_ptr<BlockDevice>> {
      return std::unique_ptr<BlockDevice>(new PatternDevice(size));
    };
    return b;
  }
  // qcow2: the pattern in every cluster a workload op touches (the clusters copy-on-write and
  // reads reach), nothing elsewhere.
  auto medium = std::make_shared<simdisk::Medium>();
  CreateOptions create;
  create.size = b.size;
  create.cluster_size = cluster_size;
  RETURN_IF_ERROR(Image::Create(*medium, create));
  ASSIGN_OR_RETURN(std::unique_ptr<Image> image, Image::Open(*medium, OpenOptions{}));
  std::vector<uint8_t> data;
  for (const WorkloadOp& op : workload.ops) {
    if (op.length == 0 || op.offset >= b.size) continue;
    const uint64_t begin = AlignDown(op.offset, cluster_size);
    const uint64_t end = std::min(b.size, AlignUp(op.offset + op.length, cluster_size));
    data.resize(end - begin);
    FillPattern(kBackingPattern, begin, data);
    RETURN_IF_ERROR(image->Write(begin, data));
    b.initial.AddPattern(begin, end);
  }
  RETURN_IF_ERROR(image->Close());
  std::shared_ptr<const simdisk::Medium> frozen = std::move(medium);
  b.opener = [frozen](const std::string&) -> Result<std::unique_ptr<BlockDevice>> {
    return std::unique_ptr<BlockDevice>(new simdisk::Medium(*frozen));
  };
  return b;
}

}  // namespace crashsim
