// Differential tests against qemu-img check (7.2): images made by qemu-img/qemu-io, corrupted by
// byte edits, checked by both tools. The exit code and the leak/corruption counts must match;
// after Repair(kAll) qemu-img must see a clean image whose guest content equals qemu-img's own
// repair wherever that repair keeps it (outside the ranges our repair reports as dropped).
// Also covered: persistent dirty bitmaps (made by `qemu-img bitmap`, and marked in_use by our
// engine's first write), -r leaks on an image with the corrupt bit, and the header fields our
// decoder refuses where qemu-img still checks.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/check/check.h"
#include "engine/check/check_test_util.h"
#include "engine/format/header.h"
#include "engine/image.h"
#include "engine/memory_device.h"

namespace crashsim {
namespace {

using check_test::HaveQemu;
using check_test::ImageEditor;
using check_test::LoadFile;
using check_test::QemuImgCheck;
using check_test::RunCommand;
using check_test::SaveFile;

class CheckDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveQemu()) GTEST_SKIP() << "qemu-img/qemu-io not installed";
  }

  // Quoted path. Built with append: g++ 12 at -O3 reports a false -Wrestrict on "'" + string&&.
  std::string Q(const std::string& name) const {
    std::string quoted(1, '\'');
    quoted.append(dir_.Path(name)).push_back('\'');
    return quoted;
  }

  // qemu-img create + qemu-io commands; returns the image bytes.
  std::vector<uint8_t> Make(const std::string& name, const std::string& options,
                            const std::string& size, const std::vector<std::string>& io = {},
                            int expected_io_exit = 0) {
    std::string create = "qemu-img create -q -f qcow2 " + options + " " + Q(name) + " " + size;
    EXPECT_EQ(RunCommand(create).exit_code, 0) << create;
    if (!io.empty()) {
      std::string cmd = "qemu-io";
      for (const std::string& c : io) cmd += " -c '" + c + "'";
      EXPECT_EQ(RunCommand(cmd + " " + Q(name)).exit_code, expected_io_exit) << cmd;
    }
    return LoadFile(dir_.Path(name));
  }

  // Check on both sides; returns our report.
  CheckReport ExpectSameCheck(const std::string& name, const std::vector<uint8_t>& bytes) {
    SaveFile(dir_.Path(name), bytes);
    check_test::QemuCheck q = QemuImgCheck(dir_.Path(name));
    MemoryDevice device(bytes);
    CheckReport r = Check(device);
    EXPECT_EQ(device.bytes(), bytes) << "a check without -r must not write";
    EXPECT_EQ(CheckExitCode(r), q.exit_code) << name << "\n" << FormatCheckFindings(r);
    if (q.exit_code != 1) {
      EXPECT_EQ(r.corruptions, q.corruptions) << name << "\n" << FormatCheckFindings(r);
      EXPECT_EQ(r.leaks, q.leaks) << name << "\n" << FormatCheckFindings(r);
      EXPECT_EQ(r.check_errors, q.check_errors) << name;
      EXPECT_EQ(static_cast<int64_t>(r.image_end_offset), q.image_end_offset) << name;
      EXPECT_EQ(static_cast<int64_t>(r.allocated_clusters), q.allocated) << name;
      EXPECT_EQ(static_cast<int64_t>(r.fragmented_clusters), q.fragmented) << name;
      EXPECT_EQ(static_cast<int64_t>(r.compressed_clusters), q.compressed) << name;
      EXPECT_EQ(static_cast<int64_t>(r.total_clusters), q.total) << name;
    }
    return r;
  }

  // Repairs a copy with each tool; ours must end clean for qemu-img and keep qemu-img's content.
  CheckReport ExpectRepairClean(const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string theirs = name + ".qemu-repaired";
    SaveFile(dir_.Path(theirs), bytes);
    QemuImgCheck(dir_.Path(theirs), "all");
    const bool theirs_readable =
        RunCommand("qemu-img convert -O raw " + Q(theirs) + " " + Q(theirs + ".raw")).exit_code ==
        0;

    MemoryDevice device(bytes);
    CheckReport r = Repair(device, RepairMode::kAll);
    EXPECT_EQ(CheckExitCode(r), 0) << name << "\n" << FormatCheckFindings(r);
    const std::string ours = name + ".ours";
    SaveFile(dir_.Path(ours), device.bytes());
    check_test::QemuCheck after = QemuImgCheck(dir_.Path(ours));
    EXPECT_EQ(after.exit_code, 0) << name << " after our repair\n" << FormatCheckFindings(r);
    EXPECT_EQ(after.leaks + after.corruptions, 0) << name;
    ImageEditor ed{device.mutable_bytes()};
    if (ed.Get32(4) == 3) {
      EXPECT_EQ(ed.Get64(72) & 3, 0u) << "dirty/corrupt bits not cleared";
    }
    EXPECT_EQ(RunCommand("qemu-img convert -O raw " + Q(ours) + " " + Q(ours + ".raw")).exit_code,
              0);
    if (theirs_readable) {
      std::vector<uint8_t> a = LoadFile(dir_.Path(theirs + ".raw"));
      std::vector<uint8_t> b = LoadFile(dir_.Path(ours + ".raw"));
      EXPECT_EQ(a.size(), b.size());
      for (const Finding& f : r.findings) {  // ranges we dropped are not compared
        if (f.kind != FindingKind::kDroppedMapping) continue;
        for (uint64_t i = f.guest_offset;
             i < f.guest_offset + f.guest_length && i < a.size() && i < b.size(); ++i) {
          a[i] = b[i] = 0;
        }
      }
      EXPECT_TRUE(a == b) << name << ": guest content differs from qemu-img's repair";
    }
    return r;
  }

  check_test::TempDir dir_;
};

const std::vector<std::string> kWrites = {"write -P 0x11 0 128k", "write -P 0x22 1M 64k",
                                          "write -P 0x33 5M 64k"};

TEST_F(CheckDiffTest, CleanImagesOfEveryShapeMatch) {
  struct Shape {
    const char* name;
    const char* options;
    std::vector<std::string> io;
  };
  const std::vector<Shape> shapes = {
      {"v2", "-o compat=0.10", kWrites},
      {"v3", "-o compat=1.1", kWrites},
      {"c512", "-o cluster_size=512", kWrites},
      {"c2m", "-o cluster_size=2M", kWrites},
      {"rc1", "-o refcount_bits=1", kWrites},
      {"rc64", "-o refcount_bits=64", kWrites},
      {"compressed", "", {"write -c -P 0x44 0 64k", "write -c -P 0x45 64k 64k", "write 1M 64k"}},
      {"zstd", "-o compression_type=zstd", {"write -c -P 0x46 0 128k"}},
      {"zeros",
       "",
       {"write -P 1 0 256k", "write -z 64k 64k", "discard 128k 64k", "write -z 2M 64k"}},
      {"prealloc", "-o preallocation=metadata", {}},
      {"extl2", "-o extended_l2=on,cluster_size=64k", {"write -P 7 0 4k", "write -z 64k 8k"}},
      {"empty", "", {}},
  };
  for (const Shape& s : shapes) {
    std::vector<uint8_t> bytes = Make(s.name, s.options, "16M", s.io);
    CheckReport r = ExpectSameCheck(s.name, bytes);
    EXPECT_EQ(CheckExitCode(r), 0) << s.name << "\n" << FormatCheckFindings(r);
  }
}

TEST_F(CheckDiffTest, SnapshotsAndBackingChains) {
  std::vector<uint8_t> snap = Make("snap", "", "16M", kWrites);
  ASSERT_EQ(RunCommand("qemu-img snapshot -c s1 " + Q("snap")).exit_code, 0);
  ASSERT_EQ(RunCommand("qemu-io -c 'write -P 0x55 0 64k' " + Q("snap")).exit_code, 0);
  ASSERT_EQ(RunCommand("qemu-img snapshot -c s2 " + Q("snap")).exit_code, 0);
  snap = LoadFile(dir_.Path("snap"));
  EXPECT_EQ(CheckExitCode(ExpectSameCheck("snap", snap)), 0);

  Make("base", "", "16M", kWrites);
  std::vector<uint8_t> top =
      Make("top", "-b " + dir_.Path("base") + " -F qcow2", "16M", {"write -P 0x66 64k 64k"});
  EXPECT_EQ(CheckExitCode(ExpectSameCheck("top", top)), 0);
  // A leak in the overlay: the repair must keep what reads through to the backing file.
  ImageEditor ed{top};
  ed.Set64(ed.L2EntryOffset(1), 0);
  ExpectSameCheck("top-leak", top);
  ExpectRepairClean("top-leak", top);
}

// One entry of the corruption script: a named byte edit of a qemu-img-made image.
struct Corruption {
  const char* name;
  void (*edit)(ImageEditor&);
};

std::vector<uint8_t> Corrupted(std::vector<uint8_t> bytes, const Corruption& c) {
  ImageEditor ed{bytes};
  c.edit(ed);
  return bytes;
}

TEST_F(CheckDiffTest, CorruptedImagesMatchAndRepair) {
  const std::vector<Corruption> cases = {
      {"leaked-cluster", [](ImageEditor& e) { e.Set64(e.L2EntryOffset(16), 0); }},
      {"refcount-too-low",
       [](ImageEditor& e) { e.Set64(e.L2EntryOffset(20), e.Get64(e.L2EntryOffset(0))); }},
      {"refcount-zero",
       [](ImageEditor& e) {
         e.SetRefcount16((e.Get64(e.L2EntryOffset(1)) & 0x00fffffffffffe00ull) / e.cluster_size(),
                         0);
       }},
      {"l2-entry-past-eof",
       [](ImageEditor& e) {
         e.Set64(e.L2EntryOffset(1),
                 (1ull << 63) | (e.bytes.size() / e.cluster_size() + 10) * e.cluster_size());
       }},
      {"l2-entry-unaligned",
       [](ImageEditor& e) { e.Set64(e.L2EntryOffset(1), e.Get64(e.L2EntryOffset(1)) + 0x200); }},
      {"l1-into-header", [](ImageEditor& e) { e.Set64(e.l1_table_offset(), 1ull << 63); }},
      {"l1-unaligned-in-header",
       [](ImageEditor& e) { e.Set64(e.l1_table_offset(), (1ull << 63) | 0x200); }},
      {"data-overlaps-l1",
       [](ImageEditor& e) { e.Set64(e.L2EntryOffset(16), (1ull << 63) | e.l1_table_offset()); }},
      {"data-overlaps-refblock",
       [](ImageEditor& e) {
         e.Set64(e.L2EntryOffset(16), (1ull << 63) | (e.Get64(e.reftable_offset()) & ~0x1ffull));
       }},
      {"zero-reftable-entry", [](ImageEditor& e) { e.Set64(e.reftable_offset(), 0); }},
      {"dirty-lazy-off", [](ImageEditor& e) { e.Set64(72, e.Get64(72) | 1); }},
      {"corrupt-bit", [](ImageEditor& e) { e.Set64(72, e.Get64(72) | 2); }},
      {"l2-reserved-bits",
       [](ImageEditor& e) { e.Set64(e.L2EntryOffset(1), e.Get64(e.L2EntryOffset(1)) | 0x2); }},
      {"l1-reserved-bits",
       [](ImageEditor& e) { e.Set64(e.l1_table_offset(), e.L1Entry(0) | 0x100); }},
      {"truncated", [](ImageEditor& e) { e.bytes.resize(e.bytes.size() - 2 * e.cluster_size()); }},
      // qemu-img reads the header as the L1 table; its repair cannot move it (exit 2), ours
      // moves it off the header and reads what qemu-img reads (issue 13).
      {"l1-offset-0", [](ImageEditor& e) { e.Set64(40, 0); }},
  };
  const std::vector<uint8_t> base = Make("base", "-o compat=1.1", "64M", kWrites);
  for (const Corruption& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<uint8_t> bytes = Corrupted(base, c);
    ExpectSameCheck(c.name, bytes);
    ExpectRepairClean(c.name, bytes);
  }
}

TEST_F(CheckDiffTest, UnopenableImagesFailLikeQemu) {
  const std::vector<Corruption> cases = {
      {"unknown-incompatible-bit", [](ImageEditor& e) { e.Set64(72, e.Get64(72) | (1ull << 5)); }},
      {"huge-l1-size", [](ImageEditor& e) { e.Set32(36, 0x1000000); }},
      {"huge-reftable", [](ImageEditor& e) { e.Set32(56, 0x100000); }},
  };
  const std::vector<uint8_t> base = Make("base", "-o compat=1.1", "64M", kWrites);
  for (const Corruption& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<uint8_t> bytes = Corrupted(base, c);
    CheckReport r = ExpectSameCheck(c.name, bytes);
    EXPECT_EQ(CheckExitCode(r), 1);
    MemoryDevice device(bytes);
    EXPECT_EQ(CheckExitCode(Repair(device, RepairMode::kAll)), 1);
    EXPECT_EQ(device.bytes(), bytes) << "a repair that cannot open the image must not write";
  }
}

TEST_F(CheckDiffTest, GarbageSnapshotTable) {
  std::vector<uint8_t> bytes = Make("snapbase", "", "16M", kWrites);
  ASSERT_EQ(RunCommand("qemu-img snapshot -c s1 " + Q("snapbase")).exit_code, 0);
  ASSERT_EQ(RunCommand("qemu-img snapshot -c s2 " + Q("snapbase")).exit_code, 0);
  bytes = LoadFile(dir_.Path("snapbase"));
  ImageEditor ed{bytes};
  const uint64_t table = ed.Get64(64);
  uint64_t x = 0x9e3779b97f4a7c15ull;  // splitmix-style garbage, deterministic
  // The table ends the file (qemu-img does not pad it to a cluster): the garbage stops there.
  ASSERT_LT(table + 8, bytes.size());
  for (uint64_t i = 8; i < 200 && table + i < bytes.size(); ++i) {
    x += 0x9e3779b97f4a7c15ull;
    bytes[table + i] = static_cast<uint8_t>((x ^ (x >> 29)) * 0xbf58476d1ce4e5b9ull >> 56);
  }
  ExpectSameCheck("garbage-snapshots", bytes);
  // Only the first entry's L1 pointer survives; the repair keeps the active image intact.
  ExpectRepairClean("garbage-snapshots", bytes);

  std::vector<uint8_t> misaligned = LoadFile(dir_.Path("snapbase"));
  ImageEditor ed2{misaligned};
  ed2.Set64(table, ed2.Get64(table) + 0x200);  // snapshot 1's L1 offset, unaligned
  ExpectSameCheck("unaligned-snapshot-l1", misaligned);
  ExpectRepairClean("unaligned-snapshot-l1", misaligned);
}

// qcow2.md §9 E1: a lazy-refcounts image killed after a write.
TEST_F(CheckDiffTest, LazyImageKilledMidWrite) {
  std::vector<uint8_t> bytes = Make("lazy", "-o compat=1.1,lazy_refcounts=on", "64M",
                                    {"write -P 0xaa 0 128k", "sigraise 9"}, 137);
  CheckReport r = ExpectSameCheck("lazy", bytes);
  EXPECT_EQ(r.corruptions, 4);
  EXPECT_EQ(CheckExitCode(r), 2);
  EXPECT_NE(FormatCheckFindings(r).find("ERROR cluster 5 refcount=0 reference=1"),
            std::string::npos);
  EXPECT_NE(FormatCheckFindings(r).find(
                "ERROR OFLAG_COPIED data cluster: l2_entry=8000000000050000 refcount=0"),
            std::string::npos);
  CheckReport repaired = ExpectRepairClean("lazy", bytes);
  EXPECT_TRUE(repaired.rebuilt);
  EXPECT_EQ(repaired.corruptions_fixed, 2);  // as qemu-img reports (E2)
  // Every written byte survives.
  EXPECT_EQ(RunCommand("qemu-io -r -c 'read -P 0xaa 0 128k' " + Q("lazy.ours"))
                .output.find("Pattern verification failed"),
            std::string::npos);
  // -r leaks cannot rebuild: exit 1 on both sides.
  MemoryDevice device(bytes);
  EXPECT_EQ(CheckExitCode(Repair(device, RepairMode::kLeaks)), 1);
  SaveFile(dir_.Path("lazy-leaks"), bytes);
  EXPECT_EQ(QemuImgCheck(dir_.Path("lazy-leaks"), "leaks").exit_code, 1);
}

// The bitmap directory's entries: {table offset, table size, flags} each.
struct BitmapDirEntry {
  uint64_t entry_offset = 0;  // of the directory entry in the file
  uint64_t table_offset = 0;
  uint32_t table_size = 0;
  uint32_t flags = 0;
};

std::vector<BitmapDirEntry> BitmapDirectory(const std::vector<uint8_t>& bytes) {
  Result<QcowHeader> h = DecodeHeader(bytes, bytes.size(), {.for_check = true});
  EXPECT_TRUE(h.ok() && h->bitmaps) << "no bitmaps extension";
  if (!h.ok() || !h->bitmaps) return {};
  ImageEditor ed{const_cast<std::vector<uint8_t>&>(bytes)};
  std::vector<BitmapDirEntry> out;
  uint64_t pos = h->bitmaps->bitmap_directory_offset;
  for (uint32_t i = 0; i < h->bitmaps->nb_bitmaps; ++i) {
    BitmapDirEntry e{pos, ed.Get64(pos), ed.Get32(pos + 8), ed.Get32(pos + 12)};
    out.push_back(e);
    const uint64_t name_size = ed.Get32(pos + 16) & 0xffff;
    pos += (24 + ed.Get32(pos + 20) + name_size + 7) / 8 * 8;
  }
  return out;
}

// The offset in the file of the first bitmap table entry that names a data cluster.
uint64_t FirstBitmapDataEntry(const std::vector<uint8_t>& bytes, const BitmapDirEntry& bm) {
  ImageEditor ed{const_cast<std::vector<uint8_t>&>(bytes)};
  for (uint32_t i = 0; i < bm.table_size; ++i) {
    if (ed.Get64(bm.table_offset + i * 8) & 0x00fffffffffffe00ull) return bm.table_offset + i * 8;
  }
  ADD_FAILURE() << "bitmap table at " << bm.table_offset << " names no data cluster";
  return 0;
}

// qemu-img bitmap --add/--enable/--disable and writes between them: the bitmap directory,
// tables and data clusters are referenced exactly as qemu-img counts them.
TEST_F(CheckDiffTest, PersistentBitmapsMatch) {
  const std::string img = Q("bm");
  Make("bm", "-o compat=1.1", "64M");
  for (const std::string& cmd :
       {"qemu-img bitmap --add " + img + " b0", "qemu-img bitmap --add -g 128k " + img + " b1",
        "qemu-io -c 'write -P 1 0 1M' -c 'write -P 2 20M 64k' " + img,
        "qemu-img bitmap --disable " + img + " b1",
        "qemu-img bitmap --add --disable " + img + " b2", "qemu-io -c 'write -P 3 40M 128k' " + img,
        "qemu-img bitmap --enable " + img + " b1", "qemu-io -c 'write -P 4 60M 64k' " + img}) {
    ASSERT_EQ(RunCommand(cmd).exit_code, 0) << cmd;
  }
  const std::vector<uint8_t> bytes = LoadFile(dir_.Path("bm"));
  const std::vector<BitmapDirEntry> dir = BitmapDirectory(bytes);
  ASSERT_EQ(dir.size(), 3u);
  for (const BitmapDirEntry& e : dir) EXPECT_EQ(e.flags & 1, 0u) << "in_use after qemu-img";
  CheckReport r = ExpectSameCheck("bm", bytes);
  EXPECT_EQ(CheckExitCode(r), 0) << FormatCheckFindings(r);

  // A bitmap data cluster no table names any more: a leak for both tools, and -r all frees it.
  std::vector<uint8_t> leaked = bytes;
  ImageEditor{leaked}.Set64(FirstBitmapDataEntry(bytes, dir[0]), 0);
  r = ExpectSameCheck("bm-leak", leaked);
  EXPECT_EQ(r.leaks, 1);
  EXPECT_EQ(CheckExitCode(r), 3);
  ExpectRepairClean("bm-leak", leaked);

  // A bitmap table naming a guest data cluster: that cluster's refcount is too low.
  std::vector<uint8_t> shared = bytes;
  ImageEditor ed{shared};
  ed.Set64(FirstBitmapDataEntry(bytes, dir[1]),
           ed.Get64(ed.L2EntryOffset(0)) & 0x00fffffffffffe00ull);
  r = ExpectSameCheck("bm-shares-data", shared);
  EXPECT_GE(r.corruptions, 1);
  ExpectRepairClean("bm-shares-data", shared);

  // Our engine's first write sets every bitmap's in_use flag (it does not update bitmaps): the
  // image must still check clean, with the bitmaps' clusters still counted, on both sides.
  MemoryDevice device(bytes);
  {
    Result<std::unique_ptr<Image>> image = Image::Open(device, OpenOptions{});
    ASSERT_TRUE(image.ok()) << image.status().message();
    const std::vector<uint8_t> data(128 * 1024, 0x5a);
    ASSERT_TRUE((*image)->Write(30 << 20, data).ok());  // a new L2-mapped range
    ASSERT_TRUE((*image)->Write(0, std::span(data).first(4096)).ok());
    ASSERT_TRUE((*image)->Close().ok());
  }
  const std::vector<uint8_t> in_use = device.bytes();
  for (const BitmapDirEntry& e : BitmapDirectory(in_use)) {
    EXPECT_EQ(e.flags & 1, 1u) << "bitmap at " << e.entry_offset << " not marked in_use";
  }
  r = ExpectSameCheck("bm-in-use", in_use);
  EXPECT_EQ(CheckExitCode(r), 0) << FormatCheckFindings(r);
  EXPECT_EQ(r.leaks + r.corruptions, 0);
}

// -r leaks on an image with the corrupt bit (qcow2.md §3.4): without corruptions left the repair
// clears the bit, as qemu-img's does; with a corruption left, the bit stays and the exit is 2.
TEST_F(CheckDiffTest, RepairLeaksOnCorruptBit) {
  const std::vector<uint8_t> base = Make("cbase", "-o compat=1.1", "64M", kWrites);
  const std::vector<Corruption> cases = {
      {"corrupt-bit-only", [](ImageEditor&) {}},
      {"corrupt-bit-leak", [](ImageEditor& e) { e.Set64(e.L2EntryOffset(16), 0); }},
      {"corrupt-bit-too-low",
       [](ImageEditor& e) { e.Set64(e.L2EntryOffset(20), e.Get64(e.L2EntryOffset(0))); }},
  };
  for (const Corruption& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<uint8_t> bytes = Corrupted(base, c);
    ImageEditor{bytes}.Set64(72, ImageEditor{bytes}.Get64(72) | 2);
    const std::string name = c.name;
    SaveFile(dir_.Path(name), bytes);
    const check_test::QemuCheck q = QemuImgCheck(dir_.Path(name), "leaks");
    const std::vector<uint8_t> theirs = LoadFile(dir_.Path(name));
    MemoryDevice device(bytes);
    CheckReport r = Repair(device, RepairMode::kLeaks);
    EXPECT_EQ(CheckExitCode(r), q.exit_code) << FormatCheckFindings(r);
    EXPECT_EQ(r.leaks_fixed, q.leaks_fixed);
    EXPECT_EQ(r.corruptions_fixed, q.corruptions_fixed);
    EXPECT_EQ(r.leaks, q.leaks);
    EXPECT_EQ(r.corruptions, q.corruptions);
    ImageEditor ours{device.mutable_bytes()};
    ImageEditor qemus{const_cast<std::vector<uint8_t>&>(theirs)};
    EXPECT_EQ(ours.Get64(72), qemus.Get64(72)) << "incompatible features differ";
    const bool clean = q.corruptions == 0;
    EXPECT_EQ(r.marked_clean, clean);
    EXPECT_EQ(ours.Get64(72) & 2, clean ? 0u : 2u);
    if (clean) {
      SaveFile(dir_.Path(name + ".ours"), device.bytes());
      EXPECT_EQ(QemuImgCheck(dir_.Path(name + ".ours")).exit_code, 0);
    }
  }
}

// Header fields engine/format/header.cc refuses even for a check, where qemu-img opens the image
// and reports what the walk finds. Documented here; a header_length that is not a multiple of 8
// fails to open on both sides.
TEST_F(CheckDiffTest, HeaderFieldsTheDecoderRefuses) {
  const std::vector<uint8_t> base = Make("hbase", "-o compat=1.1", "64M", {"write -P 1 0 128k"});
  struct Case {
    Corruption edit;
    int ours;  // exit code of our check
    int qemu;  // exit code of qemu-img check
  };
  const std::vector<Case> cases = {
      {{"header-length-108", [](ImageEditor& e) { e.Set32(100, 108); }}, 1, 1},
      // Known divergence: qemu-img walks a reftable at 0 (the header read as refcount table
      // entries) and reports corruptions; our decoder refuses the image.
      {{"reftable-offset-0", [](ImageEditor& e) { e.Set64(48, 0); }}, 1, 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.edit.name);
    std::vector<uint8_t> bytes = Corrupted(base, c.edit);
    SaveFile(dir_.Path(c.edit.name), bytes);
    EXPECT_EQ(QemuImgCheck(dir_.Path(c.edit.name)).exit_code, c.qemu);
    MemoryDevice device(bytes);
    CheckReport r = Check(device);
    EXPECT_EQ(CheckExitCode(r), c.ours) << FormatCheckFindings(r);
    EXPECT_FALSE(r.status.ok());
    // The refusal names the field and nothing made up (it once claimed a file of 2^62 bytes).
    EXPECT_EQ(r.status.message().find("4611686018427387904"), std::string::npos)
        << r.status.message();
  }
}

// qemu-img opens the backing chain before it checks: an overlay whose backing file is gone is
// not checked (exit 1, "Could not open backing file"), with or without -r, and never written.
TEST_F(CheckDiffTest, MissingBackingFileFailsLikeQemu) {
  Make("gone-base", "", "16M", kWrites);
  const std::vector<uint8_t> top = Make("orphan", "-b " + dir_.Path("gone-base") + " -F qcow2",
                                        "16M", {"write -P 0x66 64k 64k"});
  const CheckOptions with_chain{.open_backing = PosixBackingOpener(dir_.Path("orphan"))};
  MemoryDevice present(top);
  EXPECT_EQ(CheckExitCode(Check(present, with_chain)), 0);

  ASSERT_EQ(RunCommand("rm " + Q("gone-base")).exit_code, 0);
  SaveFile(dir_.Path("orphan"), top);
  EXPECT_EQ(QemuImgCheck(dir_.Path("orphan")).exit_code, 1);
  for (RepairMode mode : {RepairMode::kNone, RepairMode::kLeaks, RepairMode::kAll}) {
    MemoryDevice device(top);
    CheckOptions options = with_chain;
    options.repair = mode;
    CheckReport r = Check(device, options);
    EXPECT_EQ(CheckExitCode(r), 1);
    EXPECT_TRUE(r.open_failed);
    EXPECT_NE(r.status.message().find("Could not open backing file"), std::string::npos)
        << r.status.message();
    EXPECT_NE(r.status.message().find("gone-base"), std::string::npos) << r.status.message();
    EXPECT_EQ(device.bytes(), top) << "a check that cannot open the chain must not write";
  }
}

}  // namespace
}  // namespace crashsim
