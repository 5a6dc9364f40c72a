// NBD server implementation: socket plumbing with poll() so that Stop() and stalled clients
// never block the thread, the fixed newstyle handshake, and the transmission loop.
#include "validate/nbd_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "validate/nbd_protocol.h"

namespace crashsim::validate {
namespace {

void Put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void Put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}
void Put64(std::vector<uint8_t>& out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}
uint64_t Get(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// Why a connection ended.
enum class End { kNone, kClientClosed, kProtocol, kStall, kStop };

}  // namespace

// One client connection. Every read waits with poll() on the socket and the stop pipe; a read
// that has started (part of a frame arrived) must complete within the stall timeout.
class Connection {
 public:
  Connection(NbdServer& server, int fd) : s_(server), fd_(fd) {}

  End Run() {
    if (!Handshake()) return end_;
    Transmission();
    return end_;
  }

 private:
  // Reads exactly n bytes. `idle_ok`: waiting before the first byte has no deadline (the client
  // may think between requests); once a byte arrived the rest must follow within the timeout.
  bool ReadFull(uint8_t* buf, size_t n, bool idle_ok) {
    size_t got = 0;
    while (got < n) {
      pollfd fds[2] = {{fd_, POLLIN, 0}, {s_.stop_pipe_[0], POLLIN, 0}};
      const int timeout = (idle_ok && got == 0) ? 1000 : s_.options_.stall_timeout_ms;
      int r = poll(fds, 2, timeout);
      if (r < 0 && errno == EINTR) continue;
      if (fds[1].revents) return Fail(End::kStop);
      if (r == 0) {
        if (idle_ok && got == 0) continue;
        return Fail(End::kStall);
      }
      ssize_t k = read(fd_, buf + got, n - got);
      if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (k <= 0) return Fail(got == 0 && idle_ok ? End::kClientClosed : End::kProtocol);
      got += static_cast<size_t>(k);
    }
    return true;
  }
  bool Skip(uint64_t n) {
    std::vector<uint8_t> buf(std::min<uint64_t>(n, 1 << 16));
    while (n > 0) {
      size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, buf.size()));
      if (!ReadFull(buf.data(), chunk, false)) return false;
      n -= chunk;
    }
    return true;
  }
  bool WriteFull(const uint8_t* buf, size_t n) {
    size_t put = 0;
    while (put < n) {
      ssize_t k = send(fd_, buf + put, n - put, MSG_NOSIGNAL);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0 && errno == EAGAIN) {
        pollfd p{fd_, POLLOUT, 0};
        if (poll(&p, 1, s_.options_.stall_timeout_ms) <= 0) return Fail(End::kStall);
        continue;
      }
      if (k <= 0) return Fail(End::kClientClosed);
      put += static_cast<size_t>(k);
    }
    return true;
  }
  bool Send(const std::vector<uint8_t>& v) { return WriteFull(v.data(), v.size()); }
  bool Fail(End why) {
    end_ = why;
    return false;
  }

  uint64_t Size() {
    std::lock_guard<std::mutex> lock(s_.device_mutex_);
    auto size = s_.device_.Size();
    return size.ok() ? *size : 0;
  }
  uint16_t TransmissionFlags() const {
    uint16_t f = nbd::kTransHasFlags | nbd::kTransSendFlush | nbd::kTransSendFua |
                 nbd::kTransSendTrim | nbd::kTransSendWriteZeroes;
    if (s_.options_.read_only) f |= nbd::kTransReadOnly;
    return f;
  }
  bool KnownExport(const std::string& name) const {
    return name.empty() || name == s_.options_.export_name;
  }

  bool OptionReply(uint32_t option, uint32_t type, const std::vector<uint8_t>& data = {}) {
    std::vector<uint8_t> out;
    Put64(out, nbd::kOptReplyMagic);
    Put32(out, option);
    Put32(out, type);
    Put32(out, static_cast<uint32_t>(data.size()));
    out.insert(out.end(), data.begin(), data.end());
    return Send(out);
  }

  bool Handshake() {
    std::vector<uint8_t> hello;
    Put64(hello, nbd::kNbdMagic);
    Put64(hello, nbd::kIHaveOpt);
    Put16(hello, nbd::kFlagFixedNewstyle | nbd::kFlagNoZeroes);
    if (!Send(hello)) return false;
    uint8_t cf[4];
    if (!ReadFull(cf, 4, false)) return false;
    client_flags_ = static_cast<uint32_t>(Get(cf, 4));
    if (client_flags_ & ~uint32_t{nbd::kFlagFixedNewstyle | nbd::kFlagNoZeroes}) {
      return Fail(End::kProtocol);  // unknown client flags: the protocol says disconnect
    }
    for (;;) {
      uint8_t head[16];
      if (!ReadFull(head, 16, false)) return false;
      if (Get(head, 8) != nbd::kIHaveOpt) return Fail(End::kProtocol);
      const uint32_t option = static_cast<uint32_t>(Get(head + 8, 4));
      const uint32_t length = static_cast<uint32_t>(Get(head + 12, 4));
      if (length > 4096 + 4 + 2 * 64) return Fail(End::kProtocol);  // oversize option
      std::vector<uint8_t> data(length);
      if (length > 0 && !ReadFull(data.data(), length, false)) return false;
      switch (option) {
        case nbd::kOptExportName:
          return ExportName(data);
        case nbd::kOptAbort:
          OptionReply(option, nbd::kRepAck);
          return Fail(End::kClientClosed);
        case nbd::kOptList:
          if (!List(option, data)) return false;
          break;
        case nbd::kOptInfo:
        case nbd::kOptGo: {
          int r = InfoOrGo(option, data);
          if (r < 0) return false;
          if (r == 1) return true;  // GO accepted: transmission
          break;
        }
        case nbd::kOptStartTls:
          if (!OptionReply(option, nbd::kRepErrPolicy)) return false;
          break;
        default:  // STRUCTURED_REPLY, meta contexts, anything newer
          if (!OptionReply(option, nbd::kRepErrUnsup)) return false;
          break;
      }
    }
  }

  bool ExportName(const std::vector<uint8_t>& data) {
    std::string name(data.begin(), data.end());
    if (!KnownExport(name)) return Fail(End::kProtocol);  // no error reply exists: close
    std::vector<uint8_t> out;
    Put64(out, Size());
    Put16(out, TransmissionFlags());
    if (!(client_flags_ & nbd::kFlagNoZeroes)) out.resize(out.size() + 124, 0);
    return Send(out);
  }

  bool List(uint32_t option, const std::vector<uint8_t>& data) {
    if (!data.empty()) return OptionReply(option, nbd::kRepErrInvalid);
    std::vector<uint8_t> entry;
    Put32(entry, static_cast<uint32_t>(s_.options_.export_name.size()));
    entry.insert(entry.end(), s_.options_.export_name.begin(), s_.options_.export_name.end());
    return OptionReply(option, nbd::kRepServer, entry) && OptionReply(option, nbd::kRepAck);
  }

  // Returns -1 on a closed connection, 0 to keep negotiating, 1 to enter transmission.
  int InfoOrGo(uint32_t option, const std::vector<uint8_t>& data) {
    auto invalid = [&]() { return OptionReply(option, nbd::kRepErrInvalid) ? 0 : -1; };
    if (data.size() < 6) return invalid();
    const uint32_t name_length = static_cast<uint32_t>(Get(data.data(), 4));
    if (data.size() < 4ull + name_length + 2) return invalid();
    const uint16_t requests = static_cast<uint16_t>(Get(data.data() + 4 + name_length, 2));
    if (data.size() != 4ull + name_length + 2 + 2ull * requests) return invalid();
    std::string name(data.begin() + 4, data.begin() + 4 + name_length);
    if (!KnownExport(name)) return OptionReply(option, nbd::kRepErrUnknown) ? 0 : -1;
    std::vector<uint8_t> info;
    Put16(info, nbd::kInfoExport);
    Put64(info, Size());
    Put16(info, TransmissionFlags());
    if (!OptionReply(option, nbd::kRepInfo, info)) return -1;
    // Block sizes are always sent: they tell the client the largest request we accept.
    std::vector<uint8_t> sizes;
    Put16(sizes, nbd::kInfoBlockSize);
    Put32(sizes, 1);
    Put32(sizes, 4096);
    Put32(sizes, s_.options_.max_request);
    if (!OptionReply(option, nbd::kRepInfo, sizes)) return -1;
    if (!OptionReply(option, nbd::kRepAck)) return -1;
    return option == nbd::kOptGo ? 1 : 0;
  }

  bool Reply(uint64_t handle, uint32_t error, const uint8_t* data = nullptr, size_t n = 0) {
    std::vector<uint8_t> out;
    Put32(out, nbd::kSimpleReplyMagic);
    Put32(out, error);
    Put64(out, handle);
    if (error != 0) {
      std::lock_guard<std::mutex> lock(s_.stats_mutex_);
      ++s_.stats_.error_replies;
    }
    if (!Send(out)) return false;
    return error != 0 || n == 0 || WriteFull(data, n);
  }

  static uint32_t Errno(const Status& st) {
    return st.code() == StatusCode::kNoSpace ? nbd::kENoSpc : nbd::kEIo;
  }
  void Count(uint64_t NbdStats::*field) {
    std::lock_guard<std::mutex> lock(s_.stats_mutex_);
    ++(s_.stats_.*field);
  }

  void Transmission() {
    std::vector<uint8_t> buf;
    for (;;) {
      uint8_t req[28];
      if (!ReadFull(req, 28, true)) return;
      if (Get(req, 4) != nbd::kRequestMagic) return void(Fail(End::kProtocol));
      const uint16_t flags = static_cast<uint16_t>(Get(req + 4, 2));
      const uint16_t type = static_cast<uint16_t>(Get(req + 6, 2));
      const uint64_t handle = Get(req + 8, 8);
      const uint64_t offset = Get(req + 16, 8);
      const uint32_t length = static_cast<uint32_t>(Get(req + 24, 4));
      const uint64_t size = Size();
      const bool in_range = offset <= size && length <= size - offset;
      const bool fua = flags & nbd::kCmdFlagFua;
      if (type == nbd::kCmdWrite) {
        if (length > s_.options_.max_request) return void(Fail(End::kProtocol));
        buf.resize(length);
        if (length > 0 && !ReadFull(buf.data(), length, false)) return;
      }
      const uint16_t allowed =
          (type == nbd::kCmdWriteZeroes) ? (nbd::kCmdFlagFua | nbd::kCmdFlagNoHole)
          : (type == nbd::kCmdWrite || type == nbd::kCmdTrim) ? nbd::kCmdFlagFua
                                                              : 0;
      if (flags & ~allowed) {
        if (!Reply(handle, nbd::kEInval)) return;
        continue;
      }
      bool writes = type == nbd::kCmdWrite || type == nbd::kCmdWriteZeroes || type == nbd::kCmdTrim;
      if (writes && s_.options_.read_only) {
        if (!Reply(handle, nbd::kEPerm)) return;
        continue;
      }
      switch (type) {
        case nbd::kCmdRead: {
          if (length > s_.options_.max_request || !in_range) {
            if (!Reply(handle, nbd::kEInval)) return;
            break;
          }
          buf.resize(length);
          Status st;
          {
            std::lock_guard<std::mutex> lock(s_.device_mutex_);
            st = s_.device_.Read(offset, buf);
          }
          Count(&NbdStats::reads);
          if (!Reply(handle, st.ok() ? 0 : Errno(st), buf.data(), length)) return;
          break;
        }
        case nbd::kCmdWrite: {
          if (!in_range) {
            if (!Reply(handle, nbd::kENoSpc)) return;
            break;
          }
          Status st;
          {
            std::lock_guard<std::mutex> lock(s_.device_mutex_);
            st = s_.device_.Write(offset, buf, WriteOptions{.fua = fua});
          }
          Count(&NbdStats::writes);
          if (fua) Count(&NbdStats::fua_writes);
          if (!Reply(handle, st.ok() ? 0 : Errno(st))) return;
          break;
        }
        case nbd::kCmdFlush: {
          Status st;
          {
            std::lock_guard<std::mutex> lock(s_.device_mutex_);
            st = s_.device_.Flush();
          }
          Count(&NbdStats::flushes);
          if (!Reply(handle, st.ok() ? 0 : Errno(st))) return;
          break;
        }
        case nbd::kCmdTrim: {
          if (!in_range) {
            if (!Reply(handle, nbd::kEInval)) return;
            break;
          }
          Status st;
          if (fua) {  // nothing was written, but FUA still asks for the earlier writes' barrier
            std::lock_guard<std::mutex> lock(s_.device_mutex_);
            st = s_.device_.Flush();
          }
          Count(&NbdStats::trims);
          if (!Reply(handle, st.ok() ? 0 : Errno(st))) return;
          break;
        }
        case nbd::kCmdWriteZeroes: {
          if (!in_range) {
            if (!Reply(handle, nbd::kENoSpc)) return;
            break;
          }
          Count(&NbdStats::write_zeroes);
          if (!Reply(handle, WriteZeroes(offset, length, fua))) return;
          break;
        }
        case nbd::kCmdDisc:
          return void(Fail(End::kClientClosed));
        default:  // CACHE, BLOCK_STATUS, RESIZE, unknown: not negotiated, so invalid
          if (!Reply(handle, nbd::kEInval)) return;
          break;
      }
    }
  }

  uint32_t WriteZeroes(uint64_t offset, uint32_t length, bool fua) {
    const uint32_t chunk = std::min<uint32_t>(s_.options_.max_request, 1u << 20);
    std::vector<uint8_t> zeros(std::min(chunk, length), 0);
    std::lock_guard<std::mutex> lock(s_.device_mutex_);
    for (uint64_t done = 0; done < length;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(length - done, zeros.size()));
      Status st = s_.device_.Write(offset + done, std::span<const uint8_t>(zeros.data(), n),
                                   WriteOptions{.fua = fua});
      if (!st.ok()) return Errno(st);
      done += n;
    }
    return 0;
  }

  NbdServer& s_;
  int fd_;
  uint32_t client_flags_ = 0;
  End end_ = End::kNone;
};

NbdServer::NbdServer(BlockDevice& device, std::mutex& device_mutex, NbdServerOptions options)
    : device_(device), device_mutex_(device_mutex), options_(std::move(options)) {}

NbdServer::~NbdServer() { Stop(); }

std::string NbdServer::Uri() const { return "nbd+unix:///?socket=" + options_.socket_path; }

Status NbdServer::Start() {
  INVARIANT(listen_fd_ < 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options_.socket_path.empty() || options_.socket_path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument(
        fmt::format("NBD socket path '{}' is empty or too long", options_.socket_path));
  }
  std::memcpy(addr.sun_path, options_.socket_path.c_str(), options_.socket_path.size());
  unlink(options_.socket_path.c_str());
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::IoError(fmt::format("socket: {}", strerror(errno)));
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 4) != 0) {
    Status st = Status::IoError(
        fmt::format("cannot listen on {}: {}", options_.socket_path, strerror(errno)));
    close(listen_fd_);
    listen_fd_ = -1;
    return st;
  }
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    return Status::IoError(fmt::format("pipe: {}", strerror(errno)));
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void NbdServer::Stop() {
  if (listen_fd_ < 0) return;
  const uint8_t byte = 1;
  ssize_t ignored = write(stop_pipe_[1], &byte, 1);
  (void)ignored;
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  close(stop_pipe_[0]);
  close(stop_pipe_[1]);
  listen_fd_ = -1;
  stop_pipe_[0] = stop_pipe_[1] = -1;
  unlink(options_.socket_path.c_str());
}

NbdStats NbdServer::stats() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return stats_;
}

void NbdServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    int r = poll(fds, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || fds[1].revents) return;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    {
      std::lock_guard<std::mutex> lock(stats_mutex_);
      ++stats_.connections;
    }
    ServeConnection(fd);
    close(fd);
  }
}

void NbdServer::ServeConnection(int fd) {
  Connection connection(*this, fd);
  End end = connection.Run();
  if (end == End::kProtocol || end == End::kStall) {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    ++stats_.dropped_connections;
  }
}

}  // namespace crashsim::validate
