#include "engine/posix_device.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "engine/coding.h"

namespace crashsim {
namespace {

// O_DIRECT needs buffers, offsets and lengths aligned to the logical block size; 4096 covers
// every device and file system we run on.
constexpr uint64_t kDirectAlignment = 4096;

struct AlignedBuffer {
  explicit AlignedBuffer(size_t bytes)
      : data(static_cast<uint8_t*>(std::aligned_alloc(kDirectAlignment, bytes))), size(bytes) {}
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  uint8_t* data;
  size_t size;
};

}  // namespace

Status ErrnoStatus(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::NoSpace(msg);
  return Status::IoError(msg);
}

std::unique_ptr<PosixDevice> PosixDevice::Adopt(int fd, std::string name) {
  return std::unique_ptr<PosixDevice>(new PosixDevice(fd, std::move(name), /*direct=*/false));
}

Result<std::unique_ptr<PosixDevice>> PosixDevice::Open(const std::string& path,
                                                       PosixOpenOptions options) {
  int flags = O_CLOEXEC | (options.read_only ? O_RDONLY : O_RDWR);
  if (options.create) flags |= O_CREAT;
  if (options.exclusive) flags |= O_EXCL;
  if (options.direct) flags |= O_DIRECT;
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    int err = errno;
    if (options.direct && err == EINVAL) {
      return Status::NotSupported(path + ": the file system does not support O_DIRECT");
    }
    return ErrnoStatus(path, err);
  }
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(path + ": is a directory");
  }
  return std::unique_ptr<PosixDevice>(new PosixDevice(fd, path, options.direct));
}

PosixDevice::~PosixDevice() { ::close(fd_); }

Status PosixDevice::PreadFully(uint64_t offset, std::span<uint8_t> data, bool allow_short) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pread(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(fmt::format("{}: read at {:#x}", path_, offset + done), errno);
    }
    if (n == 0) {
      if (allow_short) {
        std::memset(data.data() + done, 0, data.size() - done);
        return Status::Ok();
      }
      return Status::IoError(fmt::format("{}: read of {} bytes at {:#x} past the end of file",
                                         path_, data.size(), offset));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status PosixDevice::PwriteFully(uint64_t offset, std::span<const uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(fmt::format("{}: write at {:#x}", path_, offset + done), errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status PosixDevice::Read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(uint64_t size, Size());
  if (offset > size || data.size() > size - offset) {
    return Status::IoError(fmt::format("{}: read of {} bytes at {:#x} past the end of file ({})",
                                       path_, data.size(), offset, size));
  }
  if (direct_) return ReadDirect(offset, data);
  return PreadFully(offset, data, /*allow_short=*/false);
}

Status PosixDevice::ReadDirect(uint64_t offset, std::span<uint8_t> data) {
  uint64_t start = AlignDown(offset, kDirectAlignment);
  uint64_t end = AlignUp(offset + data.size(), kDirectAlignment);
  AlignedBuffer buf(end - start);
  // The tail block may extend past EOF: O_DIRECT reads return short there, which is fine.
  RETURN_IF_ERROR(PreadFully(start, {buf.data, buf.size}, /*allow_short=*/true));
  std::memcpy(data.data(), buf.data + (offset - start), data.size());
  return Status::Ok();
}

Status PosixDevice::Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions options) {
  if (data.empty()) return Status::Ok();
  RETURN_IF_ERROR(direct_ ? WriteDirect(offset, data) : PwriteFully(offset, data));
  if (options.fua) return Flush();
  return Status::Ok();
}

Status PosixDevice::WriteDirect(uint64_t offset, std::span<const uint8_t> data) {
  ASSIGN_OR_RETURN(uint64_t old_size, Size());
  uint64_t start = AlignDown(offset, kDirectAlignment);
  uint64_t end = AlignUp(offset + data.size(), kDirectAlignment);
  AlignedBuffer buf(end - start);
  if (start != offset || end != offset + data.size()) {
    RETURN_IF_ERROR(PreadFully(start, {buf.data, buf.size}, /*allow_short=*/true));
  }
  std::memcpy(buf.data + (offset - start), data.data(), data.size());
  RETURN_IF_ERROR(PwriteFully(start, {buf.data, buf.size}));
  // The aligned write may have grown the file past what the caller wrote; trim it back.
  uint64_t want = std::max(old_size, offset + data.size());
  if (end > want && ::ftruncate(fd_, static_cast<off_t>(want)) != 0) {
    return ErrnoStatus(path_ + ": truncate after direct write", errno);
  }
  return Status::Ok();
}

Status PosixDevice::Flush() {
  if (::fdatasync(fd_) != 0) return ErrnoStatus(path_ + ": fdatasync", errno);
  return Status::Ok();
}

Result<uint64_t> PosixDevice::Size() {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoStatus(path_ + ": fstat", errno);
  if (S_ISBLK(st.st_mode)) {
    off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) return ErrnoStatus(path_ + ": lseek", errno);
    return static_cast<uint64_t>(end);
  }
  return static_cast<uint64_t>(st.st_size);
}

Status PosixDevice::Resize(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    return ErrnoStatus(fmt::format("{}: truncate to {}", path_, size), errno);
  }
  return Status::Ok();
}

}  // namespace crashsim
