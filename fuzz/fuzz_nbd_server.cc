// Fuzz target 4: the NBD server (validate/nbd_server.h) facing a hostile client. The input is
// everything the client sends, handshake and transmission alike, over a socketpair: the server
// serves it on this thread (NbdServer::ServeConnection) while a client thread sends the bytes,
// then half-closes, and drains every reply so the server never blocks on a full socket. The byte
// stream the server reads is the input whatever the threads' timing, so a run is deterministic.
//
// Byte 0 picks the export's options (bit 0: read-only); the rest is the client's stream. The
// properties: the server returns (no hang, no crash), never resizes the device, and never
// changes a byte of a read-only export.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <thread>
#include <vector>

#include "engine/memory_device.h"
#include "fuzz/fuzz_util.h"
#include "validate/nbd_server.h"

namespace crashsim::fuzz {
namespace {

constexpr size_t kMaxStreamBytes = 256 * 1024;
constexpr size_t kDeviceBytes = 256 * 1024;

// The client: sends `stream`, half-closes, and reads until the server closes its end.
void RunClient(int fd, std::span<const uint8_t> stream) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  size_t sent = 0;
  bool sending = true;
  std::vector<uint8_t> sink(64 * 1024);
  for (;;) {
    if (sending && sent == stream.size()) {
      shutdown(fd, SHUT_WR);
      sending = false;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    if (poll(&p, 1, -1) < 0) continue;
    if (p.revents & POLLIN || p.revents & POLLHUP) {
      ssize_t k = read(fd, sink.data(), sink.size());
      if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) return;
    }
    if (sending && (p.revents & (POLLOUT | POLLERR))) {
      ssize_t k = send(fd, stream.data() + sent, stream.size() - sent, MSG_NOSIGNAL);
      if (k > 0) sent += static_cast<size_t>(k);
      if (k < 0 && errno != EAGAIN && errno != EINTR) sending = false;  // the server hung up
    }
  }
}

void Serve(bool read_only, std::span<const uint8_t> stream) {
  std::vector<uint8_t> initial(kDeviceBytes);
  for (size_t i = 0; i < initial.size(); ++i) initial[i] = static_cast<uint8_t>(i * 7 + 1);
  MemoryDevice device(initial);
  std::mutex device_mutex;
  validate::NbdServerOptions options;
  options.max_request = 64 * 1024;  // keeps every reply, and so every input, small and fast
  options.stall_timeout_ms = 1000;  // never reached: the client half-closes when done
  options.read_only = read_only;
  validate::NbdServer server(device, device_mutex, options);

  int fds[2];
  FUZZ_PROPERTY(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair");
  std::thread client(RunClient, fds[1], stream);
  server.ServeConnection(fds[0]);
  close(fds[0]);
  client.join();
  close(fds[1]);

  FUZZ_PROPERTY(device.bytes().size() == kDeviceBytes, "the server resized the export");
  FUZZ_PROPERTY(!read_only || device.bytes() == initial, "a read-only export was written");
}

}  // namespace
}  // namespace crashsim::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > crashsim::fuzz::kMaxStreamBytes) return -1;
  crashsim::fuzz::Serve((data[0] & 1) != 0, std::span<const uint8_t>(data + 1, size - 1));
  return 0;
}
