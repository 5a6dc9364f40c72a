// Fuzz target 1: an untrusted image opened read-only on an in-memory device, a few guest reads,
// then the checker without repair. Every path must end in a Status or a report, never a crash,
// and neither the read-only open, the reads nor the check may change a byte of the device.
//
// Inputs are whole image files (fuzz/make_corpus.sh makes qemu-img images), capped at 1 MiB so
// an input stays fast; a backing file, if the header names one, is the input itself again, at
// most two levels deep, so backing-chain reads are reached without touching the file system.
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
constexpr uint64_t kReadBytes = 64 * 1024;
constexpr int kMaxMappedReads = 8;

// Reads a clamped range; any Status is fine, a crash or a sanitizer report is not.
void ReadSome(Image& image, uint64_t offset, std::vector<uint8_t>& buffer) {
  const uint64_t size = image.virtual_size();
  if (offset >= size) return;
  const uint64_t length = std::min(kReadBytes, size - offset);
  Status st = image.Read(offset, std::span<uint8_t>(buffer.data(), length));
  (void)st;
}

void ReadGuest(const std::vector<uint8_t>& bytes) {
  MemoryDevice device(bytes);
  OpenOptions options;
  options.read_only = true;
  options.max_backing_depth = 2;
  options.open_backing = [&bytes](const std::string&) -> Result<std::unique_ptr<BlockDevice>> {
    return std::unique_ptr<BlockDevice>(std::make_unique<MemoryDevice>(bytes));
  };
  auto image = Image::Open(device, options);
  if (!image.ok()) return;
  Image& img = **image;
  std::vector<uint8_t> buffer(kReadBytes);
  const uint64_t size = img.virtual_size();
  for (uint64_t offset : {uint64_t{0}, size / 2 + 511, size > kReadBytes ? size - kReadBytes : 0}) {
    ReadSome(img, offset, buffer);
  }
  // The first few mapped clusters: where the interesting entries (compressed, zero, subcluster
  // bitmaps) are. Stopping early is done with an error the walk hands back.
  int mapped = 0;
  Status walk = img.ForEachMappedCluster([&](uint64_t guest_offset, ClusterType) -> Status {
    (void)img.Map(guest_offset);
    ReadSome(img, guest_offset, buffer);
    return ++mapped < kMaxMappedReads ? Status::Ok() : Status::NotFound("enough");
  });
  (void)walk;
  FUZZ_PROPERTY(device.bytes() == bytes, "a read-only open or a guest read wrote to the device");
}

void CheckOnly(const std::vector<uint8_t>& bytes) {
  MemoryDevice device(bytes);
  CheckReport report = Check(device);
  // The output paths format every finding; they must cope with whatever the report holds.
  std::string text = FormatCheckFindings(report) + FormatCheckHuman(report) +
                     FormatCheckJson(report, "fuzz.qcow2") + CheckFailure(report);
  (void)CheckExitCode(report);
  FUZZ_PROPERTY(device.bytes() == bytes, "check without repair wrote to the device:\n" + text);
}

}  // namespace
}  // namespace crashsim::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > crashsim::fuzz::kMaxImageBytes) return -1;  // not added to the corpus
  const std::vector<uint8_t> bytes(data, data + size);
  crashsim::fuzz::ReadGuest(bytes);
  crashsim::fuzz::CheckOnly(bytes);
  return 0;
}
