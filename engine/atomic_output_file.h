// A new output file written under a temporary name beside its target and renamed over the target
// only once it is complete. A command that fails part-way (a full file system, an I/O error, an
// image that cannot be read) then leaves no half-written file that looks like a result, and a
// file that was at the target name before is untouched: the rename is the only step that
// replaces it. Every crashsim command that writes a new file goes through this.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "engine/posix_device.h"

namespace crashsim {

class AtomicOutputFile {
 public:
  // Creates "<path>.tmp-XXXXXX" in path's directory. An existing target is only replaced by
  // Commit(); it keeps its permission bits. A symlink target is followed (the file it names is
  // replaced, as writing through the link would have). A target that exists but is not a
  // regular file (/dev/stdout, a pipe, a block device) is written in place: there is nothing to
  // rename over it. A directory, or a target this user may not write, is refused here, before
  // any work. Errors name the target.
  static Result<std::unique_ptr<AtomicOutputFile>> Create(const std::string& path);
  // Removes the temporary file unless Commit() succeeded.
  ~AtomicOutputFile();
  AtomicOutputFile(const AtomicOutputFile&) = delete;
  AtomicOutputFile& operator=(const AtomicOutputFile&) = delete;

  // A device over the file being written, for the engine; its messages name the target, not
  // the temporary name. It may outlive Commit().
  Result<std::unique_ptr<PosixDevice>> Device();
  // Appends bytes at the current position (sequential write(), so pipes work as targets).
  Status Append(std::string_view bytes);
  // Makes the file durable (fsync), renames it over the target and syncs the directory.
  Status Commit();

  // The path as given (messages name it) and the temporary file's path ("" when in place).
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicOutputFile(int fd, std::string path, std::string target, std::string temp_path)
      : fd_(fd),
        path_(std::move(path)),
        target_(std::move(target)),
        temp_path_(std::move(temp_path)) {}

  int fd_;
  std::string path_;
  std::string target_;     // path_ with a symlink followed: what the rename replaces
  std::string temp_path_;  // empty when writing the target in place
  bool committed_ = false;
};

// Writes `bytes` as the whole content of `path` through an AtomicOutputFile.
Status WriteFileAtomically(const std::string& path, std::string_view bytes);

}  // namespace crashsim
