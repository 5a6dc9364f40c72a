// Moving a simulated device's bytes to and from the files a target works on (device_files.h).
#include "validate/device_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "engine/all_zero.h"
#include "engine/atomic_output_file.h"
#include "engine/posix_device.h"

namespace crashsim::validate {

// Copies a device's bytes over `to`'s, leaving all-zero chunks as holes.
namespace {

Status CopySparse(BlockDevice& from, BlockDevice& to) {
  ASSIGN_OR_RETURN(uint64_t size, from.Size());
  RETURN_IF_ERROR(to.Resize(0));
  std::vector<uint8_t> buf(1 << 16);
  for (uint64_t at = 0; at < size; at += buf.size()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - at));
    RETURN_IF_ERROR(from.Read(at, std::span<uint8_t>(buf.data(), n)));
    if (AllZero(std::span<const uint8_t>(buf.data(), n))) continue;
    RETURN_IF_ERROR(to.Write(at, std::span<const uint8_t>(buf.data(), n), WriteOptions{}));
  }
  return to.Resize(size);
}

}  // namespace

// Writes a device's bytes to a scratch file, rewritten in place for every crash state: only
// the target reads it, and a rename with an fsync per state would cost more than the check.
Status SaveDevice(BlockDevice& device, const std::string& path) {
  ASSIGN_OR_RETURN(auto out, PosixDevice::Open(path, PosixOpenOptions{.create = true}));
  return CopySparse(device, *out);
}

// Writes a device's bytes to a finding's file, which appears only whole.
Status SaveDeviceAsOutput(BlockDevice& device, const std::string& path) {
  ASSIGN_OR_RETURN(auto file, AtomicOutputFile::Create(path));
  ASSIGN_OR_RETURN(auto out, file->Device());
  RETURN_IF_ERROR(CopySparse(device, *out));
  return file->Commit();
}

Result<std::unique_ptr<simdisk::Medium>> LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read " + path);
  auto medium = std::make_unique<simdisk::Medium>();
  std::vector<uint8_t> buf(1 << 16);
  uint64_t at = 0;
  while (in) {
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    medium->WriteAt(at, std::span<const uint8_t>(buf.data(), n));
    at += n;
  }
  return medium;
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> DataExtents(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("cannot read " + path);
  std::vector<std::pair<uint64_t, uint64_t>> extents;
  const off_t size = ::lseek(fd, 0, SEEK_END);
  off_t at = 0;
  while (size > 0 && at < size) {
    const off_t data = ::lseek(fd, at, SEEK_DATA);
    if (data < 0) {
      // ENXIO: only a hole is left; EINVAL: no hole reporting here, so all of it may be data.
      if (errno == EINVAL) extents.assign(1, {0, static_cast<uint64_t>(size)});
      break;
    }
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) hole = size;
    extents.push_back({static_cast<uint64_t>(data), static_cast<uint64_t>(hole)});
    at = hole;
  }
  ::close(fd);
  return extents;
}

Status WriteBytes(const std::string& path, std::span<const uint8_t> data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return out ? Status::Ok() : Status::IoError("cannot write " + path);
}

}  // namespace crashsim::validate
