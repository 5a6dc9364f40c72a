// NbdServer against real clients (qemu-img, qemu-io, nbdinfo; skipped when not installed) and
// against hostile raw-socket clients: every misbehaviour ends in an error reply or a closed
// connection, and the server keeps serving the next client.
#include "validate/nbd_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "engine/memory_device.h"
#include "process/subprocess.h"
#include "simdisk/sim_disk.h"
#include "validate/nbd_protocol.h"

namespace crashsim::validate {
namespace {

constexpr uint64_t kDiskSize = 16 << 20;

class NbdServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("crashsim-nbd-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    device_ = std::make_unique<MemoryDevice>(std::vector<uint8_t>(kDiskSize, 0));
    NbdServerOptions o;
    o.socket_path = (dir_ / "sock").string();
    o.stall_timeout_ms = 300;
    o.max_request = 1 << 20;
    server_ = std::make_unique<NbdServer>(*device_, mutex_, o);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    server_->Stop();
    std::filesystem::remove_all(dir_);
  }

  // A raw client socket connected to the server.
  int Connect() {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, server_->options().socket_path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
  }
  static void Send(int fd, const std::vector<uint8_t>& bytes) {
    ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Reads n bytes; returns fewer if the connection closed.
  static std::vector<uint8_t> Recv(int fd, size_t n) {
    std::vector<uint8_t> out(n);
    size_t got = 0;
    while (got < n) {
      ssize_t k = recv(fd, out.data() + got, n - got, 0);
      if (k <= 0) break;
      got += static_cast<size_t>(k);
    }
    out.resize(got);
    return out;
  }
  static bool Closed(int fd) {
    uint8_t b;
    return recv(fd, &b, 1, 0) == 0;
  }
  static void Be(std::vector<uint8_t>& v, uint64_t x, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
  }
  static uint64_t Get(const std::vector<uint8_t>& v, size_t at, int bytes) {
    uint64_t x = 0;
    for (int i = 0; i < bytes; ++i) x = (x << 8) | v[at + i];
    return x;
  }
  static std::vector<uint8_t> Option(uint32_t option, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> v;
    Be(v, nbd::kIHaveOpt, 8);
    Be(v, option, 4);
    Be(v, data.size(), 4);
    v.insert(v.end(), data.begin(), data.end());
    return v;
  }
  // Connects, reads the greeting and sends client flags.
  int Greet() {
    int fd = Connect();
    auto hello = Recv(fd, 18);
    EXPECT_EQ(hello.size(), 18u);
    EXPECT_EQ(Get(hello, 0, 8), nbd::kNbdMagic);
    EXPECT_EQ(Get(hello, 8, 8), nbd::kIHaveOpt);
    std::vector<uint8_t> flags;
    Be(flags, nbd::kFlagFixedNewstyle | nbd::kFlagNoZeroes, 4);
    Send(fd, flags);
    return fd;
  }
  // Reads one option reply header; returns the reply type and skips its data.
  uint32_t ReplyType(int fd) {
    auto head = Recv(fd, 20);
    if (head.size() != 20) return 0;
    EXPECT_EQ(Get(head, 0, 8), nbd::kOptReplyMagic);
    Recv(fd, Get(head, 16, 4));
    return static_cast<uint32_t>(Get(head, 12, 4));
  }
  // A connection in transmission (EXPORT_NAME "").
  int Transmit() {
    int fd = Greet();
    Send(fd, Option(nbd::kOptExportName, {}));
    auto info = Recv(fd, 10);
    EXPECT_EQ(Get(info, 0, 8), kDiskSize);
    return fd;
  }
  static std::vector<uint8_t> Request(uint16_t type, uint64_t offset, uint32_t length,
                                      uint16_t flags = 0, uint32_t magic = nbd::kRequestMagic) {
    std::vector<uint8_t> v;
    Be(v, magic, 4);
    Be(v, flags, 2);
    Be(v, type, 2);
    Be(v, 0x1234, 8);
    Be(v, offset, 8);
    Be(v, length, 4);
    return v;
  }
  // The error of a simple reply (UINT32_MAX if the connection closed).
  static uint32_t ReplyError(int fd) {
    auto r = Recv(fd, 16);
    if (r.size() != 16) return UINT32_MAX;
    EXPECT_EQ(Get(r, 0, 4), nbd::kSimpleReplyMagic);
    EXPECT_EQ(Get(r, 8, 8), 0x1234u);
    return static_cast<uint32_t>(Get(r, 4, 4));
  }
  // The server still serves a well-behaved client.
  void ExpectAlive() {
    int fd = Transmit();
    Send(fd, Request(nbd::kCmdRead, 0, 512));
    EXPECT_EQ(ReplyError(fd), 0u);
    EXPECT_EQ(Recv(fd, 512).size(), 512u);
    Send(fd, Request(nbd::kCmdDisc, 0, 0));
    EXPECT_TRUE(Closed(fd));
    close(fd);
  }
  bool Have(const char* program) { return !FindProgram(program).empty(); }

  std::filesystem::path dir_;
  std::mutex mutex_;
  std::unique_ptr<MemoryDevice> device_;
  std::unique_ptr<NbdServer> server_;
};

TEST_F(NbdServerTest, QemuImgCreatesAndQemuIoReadsBack) {
  if (!Have("qemu-img") || !Have("qemu-io")) GTEST_SKIP() << "qemu-utils not installed";
  ProcessResult create =
      RunCommand({"qemu-img", "create", "-f", "qcow2", server_->Uri(), "8M"}, 20000);
  ASSERT_EQ(create.exit_code, 0) << create.output;
  const std::string opts =
      "driver=qcow2,file.driver=nbd,file.path=" + server_->options().socket_path;
  ProcessResult write =
      RunCommand({"qemu-io", "--image-opts", opts, "-t", "writethrough", "-c",
                  "write -P 0x5a 65536 131072", "-c", "write -f -P 0x33 0 4096", "-c",
                  "write -z 1048576 65536", "-c", "discard 65536 4096", "-c", "flush"},
                 20000);
  ASSERT_EQ(write.exit_code, 0) << write.output;
  ProcessResult read = RunCommand({"qemu-io", "--image-opts", opts, "-r", "-c",
                                   "read -P 0x5a 69632 126976", "-c", "read -P 0x33 0 4096"},
                                  20000);
  EXPECT_EQ(read.exit_code, 0) << read.output;
  EXPECT_EQ(read.output.find("Pattern verification failed"), std::string::npos) << read.output;
  NbdStats stats = server_->stats();
  EXPECT_GT(stats.writes, 0u);
  EXPECT_GT(stats.flushes, 0u);
  EXPECT_EQ(stats.dropped_connections, 0u);
  // The image on the device is one qemu-img check accepts through the same server.
  ProcessResult check = RunCommand({"qemu-img", "check", "-f", "qcow2", server_->Uri()}, 20000);
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST_F(NbdServerTest, QemuIoOverUriAndFuaRecordedOnSimDisk) {
  if (!Have("qemu-io")) GTEST_SKIP() << "qemu-utils not installed";
  server_->Stop();
  simdisk::SimDiskOptions so;
  so.initial_size = kDiskSize;
  simdisk::SimDisk disk(so);
  NbdServerOptions o = server_->options();
  NbdServer server(disk, mutex_, o);
  ASSERT_TRUE(server.Start().ok());
  ProcessResult run =
      RunCommand({"qemu-io", "-f", "raw", server.Uri(), "-c", "write -f -P 7 0 4096", "-c",
                  "write -P 8 4096 4096", "-c", "flush"},
                 20000);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  server.Stop();
  bool saw_fua = false, saw_flush = false;
  for (const simdisk::OpRecord& op : disk.recording().ops()) {
    if (op.kind == simdisk::OpKind::kWrite && op.fua && op.offset == 0) saw_fua = true;
    if (op.kind == simdisk::OpKind::kFlush) saw_flush = true;
  }
  EXPECT_TRUE(saw_fua);
  EXPECT_TRUE(saw_flush);
}

TEST_F(NbdServerTest, NbdinfoSeesTheExport) {
  if (!Have("nbdinfo")) GTEST_SKIP() << "libnbd-bin not installed";
  ProcessResult info = RunCommand({"nbdinfo", "--json", server_->Uri()}, 20000);
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("\"export-size\": 16777216"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("\"can_flush\": true"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("\"can_fua\": true"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("\"can_zero\": true"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("\"can_trim\": true"), std::string::npos) << info.output;
  ProcessResult list = RunCommand({"nbdinfo", "--list", "--json", server_->Uri()}, 20000);
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("crashsim"), std::string::npos) << list.output;
  ProcessResult size = RunCommand(
      {"nbdinfo", "--size", "nbd+unix:///crashsim?socket=" + server_->options().socket_path},
      20000);
  EXPECT_EQ(size.output, "16777216\n");
  ProcessResult unknown =
      RunCommand({"nbdinfo", "nbd+unix:///nope?socket=" + server_->options().socket_path}, 20000);
  EXPECT_NE(unknown.exit_code, 0);
  ExpectAlive();
}

TEST_F(NbdServerTest, BadGreetingMagicClosesConnection) {
  int fd = Greet();
  std::vector<uint8_t> bad;
  Be(bad, 0x1122334455667788ull, 8);
  Be(bad, nbd::kOptList, 4);
  Be(bad, 0, 4);
  Send(fd, bad);
  EXPECT_TRUE(Closed(fd));
  close(fd);
  ExpectAlive();
  EXPECT_GE(server_->stats().dropped_connections, 1u);
}

TEST_F(NbdServerTest, UnknownClientFlagsClose) {
  int fd = Connect();
  Recv(fd, 18);
  std::vector<uint8_t> flags;
  Be(flags, 0x80000001u, 4);
  Send(fd, flags);
  EXPECT_TRUE(Closed(fd));
  close(fd);
  ExpectAlive();
}

TEST_F(NbdServerTest, OptionsRefusedTheWayTheProtocolSays) {
  int fd = Greet();
  Send(fd, Option(nbd::kOptStructuredReply, {}));
  EXPECT_EQ(ReplyType(fd), nbd::kRepErrUnsup);
  Send(fd, Option(99, {1, 2, 3}));
  EXPECT_EQ(ReplyType(fd), nbd::kRepErrUnsup);
  Send(fd, Option(nbd::kOptStartTls, {}));
  EXPECT_EQ(ReplyType(fd), nbd::kRepErrPolicy);
  Send(fd, Option(nbd::kOptList, {1}));
  EXPECT_EQ(ReplyType(fd), nbd::kRepErrInvalid);
  Send(fd, Option(nbd::kOptList, {}));
  EXPECT_EQ(ReplyType(fd), nbd::kRepServer);
  EXPECT_EQ(ReplyType(fd), nbd::kRepAck);
  // INFO for an unknown export, then a malformed INFO, then GO.
  std::vector<uint8_t> info;
  Be(info, 3, 4);
  info.insert(info.end(), {'x', 'y', 'z'});
  Be(info, 0, 2);
  Send(fd, Option(nbd::kOptInfo, info));
  EXPECT_EQ(ReplyType(fd), nbd::kRepErrUnknown);
  Send(fd, Option(nbd::kOptInfo, {0, 0, 0, 9}));
  EXPECT_EQ(ReplyType(fd), nbd::kRepErrInvalid);
  std::vector<uint8_t> go;
  Be(go, 0, 4);
  Be(go, 0, 2);
  Send(fd, Option(nbd::kOptGo, go));
  EXPECT_EQ(ReplyType(fd), nbd::kRepInfo);
  EXPECT_EQ(ReplyType(fd), nbd::kRepInfo);
  EXPECT_EQ(ReplyType(fd), nbd::kRepAck);
  Send(fd, Request(nbd::kCmdFlush, 0, 0));
  EXPECT_EQ(ReplyError(fd), 0u);
  close(fd);
  ExpectAlive();
}

TEST_F(NbdServerTest, AbortAndOversizeOption) {
  int fd = Greet();
  Send(fd, Option(nbd::kOptAbort, {}));
  EXPECT_EQ(ReplyType(fd), nbd::kRepAck);
  EXPECT_TRUE(Closed(fd));
  close(fd);
  fd = Greet();
  std::vector<uint8_t> big;
  Be(big, nbd::kIHaveOpt, 8);
  Be(big, nbd::kOptInfo, 4);
  Be(big, 0xfffffff0u, 4);
  Send(fd, big);
  EXPECT_TRUE(Closed(fd));
  close(fd);
  ExpectAlive();
}

TEST_F(NbdServerTest, BadRequestsGetErrorReplies) {
  int fd = Transmit();
  Send(fd, Request(nbd::kCmdRead, kDiskSize - 512, 1024));  // past the end
  EXPECT_EQ(ReplyError(fd), nbd::kEInval);
  Send(fd, Request(nbd::kCmdRead, UINT64_MAX - 10, 512));  // offset overflow
  EXPECT_EQ(ReplyError(fd), nbd::kEInval);
  Send(fd, Request(nbd::kCmdRead, 0, 2 << 20));  // larger than max_request
  EXPECT_EQ(ReplyError(fd), nbd::kEInval);
  auto write = Request(nbd::kCmdWrite, kDiskSize, 512);  // past the end: payload consumed
  write.resize(write.size() + 512, 0xee);
  Send(fd, write);
  EXPECT_EQ(ReplyError(fd), nbd::kENoSpc);
  Send(fd, Request(77, 0, 0));  // unknown command
  EXPECT_EQ(ReplyError(fd), nbd::kEInval);
  Send(fd, Request(nbd::kCmdFlush, 0, 0, 0x40));  // unknown flag
  EXPECT_EQ(ReplyError(fd), nbd::kEInval);
  Send(fd, Request(nbd::kCmdWriteZeroes, kDiskSize - 4096, 8192));
  EXPECT_EQ(ReplyError(fd), nbd::kENoSpc);
  // Still in sync: a good write and read.
  auto good = Request(nbd::kCmdWrite, 4096, 512, nbd::kCmdFlagFua);
  good.resize(good.size() + 512, 0xab);
  Send(fd, good);
  EXPECT_EQ(ReplyError(fd), 0u);
  Send(fd, Request(nbd::kCmdRead, 4096, 512));
  EXPECT_EQ(ReplyError(fd), 0u);
  auto data = Recv(fd, 512);
  EXPECT_EQ(data, std::vector<uint8_t>(512, 0xab));
  Send(fd, Request(nbd::kCmdWriteZeroes, 4096, 512, nbd::kCmdFlagNoHole));
  EXPECT_EQ(ReplyError(fd), 0u);
  EXPECT_EQ(device_->bytes()[4096], 0);
  close(fd);
  ExpectAlive();
}

TEST_F(NbdServerTest, ViolationsInTransmissionClose) {
  int fd = Transmit();
  Send(fd, Request(nbd::kCmdRead, 0, 512, 0, 0xdeadbeef));  // bad request magic
  EXPECT_TRUE(Closed(fd));
  close(fd);
  fd = Transmit();
  Send(fd, Request(nbd::kCmdWrite, 0, 64u << 20));  // write payload beyond max_request
  EXPECT_TRUE(Closed(fd));
  close(fd);
  ExpectAlive();
}

TEST_F(NbdServerTest, ShortRequestAndDisconnectMidRequest) {
  int fd = Transmit();
  auto r = Request(nbd::kCmdRead, 0, 512);
  r.resize(10);
  Send(fd, r);
  close(fd);  // gone in the middle of a header
  fd = Transmit();
  auto w = Request(nbd::kCmdWrite, 0, 65536);
  w.resize(w.size() + 1000, 1);
  Send(fd, w);
  close(fd);  // gone in the middle of a payload
  ExpectAlive();
}

TEST_F(NbdServerTest, StalledClientIsDropped) {
  int fd = Transmit();
  auto r = Request(nbd::kCmdRead, 0, 512);
  r.resize(7);
  Send(fd, r);  // then silence: dropped after the 300 ms stall timeout
  EXPECT_TRUE(Closed(fd));
  close(fd);
  fd = Greet();
  std::vector<uint8_t> half = {0x49, 0x48};
  Send(fd, half);  // silence in the middle of an option
  EXPECT_TRUE(Closed(fd));
  close(fd);
  ExpectAlive();
  EXPECT_GE(server_->stats().dropped_connections, 2u);
}

TEST_F(NbdServerTest, StopWhileAClientIsConnected) {
  int fd = Transmit();
  server_->Stop();
  EXPECT_TRUE(Closed(fd));
  close(fd);
}

TEST(SplitWords, QuotesAndSpaces) {
  EXPECT_EQ(SplitWords("qemu-io -c 'write -P 1 0 4k'  \"a b\"c"),
            (std::vector<std::string>{"qemu-io", "-c", "write -P 1 0 4k", "a bc"}));
}

TEST(RunCommand, TimeoutKillsTheChild) {
  ProcessResult r = RunCommand({"sleep", "10"}, 200);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + 9);
  EXPECT_EQ(RunCommand({"no-such-program-xyz"}, 1000).exit_code, 127);
}

}  // namespace
}  // namespace crashsim::validate
