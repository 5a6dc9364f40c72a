// Test helpers for the checker's differential tests: a temp directory, running qemu-img/qemu-io,
// loading an image into a MemoryDevice, byte edits ("the corruption script"), and qemu-img
// check's JSON counters. Tests that need qemu-img skip when it is not installed.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/check/check.h"
#include "engine/memory_device.h"

namespace crashsim::check_test {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout
};

CommandResult RunCommand(const std::string& command);
bool HaveQemu();

class TempDir {
 public:
  TempDir();
  ~TempDir();
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

std::vector<uint8_t> LoadFile(const std::string& path);
void SaveFile(const std::string& path, const std::vector<uint8_t>& bytes);

// qemu-img check [-r mode] --output=json
struct QemuCheck {
  int exit_code = -1;
  int64_t corruptions = 0, leaks = 0, check_errors = 0;
  int64_t corruptions_fixed = 0, leaks_fixed = 0;
  int64_t image_end_offset = 0, allocated = 0, fragmented = 0, compressed = 0, total = 0;
};
QemuCheck QemuImgCheck(const std::string& path, const std::string& repair = "");

// Byte edits on an image held in memory.
struct ImageEditor {
  std::vector<uint8_t>& bytes;
  uint64_t Get64(uint64_t offset) const;
  uint32_t Get32(uint64_t offset) const;
  void Set64(uint64_t offset, uint64_t value);
  void Set32(uint64_t offset, uint32_t value);
  uint64_t cluster_size() const { return uint64_t{1} << Get32(20); }
  uint64_t l1_table_offset() const { return Get64(40); }
  uint64_t reftable_offset() const { return Get64(48); }
  uint64_t L1Entry(uint64_t i) const { return Get64(l1_table_offset() + i * 8); }
  // Offset of L2 entry `i` of the L2 table named by L1 entry 0.
  uint64_t L2EntryOffset(uint64_t i) const { return (L1Entry(0) & 0x00fffffffffffe00ull) + i * 8; }
  // Sets the 16-bit refcount of `cluster` (refcount_order 4, first refcount block).
  void SetRefcount16(uint64_t cluster, uint16_t value);
};

}  // namespace crashsim::check_test
