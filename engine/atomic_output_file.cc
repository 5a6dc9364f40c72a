#include "engine/atomic_output_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>

namespace crashsim {
namespace {

// The target the bytes end up in: a symlink is followed, so that replacing the file keeps the
// link (writing through it in place would have). A dangling link is replaced itself.
std::string ResolveTarget(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
  char resolved[PATH_MAX];
  return ::realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path;
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// A suffix no other writer in this or another process picks at the same moment; O_EXCL makes a
// collision a retry, never a shared file.
std::string TempSuffix() {
  static std::atomic<uint64_t> counter{0};
  const uint64_t mix =
      (static_cast<uint64_t>(::getpid()) << 40) ^ (counter.fetch_add(1) << 20) ^
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  uint64_t x = mix * 0x9e3779b97f4a7c15ULL;
  std::string s;
  for (int i = 0; i < 6; ++i, x /= 36) s += kChars[x % 36];
  return s;
}

}  // namespace

Result<std::unique_ptr<AtomicOutputFile>> AtomicOutputFile::Create(const std::string& path) {
  const std::string target = ResolveTarget(path);
  struct stat st;
  const bool exists = ::stat(target.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) return Status::InvalidArgument(path + ": is a directory");
  // Overwriting in place needed write permission on the file; a rename would not. Keep refusing.
  if (exists && ::access(target.c_str(), W_OK) != 0) {
    return ErrnoStatus("cannot open " + path, errno);
  }
  if (exists && !S_ISREG(st.st_mode)) {
    int fd = ::open(target.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == EACCES) fd = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("cannot open " + path, errno);
    return std::unique_ptr<AtomicOutputFile>(new AtomicOutputFile(fd, path, target, ""));
  }
  for (int attempt = 0;; ++attempt) {
    std::string temp = target + ".tmp-" + TempSuffix();
    // 0644 less the umask, as a plain create would give; an existing target's bits are kept.
    int fd = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST && attempt < 100) continue;
      return ErrnoStatus(fmt::format("{}: cannot create the temporary file {}", path, temp), errno);
    }
    if (exists && ::fchmod(fd, st.st_mode & 07777) != 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      return ErrnoStatus(fmt::format("{}: cannot set the mode of {}", path, temp), err);
    }
    return std::unique_ptr<AtomicOutputFile>(new AtomicOutputFile(fd, path, target, temp));
  }
}

AtomicOutputFile::~AtomicOutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

Result<std::unique_ptr<PosixDevice>> AtomicOutputFile::Device() {
  const int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(path_ + ": dup", errno);
  return PosixDevice::Adopt(fd, path_);
}

Status AtomicOutputFile::Append(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(path_ + ": write", errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status AtomicOutputFile::Commit() {
  // Pipes and character devices cannot be synced (EINVAL); there is nothing durable to wait for.
  if (::fsync(fd_) != 0 && errno != EINVAL) return ErrnoStatus(path_ + ": fsync", errno);
  const int fd = fd_;
  fd_ = -1;
  // close() is where some file systems (NFS) report a failed write.
  if (::close(fd) != 0) return ErrnoStatus(path_ + ": close", errno);
  if (!temp_path_.empty() && ::rename(temp_path_.c_str(), target_.c_str()) != 0) {
    return ErrnoStatus(fmt::format("{}: cannot rename {} over it", path_, temp_path_), errno);
  }
  committed_ = true;
  // The rename is durable once the directory is; the file is complete either way, so a
  // directory that cannot be synced does not turn a written output into a failure.
  if (!temp_path_.empty()) {
    const int dir = ::open(DirectoryOf(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      (void)::fsync(dir);
      ::close(dir);
    }
  }
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  ASSIGN_OR_RETURN(std::unique_ptr<AtomicOutputFile> file, AtomicOutputFile::Create(path));
  RETURN_IF_ERROR(file->Append(bytes));
  return file->Commit();
}

}  // namespace crashsim
