// A BlockDevice over a host file: pread/pwrite/fdatasync. With engine/atomic_output_file.cc,
// the only engine files that call the OS. The O_DIRECT variant bypasses the host page cache
// (cache=none and directsync); it keeps the BlockDevice's byte-granular contract by bouncing
// unaligned requests through an aligned buffer (read-modify-write of the covering blocks).
#pragma once

#include <memory>
#include <string>

#include "engine/block_device.h"

namespace crashsim {

struct PosixOpenOptions {
  bool read_only = false;
  bool create = false;     // create the file (fails if it exists and exclusive is set)
  bool exclusive = false;  // with create: refuse to overwrite an existing file
  bool direct = false;     // O_DIRECT; falls back with an error if the file system refuses
};

// "what: strerror(err)" as a Status: NoSpace for ENOSPC and EDQUOT, IoError otherwise.
Status ErrnoStatus(const std::string& what, int err);

class PosixDevice : public BlockDevice {
 public:
  static Result<std::unique_ptr<PosixDevice>> Open(const std::string& path,
                                                   PosixOpenOptions options);
  // A device over an open file descriptor, which it then owns and closes; `name` is what its
  // messages call it (AtomicOutputFile names the target, not its temporary file).
  static std::unique_ptr<PosixDevice> Adopt(int fd, std::string name);
  ~PosixDevice() override;
  PosixDevice(const PosixDevice&) = delete;
  PosixDevice& operator=(const PosixDevice&) = delete;

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions options) override;
  Status Flush() override;
  Result<uint64_t> Size() override;
  Status Resize(uint64_t size) override;
  std::string Name() const override { return path_; }

  bool direct() const { return direct_; }

 private:
  PosixDevice(int fd, std::string path, bool direct)
      : fd_(fd), path_(std::move(path)), direct_(direct) {}
  Status ReadDirect(uint64_t offset, std::span<uint8_t> data);
  Status WriteDirect(uint64_t offset, std::span<const uint8_t> data);
  Status PreadFully(uint64_t offset, std::span<uint8_t> data, bool allow_short);
  Status PwriteFully(uint64_t offset, std::span<const uint8_t> data);

  int fd_;
  std::string path_;
  bool direct_;
};

}  // namespace crashsim
