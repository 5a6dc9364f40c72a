#include "engine/check/check_context.h"

#include <fmt/format.h>

#include "engine/check/device_io.h"
#include "engine/coding.h"

namespace crashsim::check {

void Context::Note(FindingKind kind, FindingSeverity severity, uint64_t host_offset,
                   std::string structure, std::string message, bool repaired) {
  Finding f;
  f.kind = kind;
  f.severity = severity;
  f.host_offset = host_offset;
  f.structure = std::move(structure);
  f.message = std::move(message);
  f.repaired = repaired;
  findings_.push_back(std::move(f));
}

void Context::Corruption(FindingKind kind, uint64_t host_offset, std::string structure,
                         std::string message) {
  res.corruptions++;
  Note(kind, FindingSeverity::kCorruption, host_offset, std::move(structure), std::move(message));
}

void Context::CheckError(uint64_t host_offset, std::string structure, std::string message) {
  res.check_errors++;
  Note(FindingKind::kCheckError, FindingSeverity::kCheckError, host_offset, std::move(structure),
       std::move(message));
}

void Context::Fixed(FindingKind kind, uint64_t host_offset, std::string structure,
                    std::string message) {
  res.corruptions_fixed++;
  Note(kind, FindingSeverity::kCorruption, host_offset, std::move(structure), std::move(message),
       /*repaired=*/true);
}

void Context::Dropped(uint64_t host_offset, std::string structure, uint64_t guest_offset,
                      uint64_t guest_length, const std::string& why) {
  Finding f;
  f.kind = FindingKind::kDroppedMapping;
  f.severity = FindingSeverity::kInfo;
  f.host_offset = host_offset;
  f.message = fmt::format("Repairing {}: dropped guest range [{:#x}, {:#x}): {}", structure,
                          guest_offset, guest_offset + guest_length, why);
  f.structure = std::move(structure);
  f.repaired = true;
  f.guest_offset = guest_offset;
  f.guest_length = guest_length;
  findings_.push_back(std::move(f));
}

Status Context::PrepareToWrite() {
  if (prepared_) return Status::Ok();
  prepared_ = true;
  if (header.version < 3 || header.dirty()) return Status::Ok();
  uint8_t bytes[8];
  StoreBE64(bytes, header.incompatible_features | kIncompatDirty);
  RETURN_IF_ERROR(RepairWriteSync(device, kIncompatibleFeaturesOffset, bytes, IoTag::kHeader));
  header.incompatible_features |= kIncompatDirty;
  return Status::Ok();
}

Status RefreshFileSize(Context& ctx) {
  Result<uint64_t> size = ctx.device.Size();
  if (!size.ok()) return size.status();
  ctx.file_size = *size;
  return Status::Ok();
}

}  // namespace crashsim::check
