// Child-process plumbing for subprocess.h: posix_spawn with pipes, poll()-based reads with
// deadlines, and reaping with SIGKILL as the last resort.
#include "process/subprocess.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace crashsim {
namespace {

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Starts argv with stdin from `in_fd` (or /dev/null when -1) and stdout+stderr to `out_fd`, in a
// process group of its own (so a deadline kills all of it). posix_spawn, not fork: glibc starts
// the child without copying the parent's page tables, which for a harness holding every crash
// state in memory was most of the cost of a child (the naive harness's baseline, bench/).
Result<pid_t> Spawn(const std::vector<std::string>& argv, int in_fd, int out_fd,
                    int close_in_child_1, int close_in_child_2) {
  if (argv.empty()) return Status::InvalidArgument("empty command");
  std::string path = argv[0].find('/') != std::string::npos ? argv[0] : FindProgram(argv[0]);
  if (path.empty()) return Status::NotFound(fmt::format("program '{}' not found in PATH", argv[0]));
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (in_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
  if (close_in_child_1 >= 0) posix_spawn_file_actions_addclose(&actions, close_in_child_1);
  if (close_in_child_2 >= 0) posix_spawn_file_actions_addclose(&actions, close_in_child_2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  const int err = posix_spawn(&pid, path.c_str(), &actions, &attr, cargv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return Status::IoError(fmt::format("cannot start {}: {}", path, strerror(err)));
  return pid;
}

// Reads what is available on fd into `out`, waiting at most `wait_ms`. Returns false at EOF.
bool ReadSome(int fd, std::string& out, int wait_ms) {
  pollfd p{fd, POLLIN, 0};
  int r = poll(&p, 1, wait_ms);
  if (r <= 0) return true;
  char buf[65536];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  out.append(buf, static_cast<size_t>(n));
  return true;
}

}  // namespace

std::string FindProgram(const std::string& name) {
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(start, end - start);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;  // "": the cwd
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

std::string SelfExecutable() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("crashsim") : path.string();
}

std::vector<std::string> SplitWords(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (char c : text) {
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

ProcessResult RunCommand(const std::vector<std::string>& argv, int timeout_ms) {
  ProcessResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    result.output = fmt::format("pipe: {}", strerror(errno));
    return result;
  }
  auto pid = Spawn(argv, -1, fds[1], fds[0], -1);
  close(fds[1]);
  if (!pid.ok()) {
    close(fds[0]);
    result.exit_code = 127;
    result.output = pid.status().message();
    return result;
  }
  const int64_t deadline = NowMs() + timeout_ms;
  bool open = true;
  while (open && NowMs() < deadline) {
    open =
        ReadSome(fds[0], result.output, static_cast<int>(std::max<int64_t>(1, deadline - NowMs())));
  }
  if (open) {
    kill(-*pid, SIGKILL);
    kill(*pid, SIGKILL);
    result.timed_out = true;
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = DecodeStatus(status);
  return result;
}

Result<std::unique_ptr<Interactive>> Interactive::Start(const std::vector<std::string>& argv) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Status::IoError("pipe");
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return Status::IoError("pipe");
  }
  auto pid = Spawn(argv, in[0], out[1], in[1], out[0]);
  close(in[0]);
  close(out[1]);
  if (!pid.ok()) {
    close(in[1]);
    close(out[0]);
    return pid.status();
  }
  std::unique_ptr<Interactive> p(new Interactive());
  p->pid_ = *pid;
  p->in_fd_ = in[1];
  p->out_fd_ = out[0];
  return p;
}

Interactive::~Interactive() {
  if (pid_ > 0) Kill(SIGKILL);
}

Result<std::string> Interactive::ReadUntil(std::string_view marker, int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    if (pending_.size() >= marker.size() &&
        std::string_view(pending_).substr(pending_.size() - marker.size()) == marker) {
      std::string text = pending_.substr(0, pending_.size() - marker.size());
      pending_.clear();
      return text;
    }
    const int64_t left = deadline - NowMs();
    if (left <= 0) {
      return Status::IoError(
          fmt::format("timed out after {} ms waiting for '{}'", timeout_ms, marker));
    }
    if (!ReadSome(out_fd_, pending_, static_cast<int>(left))) {
      return Status::IoError("the program exited");
    }
  }
}

Status Interactive::SendLine(std::string_view line) {
  std::string text(line);
  text += '\n';
  size_t put = 0;
  while (put < text.size()) {
    ssize_t n = write(in_fd_, text.data() + put, text.size() - put);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::IoError(fmt::format("write to the program: {}", strerror(errno)));
    put += static_cast<size_t>(n);
  }
  return Status::Ok();
}

ProcessResult Interactive::Wait(int timeout_ms) {
  ProcessResult result;
  const int64_t deadline = NowMs() + timeout_ms;
  bool open = out_fd_ >= 0;
  while (open && NowMs() < deadline) {
    open = ReadSome(out_fd_, pending_, static_cast<int>(std::max<int64_t>(1, deadline - NowMs())));
  }
  if (open) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    result.timed_out = true;
  }
  if (out_fd_ >= 0) close(out_fd_);
  if (in_fd_ >= 0) close(in_fd_);
  out_fd_ = in_fd_ = -1;
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  result.exit_code = DecodeStatus(status);
  result.output = std::move(pending_);
  pending_.clear();
  return result;
}

ProcessResult Interactive::Finish(int timeout_ms) {
  if (in_fd_ >= 0) {
    close(in_fd_);
    in_fd_ = -1;
  }
  return Wait(timeout_ms);
}

ProcessResult Interactive::Kill(int signal) {
  kill(pid_, signal);
  return Wait(5000);
}

}  // namespace crashsim
