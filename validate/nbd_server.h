// NbdServer: serves one BlockDevice (normally a SimDisk) to a third-party qcow2 writer over NBD,
// on a Unix socket only, so the writer (qemu-io, qemu-img, ...) runs as a child process while
// crashsim owns the simulated disk in its own process and can stamp guest acknowledgements into
// the same op sequence as the device operations.
//
// Protocol: the fixed newstyle handshake with NBD_OPT_EXPORT_NAME, GO, INFO, LIST and ABORT;
// other options (STRUCTURED_REPLY, STARTTLS, meta contexts) are refused with NBD_REP_ERR_UNSUP
// (STARTTLS: ERR_POLICY). Transmission uses simple replies: READ, WRITE (FUA), FLUSH, TRIM,
// WRITE_ZEROES (FUA, NO_HOLE), DISC. Mapping onto the device:
//   WRITE        -> Write(offset, data, {.fua = FUA flag})
//   FLUSH        -> Flush()
//   WRITE_ZEROES -> a Write of zeros (in chunks of at most max_request bytes), FUA as above
//   TRIM         -> nothing (the protocol leaves trimmed content unspecified); FUA -> Flush()
// Durability is entirely the device's: the server acknowledges a request only after the device
// call returned, so a writer that waits for its replies sees the device's contract.
//
// Hostile clients: a bad magic, unknown client flags, an oversize option or a write payload
// larger than max_request close the connection; an out-of-range request, an unknown command or
// unknown flags get an error reply (EINVAL; ENOSPC for writes past the end, after the payload
// is consumed); a client that stops mid-request is dropped after `stall_timeout_ms`. Nothing a
// client sends can crash or hang the server. One connection is served at a time; the next one
// is accepted when it ends.
//
// Threads: the server runs on its own thread; every device call holds `device_mutex`, which the
// caller also holds around its own device calls (SimDisk::BeginGuestOp/AckGuestOp).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "engine/block_device.h"
#include "engine/status.h"

namespace crashsim::validate {

struct NbdServerOptions {
  std::string socket_path;               // a Unix socket path; created, and removed on Stop
  std::string export_name = "crashsim";  // "" is always accepted too (the default export)
  uint32_t max_request = 32u << 20;      // largest READ/WRITE payload (NBD's usual maximum)
  int stall_timeout_ms = 10000;          // a request or option that stops arriving is dropped
  bool read_only = false;
};

struct NbdStats {
  uint64_t connections = 0;
  uint64_t reads = 0, writes = 0, fua_writes = 0, flushes = 0, trims = 0, write_zeroes = 0;
  uint64_t error_replies = 0;        // requests answered with a nonzero error
  uint64_t dropped_connections = 0;  // closed by the server: protocol violation or stall
};

class NbdServer {
 public:
  NbdServer(BlockDevice& device, std::mutex& device_mutex, NbdServerOptions options);
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  // Binds and listens on the socket and starts the server thread.
  Status Start();
  // Stops the thread, closing any connection, and removes the socket. Idempotent.
  void Stop();

  NbdStats stats() const;
  const NbdServerOptions& options() const { return options_; }
  // "nbd+unix:///?socket=PATH": the URI QEMU and libnbd take.
  std::string Uri() const;

  // Serves one connected client on the calling thread until the connection ends, as the server
  // thread does for each client it accepts; the caller owns and closes `fd`. Needs no Start(),
  // so the fuzz target (fuzz/fuzz_nbd_server.cc) drives it over a socketpair without a socket
  // file or a thread of the server's.
  void ServeConnection(int fd);

 private:
  void Loop();

  BlockDevice& device_;
  std::mutex& device_mutex_;
  NbdServerOptions options_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
  mutable std::mutex stats_mutex_;
  NbdStats stats_;
  friend class Connection;
};

}  // namespace crashsim::validate
