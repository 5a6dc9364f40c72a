// Fuzz target 2: `check -r all` on an untrusted image, then a second check. A repair that
// reports success (qemu-img's exit 0: clean or repaired) must leave an image that checks clean
// and opens; and a repair of an image of at most 1 MiB must never need the file to grow past
// 64 MiB (the device refuses it and the target aborts), whatever the header claims: the checker
// bounds its tables by QEMU's limits and the file's cluster count, never by the virtual size.
// Headers whose L1 or refcount table is over 1 MiB are skipped (kMaxTableBytes: why).
#include <algorithm>
#include <memory>
#include <vector>

#include "engine/check/check.h"
#include "engine/image.h"
#include "engine/memory_device.h"
#include "fuzz/fuzz_util.h"

namespace crashsim::fuzz {
namespace {

constexpr size_t kMaxImageBytes = size_t{1} << 20;
constexpr uint64_t kMaxDeviceBytes = uint64_t{64} << 20;
// A repair may rewrite the active L1 table and the refcount table at the sizes the header gives
// (up to QEMU's 32 MiB and 8 MiB): legitimate, but seconds per input under ASan. The target
// leaves such headers to fuzz_image_read, which reads them without repairing.
constexpr uint64_t kMaxTableBytes = uint64_t{1} << 20;

uint64_t LoadBE(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// The header's l1_size (bytes 36-39) and refcount_table_clusters (56-59) within kMaxTableBytes.
bool SmallTables(std::span<const uint8_t> bytes) {
  if (bytes.size() < 64) return true;
  const uint32_t cluster_bits = static_cast<uint32_t>(LoadBE(&bytes[20], 4));
  const uint64_t reftable_bytes = cluster_bits < 32 ? LoadBE(&bytes[56], 4) << cluster_bits : 0;
  return LoadBE(&bytes[36], 4) * 8 <= kMaxTableBytes && reftable_bytes <= kMaxTableBytes;
}

// A MemoryDevice that refuses to grow past kMaxDeviceBytes and remembers that it was asked to.
class CappedDevice : public MemoryDevice {
 public:
  using MemoryDevice::MemoryDevice;
  Status Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions options) override {
    if (offset > kMaxDeviceBytes || data.size() > kMaxDeviceBytes - offset) return Refuse(offset);
    return MemoryDevice::Write(offset, data, options);
  }
  Status Resize(uint64_t size) override {
    if (size > kMaxDeviceBytes) return Refuse(size);
    return MemoryDevice::Resize(size);
  }
  bool grew_too_far = false;

 private:
  Status Refuse(uint64_t offset) {
    grew_too_far = true;
    return Status::NoSpace("fuzz device: no growth past 64 MiB (asked for " +
                           std::to_string(offset) + ")");
  }
};

std::string Describe(const CheckReport& report) {
  return FormatCheckFindings(report) + FormatCheckHuman(report) + CheckFailure(report) +
         "\nstatus: " + report.status.ToString();
}

void RepairThenCheck(const std::vector<uint8_t>& bytes) {
  CappedDevice device(bytes);
  CheckReport repair = Check(device, {.repair = RepairMode::kAll});
  FUZZ_PROPERTY(!device.grew_too_far,
                "repair of a <= 1 MiB image grew it past 64 MiB:\n" + Describe(repair));
  if (CheckExitCode(repair) != 0) return;  // the repair said it could not make the image clean
  CheckReport recheck = Check(device);
  FUZZ_PROPERTY(CheckExitCode(recheck) == 0 && recheck.corruptions == 0 && recheck.leaks == 0,
                "a repair that reported success left an image that does not check clean:\n"
                "repair:\n" +
                    Describe(repair) + "\nre-check:\n" + Describe(recheck));
  // qemu-img opens the image before it checks it: a clean verdict means the image opens. The
  // check was not given the backing chain, so an overlay's open is not asked of it.
  if (repair.not_qcow2) return;
  auto header = ReadImageHeader(device);
  if (!header.ok() || header->has_backing_file()) return;
  OpenOptions options{.read_only = true};
  auto image = Image::Open(device, options);
  FUZZ_PROPERTY(image.ok(), "a repaired, clean image does not open: " + image.status().ToString() +
                                "\nrepair:\n" + Describe(repair));
}

}  // namespace
}  // namespace crashsim::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > crashsim::fuzz::kMaxImageBytes) return -1;
  if (!crashsim::fuzz::SmallTables({data, size})) return -1;
  crashsim::fuzz::RepairThenCheck(std::vector<uint8_t>(data, data + size));
  return 0;
}
