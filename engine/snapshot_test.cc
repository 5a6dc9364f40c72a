// Tests of internal snapshot creation (engine/snapshot.h) against qemu-img: the image checks
// clean, `qemu-img snapshot -l` lists the snapshots, `qemu-img convert -l` of each equals the
// content at snapshot time, and writes after a snapshot copy on write, leaving it intact.
#include "engine/snapshot.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/image.h"
#include "engine/posix_device.h"
#include "engine/test_util.h"

namespace crashsim {
namespace {

namespace fs = std::filesystem;

struct SnapCase {
  uint64_t cluster_size;
  bool lazy;
};

class SnapshotTest : public ::testing::TestWithParam<SnapCase> {
 protected:
  void SetUp() override {
    if (!testing::HaveQemuImg()) GTEST_SKIP() << "qemu-img not installed";
    dir_ = fs::temp_directory_path() / ("crashsim-snap-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static int Run(const std::string& cmd) {
    return WEXITSTATUS(std::system((cmd + " >/dev/null 2>&1").c_str()));
  }
  static std::string Output(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
  }
  static std::vector<uint8_t> ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
  }
  // A new image `name` in the scratch directory with the case's geometry, open read-write, and
  // the guest disk it should read as (zeros). `write` writes a pattern to both.
  struct Fresh {
    std::string path;
    std::unique_ptr<PosixDevice> dev;
    std::unique_ptr<Image> image;
    std::vector<uint8_t> disk;
    void write(uint64_t off, uint64_t len, uint8_t seed);
  };
  Fresh CreateImage(const std::string& name, uint64_t size) {
    Fresh f;
    f.path = (dir_ / name).string();
    CreateOptions o;
    o.size = size;
    o.cluster_size = GetParam().cluster_size;
    o.lazy_refcounts = GetParam().lazy;
    auto dev = PosixDevice::Open(f.path, {.create = true});
    EXPECT_TRUE(dev.ok());
    if (!dev.ok()) return f;
    f.dev = std::move(*dev);
    EXPECT_TRUE(Image::Create(*f.dev, o).ok());
    auto image = Image::Open(*f.dev, OpenOptions{});
    EXPECT_TRUE(image.ok()) << image.status().ToString();
    if (image.ok()) f.image = std::move(*image);
    f.disk.assign(size, 0);
    return f;
  }
  fs::path dir_;
};

void Fill(std::vector<uint8_t>& disk, uint64_t offset, uint64_t length, uint8_t seed) {
  for (uint64_t i = 0; i < length; ++i) disk[offset + i] = static_cast<uint8_t>(seed + i * 7);
}

void SnapshotTest::Fresh::write(uint64_t off, uint64_t len, uint8_t seed) {
  Fill(disk, off, len, seed);
  ASSERT_TRUE(image->Write(off, std::span<const uint8_t>(disk.data() + off, len)).ok());
}

TEST_P(SnapshotTest, QemuSeesSnapshotsAndCowKeepsThemIntact) {
  const uint64_t size = 4 << 20, cs = GetParam().cluster_size;
  std::vector<std::vector<uint8_t>> at_snapshot;
  Fresh f = CreateImage("t.qcow2", size);
  ASSERT_TRUE(f.image);
  const std::string img = f.path;
  std::vector<uint8_t>& disk = f.disk;
  {
    auto& image = f.image;
    auto write = [&](uint64_t off, uint64_t len, uint8_t seed) { f.write(off, len, seed); };
    write(0, 3 * cs + 100, 1);
    write(size / 2 + 512, 5000, 2);
    write(size - cs, cs, 3);
    Status st = image->CreateSnapshot("1", "snap1");
    ASSERT_TRUE(st.ok()) << st.ToString();
    at_snapshot.push_back(disk);
    write(cs / 2, cs, 4);            // partial overwrite of shared clusters: COW
    write(size / 2 + 4096, 700, 5);  // inside the shared cluster
    write(2 * size / 3, 3 * cs, 6);  // fresh clusters
    st = image->CreateSnapshot("2", "snap2");
    ASSERT_TRUE(st.ok()) << st.ToString();
    at_snapshot.push_back(disk);
    write(0, 2 * cs, 7);
    EXPECT_FALSE(image->CreateSnapshot("1", "again").ok());  // ids are unique
    ASSERT_TRUE(image->Close().ok());
  }
  EXPECT_EQ(Run("qemu-img check -f qcow2 " + img), 0) << Output("qemu-img check " + img);
  const std::string list = Output("qemu-img snapshot -l " + img);
  EXPECT_NE(list.find("snap1"), std::string::npos) << list;
  EXPECT_NE(list.find("snap2"), std::string::npos) << list;
  for (size_t i = 0; i < at_snapshot.size(); ++i) {
    const std::string raw = (dir_ / fmt::format("s{}.raw", i)).string();
    ASSERT_EQ(Run(fmt::format("qemu-img convert -f qcow2 -O raw -l snapshot.id={} {} {}", i + 1,
                              img, raw)),
              0);
    EXPECT_TRUE(ReadFile(raw) == at_snapshot[i]) << "snapshot " << i + 1;
  }
  const std::string active = (dir_ / "a.raw").string();
  ASSERT_EQ(Run("qemu-img convert -f qcow2 -O raw " + img + " " + active), 0);
  EXPECT_TRUE(ReadFile(active) == disk);
  // The engine reads its own result back too.
  auto dev = PosixDevice::Open(img, {});
  ASSERT_TRUE(dev.ok());
  OpenOptions ro;
  ro.read_only = true;
  auto image = Image::Open(**dev, ro);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  std::vector<uint8_t> got(size);
  ASSERT_TRUE((*image)->Read(0, got).ok());
  EXPECT_TRUE(got == disk);
  // And each snapshot, loaded read-only as qemu-img's -l does: by id, and by name.
  for (size_t i = 0; i < at_snapshot.size(); ++i) {
    for (const std::string& which : {std::to_string(i + 1), fmt::format("snap{}", i + 1)}) {
      OpenOptions view = ro;
      view.load_snapshot = which;
      auto snap = Image::Open(**dev, view);
      ASSERT_TRUE(snap.ok()) << snap.status().ToString();
      ASSERT_TRUE((*snap)->Read(0, got).ok());
      EXPECT_TRUE(got == at_snapshot[i]) << "snapshot " << which;
    }
  }
}

// Deleting snapshots (the middle one, then the rest) leaves qemu-img a clean image whose other
// snapshots and active layer read as before, with the freed clusters reused by later writes.
TEST_P(SnapshotTest, DeletedSnapshotsLeaveTheRestIntactAndFreeTheirClusters) {
  const uint64_t size = 2 << 20, cs = GetParam().cluster_size;
  std::vector<std::vector<uint8_t>> at_snapshot;
  Fresh f = CreateImage("d.qcow2", size);
  ASSERT_TRUE(f.image);
  const std::string img = f.path;
  std::vector<uint8_t>& disk = f.disk;
  auto& image = f.image;
  auto& dev = f.dev;
  auto write = [&](uint64_t off, uint64_t len, uint8_t seed) { f.write(off, len, seed); };
  for (int i = 1; i <= 3; ++i) {
    write(static_cast<uint64_t>(i) * cs / 2, 2 * cs, static_cast<uint8_t>(i));
    write(size - static_cast<uint64_t>(i) * cs, 700, static_cast<uint8_t>(10 + i));
    ASSERT_TRUE(image->CreateSnapshot(std::to_string(i), fmt::format("s{}", i)).ok());
    at_snapshot.push_back(disk);
  }
  write(0, 3 * cs, 20);
  ASSERT_TRUE(image->DeleteSnapshot("s2").ok());
  EXPECT_EQ(image->DeleteSnapshot("s2").code(), StatusCode::kNotFound);
  ASSERT_TRUE(image->Flush().ok());
  EXPECT_EQ(Run("qemu-img check -f qcow2 " + img), 0) << Output("qemu-img check " + img);
  const std::string list = Output("qemu-img snapshot -l " + img);
  EXPECT_NE(list.find("s1"), std::string::npos) << list;
  EXPECT_EQ(list.find("s2"), std::string::npos) << list;
  EXPECT_NE(list.find("s3"), std::string::npos) << list;
  for (int i : {1, 3}) {
    const std::string raw = (dir_ / fmt::format("d{}.raw", i)).string();
    ASSERT_EQ(Run(fmt::format("qemu-img convert -f qcow2 -O raw -l snapshot.name=s{} {} {}", i, img,
                              raw)),
              0);
    EXPECT_TRUE(ReadFile(raw) == at_snapshot[static_cast<size_t>(i - 1)]) << "snapshot s" << i;
  }
  ASSERT_TRUE(image->DeleteSnapshot("s1").ok());
  ASSERT_TRUE(image->DeleteSnapshot("s3").ok());
  auto none = image->Snapshots();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->entries.empty());
  const uint64_t end_before = *dev->Size();
  write(size / 2, 4 * cs, 30);  // fresh clusters: the freed ones come first
  ASSERT_TRUE(image->Close().ok());
  EXPECT_EQ(*dev->Size(), end_before) << "the writes reused freed clusters";
  EXPECT_EQ(Run("qemu-img check -f qcow2 " + img), 0) << Output("qemu-img check " + img);
  const std::string active = (dir_ / "da.raw").string();
  ASSERT_EQ(Run("qemu-img convert -f qcow2 -O raw " + img + " " + active), 0);
  EXPECT_TRUE(ReadFile(active) == disk);
}

// Reverting reads as the disk did at the snapshot, by id and by name, across a reopen; the image
// checks clean (qemu-img) and later writes copy on write as before.
TEST_P(SnapshotTest, AppliedSnapshotsReadAsTheyWereTaken) {
  const uint64_t size = 2 << 20, cs = GetParam().cluster_size;
  Fresh f = CreateImage("a.qcow2", size);
  ASSERT_TRUE(f.image);
  std::vector<std::vector<uint8_t>> at_snapshot;
  for (int i = 1; i <= 2; ++i) {
    f.write(static_cast<uint64_t>(i) * cs, 3 * cs, static_cast<uint8_t>(i));
    ASSERT_TRUE(f.image->CreateSnapshot(std::to_string(i), fmt::format("s{}", i)).ok());
    at_snapshot.push_back(f.disk);
  }
  f.write(0, 5 * cs, 9);
  for (const std::string which : {"s1", "2", "1"}) {
    Status st = f.image->ApplySnapshot(which);
    ASSERT_TRUE(st.ok()) << which << ": " << st.ToString();
    f.disk = at_snapshot[which == "2" ? 1 : 0];
    std::vector<uint8_t> got(size);
    ASSERT_TRUE(f.image->Read(0, got).ok());
    EXPECT_TRUE(got == f.disk) << "after applying " << which;
    f.write(cs / 2, cs, 7);  // copies on write: the snapshot keeps its data
  }
  EXPECT_EQ(f.image->ApplySnapshot("nosuch").code(), StatusCode::kNotFound);
  ASSERT_TRUE(f.image->Close().ok());
  EXPECT_EQ(Run("qemu-img check -f qcow2 " + f.path), 0) << Output("qemu-img check " + f.path);
  const std::string active = (dir_ / "aa.raw").string();
  ASSERT_EQ(Run("qemu-img convert -f qcow2 -O raw " + f.path + " " + active), 0);
  EXPECT_TRUE(ReadFile(active) == f.disk);
  const std::string first = (dir_ / "a1.raw").string();
  ASSERT_EQ(Run("qemu-img convert -f qcow2 -O raw -l snapshot.name=s1 " + f.path + " " + first), 0);
  EXPECT_TRUE(ReadFile(first) == at_snapshot[0]) << "the snapshot itself is intact";
}

INSTANTIATE_TEST_SUITE_P(Clusters, SnapshotTest,
                         ::testing::Values(SnapCase{65536, false}, SnapCase{65536, true},
                                           SnapCase{4096, false}, SnapCase{4096, true}));

TEST(SnapshotEntry, EncodesAsQemuWritesIt) {
  // Observed (qcow2.md section 8): id "1", name "snap1" is 40 + 24 + 1 + 5 = 70, padded to 72.
  EXPECT_EQ(EncodeSnapshotEntry(0x50000, 1, "1", "snap1", 4 << 20).size(), 72u);
}

// A loaded snapshot is a read-only view at the snapshot's own disk size; a read-write load and an
// unknown snapshot are refused.
TEST(SnapshotLoad, ReadOnlyViewAtTheSnapshotsSize) {
  MemoryDevice dev;
  CreateOptions o;
  o.size = 1 << 20;
  ASSERT_TRUE(Image::Create(dev, o).ok());
  {
    auto image = Image::Open(dev, {});
    ASSERT_TRUE(image.ok());
    ASSERT_TRUE((*image)->Write(4096, testing::Pattern(8192, 1)).ok());
    ASSERT_TRUE((*image)->CreateSnapshot("1", "small").ok());
    ASSERT_TRUE((*image)->Resize(2 << 20).ok());
    ASSERT_TRUE((*image)->Write(4096, testing::Pattern(8192, 2)).ok());
    ASSERT_TRUE((*image)->Close().ok());
  }
  OpenOptions view;
  view.read_only = true;
  view.load_snapshot = "small";
  auto snap = Image::Open(dev, view);
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ((*snap)->virtual_size(), uint64_t{1} << 20);
  std::vector<uint8_t> got(8192);
  ASSERT_TRUE((*snap)->Read(4096, got).ok());
  EXPECT_EQ(got, testing::Pattern(8192, 1));
  EXPECT_FALSE((*snap)->Write(0, got).ok());
  view.load_snapshot = "nope";
  auto missing = Image::Open(dev, view);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  view.read_only = false;
  view.load_snapshot = "small";
  EXPECT_FALSE(Image::Open(dev, view).ok());
}

// A snapshot that fails half way (here: 2-bit refcounts overflow on a cluster already shared by
// two snapshots) must leave the image dirty for repair, never marked clean with COPIED flags and
// refcounts that disagree.
TEST(SnapshotFailure, HalfWayFailureLeavesTheImageDirtyForRepair) {
  MemoryDevice dev;
  CreateOptions o;
  o.size = 1 << 20;
  o.refcount_bits = 2;
  ASSERT_TRUE(Image::Create(dev, o).ok());
  {
    auto image = Image::Open(dev, {});
    ASSERT_TRUE(image.ok());
    ASSERT_TRUE((*image)->Write(0, testing::Pattern(65536, 1)).ok());
    ASSERT_TRUE((*image)->CreateSnapshot("1", "s1").ok());
    ASSERT_TRUE((*image)->CreateSnapshot("2", "s2").ok());
    ASSERT_TRUE((*image)->Write(65536, testing::Pattern(65536, 2)).ok());
    Status st = (*image)->CreateSnapshot("3", "s3");
    ASSERT_FALSE(st.ok());
    EXPECT_FALSE((*image)->Write(0, testing::Pattern(512, 3)).ok());  // poisoned
    EXPECT_FALSE((*image)->Close().ok());
  }
  EXPECT_TRUE(dev.bytes()[72 + 7] & 1) << "a failed snapshot must leave the dirty bit set";
  auto image = Image::Open(dev, {});  // repairs
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_FALSE((*image)->header().dirty());
  std::vector<uint8_t> got(65536);
  ASSERT_TRUE((*image)->Read(0, got).ok());
  EXPECT_EQ(got, testing::Pattern(65536, 1));
  ASSERT_TRUE((*image)->Read(65536, got).ok());
  EXPECT_EQ(got, testing::Pattern(65536, 2));
  ASSERT_TRUE((*image)->Close().ok());
}

}  // namespace
}  // namespace crashsim
