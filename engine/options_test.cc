// Tests for engine/options.cc: cache-mode names, qemu-img's -o syntax and validation messages,
// qemu's size syntax, and the backing-file opener's path rules.
#include "engine/options.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "engine/image.h"
#include "engine/memory_device.h"

namespace crashsim {
namespace {

// The message of a failed Validate/parse, or "" on success.
std::string Error(const Status& s) { return s.ok() ? "" : s.message(); }

Result<CreateOptions> Parse(std::string_view text) {
  CreateOptions o;
  RETURN_IF_ERROR(ParseCreateOptions(text, o));
  return o;
}

std::string ValidateError(std::string_view text) {
  auto o = Parse(text);
  if (!o.ok()) return "parse: " + o.status().message();
  return Error(o->Validate());
}

TEST(CacheModeTest, RoundTripsEveryName) {
  for (const char* name : {"writeback", "writethrough", "directsync", "none", "unsafe"}) {
    auto mode = ParseCacheMode(name);
    ASSERT_TRUE(mode.ok()) << name;
    EXPECT_STREQ(CacheModeName(*mode), name);
  }
}

TEST(CacheModeTest, RejectsOtherNamesListingTheValidOnes) {
  for (const char* name : {"off", "", "Writeback", "direct"}) {
    auto mode = ParseCacheMode(name);
    ASSERT_FALSE(mode.ok()) << name;
    EXPECT_EQ(mode.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(mode.status().message().find("writeback, writethrough, directsync, none, unsafe"),
              std::string::npos);
  }
}

TEST(CacheModeTest, Predicates) {
  EXPECT_TRUE(CacheModeWritesThrough(CacheMode::kWritethrough));
  EXPECT_TRUE(CacheModeWritesThrough(CacheMode::kDirectsync));
  EXPECT_FALSE(CacheModeWritesThrough(CacheMode::kNone));
  EXPECT_TRUE(CacheModeDirect(CacheMode::kNone));
  EXPECT_FALSE(CacheModeDirect(CacheMode::kUnsafe));
}

TEST(ParseSizeTest, AcceptsQemuSyntax) {
  struct Case {
    const char* text;
    uint64_t bytes;
  };
  for (const Case& c : {Case{"0", 0},
                        {"512", 512},
                        {"512b", 512},
                        {"512B", 512},
                        {"4k", 4096},
                        {"4K", 4096},
                        {"64M", 64ull << 20},
                        {"64m", 64ull << 20},
                        {"1G", 1ull << 30},
                        {"2T", 2ull << 40},
                        {"1P", 1ull << 50},
                        {"7E", 7ull << 60},
                        {"1.5G", 3ull << 29},
                        {"1.5k", 1536},
                        {"0.5M", 512ull << 10},
                        {"1.0", 1},
                        {"0x1000", 4096},
                        {"0x10k", 16384},
                        {"9223372036854775807", 9223372036854775807ull}}) {
    auto size = ParseSize(c.text);
    ASSERT_TRUE(size.ok()) << c.text << ": " << size.status().message();
    EXPECT_EQ(*size, c.bytes) << c.text;
  }
}

TEST(ParseSizeTest, RejectsGarbageNegativeAndOverflow) {
  for (const char* text :
       {"", "-5", "-0", "abc", "5X", "4kk", "4 k", " 4k", "1.", ".5k", "1.5", "1.5b", "0x", "0xg",
        "k", "8E", "9223372036854775808", "99999999999999999999999", "16777216T"}) {
    auto size = ParseSize(text);
    EXPECT_FALSE(size.ok()) << "'" << text << "' parsed as " << (size.ok() ? *size : 0);
    if (!size.ok()) {
      EXPECT_EQ(size.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(size.status().message().find(std::string("'") + text + "'"), std::string::npos)
          << size.status().message();
    }
  }
  EXPECT_NE(ParseSize("-5").status().message().find("negative"), std::string::npos);
  EXPECT_NE(ParseSize("8E").status().message().find("too large"), std::string::npos);
}

TEST(CreateOptionsTest, DefaultsMatchQemuImg) {
  CreateOptions o;
  o.size = 64 << 20;
  EXPECT_TRUE(o.Validate().ok());
  EXPECT_EQ(o.ToString(),
            "compat=1.1,cluster_size=65536,lazy_refcounts=off,refcount_bits=16,extended_l2=off,"
            "compression_type=zlib,preallocation=off,size=67108864");
}

TEST(CreateOptionsTest, ParsesEveryKey) {
  auto o = Parse(
      "compat=1.1,cluster_size=2M,lazy_refcounts=on,refcount_bits=64,extended_l2=on,"
      "compression_type=zstd,preallocation=metadata,backing_file=a,,b.qcow2,backing_fmt=qcow2,"
      "size=1G");
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->version, 3u);
  EXPECT_EQ(o->cluster_size, 2ull << 20);
  EXPECT_TRUE(o->lazy_refcounts);
  EXPECT_EQ(o->refcount_bits, 64u);
  EXPECT_TRUE(o->extended_l2);
  EXPECT_EQ(o->compression_type, CompressionType::kZstd);
  EXPECT_EQ(o->preallocation, Preallocation::kMetadata);
  EXPECT_EQ(o->backing_file, "a,b.qcow2");
  EXPECT_EQ(o->backing_format, "qcow2");
  EXPECT_EQ(o->size, 1ull << 30);
}

TEST(CreateOptionsTest, CompatAliases) {
  EXPECT_EQ(Parse("compat=0.10")->version, 2u);
  EXPECT_EQ(Parse("compat=v2")->version, 2u);
  EXPECT_EQ(Parse("compat=1.1")->version, 3u);
  EXPECT_EQ(Parse("compat=v3")->version, 3u);
  EXPECT_NE(Error(Parse("compat=2.0").status()).find("'2.0'"), std::string::npos);
}

TEST(CreateOptionsTest, ToStringRoundTrips) {
  auto o = Parse("compat=0.10,cluster_size=4k,backing_file=x,,y,backing_fmt=raw,size=1M");
  ASSERT_TRUE(o.ok());
  auto again = Parse(o->ToString());
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->ToString(), o->ToString());
  EXPECT_EQ(again->backing_file, "x,y");
  EXPECT_EQ(again->version, 2u);
}

TEST(CreateOptionsTest, RejectsUnknownAndMalformedKeys) {
  EXPECT_EQ(Error(Parse("foo=bar").status()), "Invalid parameter 'foo'");
  EXPECT_NE(Error(Parse("lazy_refcounts").status()).find("key=value"), std::string::npos);
  EXPECT_NE(Error(Parse("lazy_refcounts=maybe").status()).find("'on' or 'off'"), std::string::npos);
  EXPECT_NE(Error(Parse("compression_type=lz4").status()).find("'lz4'"), std::string::npos);
  EXPECT_NE(Error(Parse("refcount_bits=abc").status()).find("number"), std::string::npos);
  EXPECT_NE(Error(Parse("cluster_size=abc").status()).find("'abc'"), std::string::npos);
  EXPECT_EQ(Parse("data_file=x").status().code(), StatusCode::kNotSupported);
}

TEST(CreateOptionsTest, FallocAndFullAreNotSupported) {
  for (const char* text : {"preallocation=falloc", "preallocation=full"}) {
    auto o = Parse(text);
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.status().code(), StatusCode::kNotSupported);
    EXPECT_NE(o.status().message().find("not supported"), std::string::npos);
  }
  EXPECT_EQ(Parse("preallocation=bogus").status().code(), StatusCode::kInvalidArgument);
}

TEST(CreateOptionsTest, ValidatesLikeQemuImg) {
  const std::string use11 = "(use compat=1.1 or greater)";
  EXPECT_EQ(ValidateError("compat=0.10,lazy_refcounts=on"),
            "Lazy refcounts only supported with compatibility level 1.1 and above " + use11);
  EXPECT_EQ(
      ValidateError("compat=0.10,refcount_bits=8"),
      "Different refcount widths than 16 bits require compatibility level 1.1 or above " + use11);
  EXPECT_EQ(ValidateError("compat=0.10,refcount_bits=16"), "");
  EXPECT_NE(ValidateError("compat=0.10,extended_l2=on,cluster_size=64k").find("1.1"),
            std::string::npos);
  EXPECT_NE(ValidateError("compat=0.10,compression_type=zstd").find("1.1"), std::string::npos);
  EXPECT_EQ(ValidateError("compat=1.1,compression_type=zstd"), "");
  for (const char* bad : {"refcount_bits=0", "refcount_bits=3", "refcount_bits=128"}) {
    EXPECT_NE(ValidateError(bad).find("power of two"), std::string::npos) << bad;
  }
  for (const char* good : {"refcount_bits=1", "refcount_bits=2", "refcount_bits=64"}) {
    EXPECT_EQ(ValidateError(good), "") << good;
  }
  for (const char* bad : {"cluster_size=256", "cluster_size=1000", "cluster_size=4M"}) {
    EXPECT_EQ(ValidateError(bad), "Cluster size must be a power of two between 512 and 2048k")
        << bad;
  }
  EXPECT_EQ(ValidateError("cluster_size=512"), "");
  EXPECT_EQ(ValidateError("cluster_size=2M"), "");
  EXPECT_NE(ValidateError("cluster_size=8k,extended_l2=on").find("16384"), std::string::npos);
  EXPECT_EQ(ValidateError("cluster_size=16k,extended_l2=on"), "");
  EXPECT_EQ(ValidateError("size=1000"), "Image size must be a multiple of 512 bytes");
  EXPECT_EQ(ValidateError("backing_fmt=raw"), "Backing format cannot be used without backing file");
  EXPECT_NE(ValidateError("backing_file=b,preallocation=metadata").find("extended_l2"),
            std::string::npos);
  EXPECT_EQ(ValidateError("backing_file=b,preallocation=metadata,extended_l2=on"), "");
  EXPECT_EQ(ValidateError("preallocation=metadata,size=1G"), "");
  EXPECT_NE(ValidateError("backing_file=b,backing_fmt=vmdk").find("not supported"),
            std::string::npos);
  EXPECT_NE(ValidateError("cluster_size=512,size=1P").find("too large"), std::string::npos);
}

TEST(CreateOptionsTest, BackingFileNameLengthLimit) {
  CreateOptions o;
  o.backing_file = std::string(1023, 'a');
  EXPECT_TRUE(o.Validate().ok());
  o.backing_file += 'a';
  EXPECT_NE(Error(o.Validate()).find("too long"), std::string::npos);
}

// A scratch directory with a file in it, removed at the end.
class BackingOpenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/crashsim_options_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/base.raw") << "backing bytes";
  }
  void TearDown() override {
    unlink((dir_ + "/base.raw").c_str());
    rmdir(dir_.c_str());
  }
  std::string dir_;
};

TEST_F(BackingOpenerTest, ResolvesRelativeToTheImageDirectory) {
  auto device = PosixBackingOpener(dir_ + "/top.qcow2")("base.raw");
  ASSERT_TRUE(device.ok()) << device.status().message();
  EXPECT_EQ((*device)->Name(), dir_ + "/base.raw");
  EXPECT_EQ(*(*device)->Size(), 13u);
}

TEST_F(BackingOpenerTest, KeepsAbsoluteNames) {
  auto device = PosixBackingOpener("/nonexistent/dir/top.qcow2")(dir_ + "/base.raw");
  ASSERT_TRUE(device.ok()) << device.status().message();
  EXPECT_EQ((*device)->Name(), dir_ + "/base.raw");
}

TEST_F(BackingOpenerTest, OpensReadOnly) {
  auto device = PosixBackingOpener(dir_ + "/top.qcow2")("base.raw");
  ASSERT_TRUE(device.ok());
  uint8_t byte = 'X';
  EXPECT_FALSE((*device)->Write(0, {&byte, 1}, WriteOptions{}).ok());
}

TEST_F(BackingOpenerTest, RejectsProtocolPrefixes) {
  auto opener = PosixBackingOpener(dir_ + "/top.qcow2");
  for (const char* name : {"nbd:localhost:10809", "json:{\"driver\":\"file\"}", "file:base.raw",
                           "http://example.com/x"}) {
    auto device = opener(name);
    ASSERT_FALSE(device.ok()) << name;
    EXPECT_EQ(device.status().code(), StatusCode::kNotSupported) << name;
    EXPECT_NE(device.status().message().find("protocol"), std::string::npos);
  }
}

// The opener says where it looked and why, once; OpenBacking names the backing file and
// Image::Open the image, so neither is repeated in its message.
TEST_F(BackingOpenerTest, MissingFileSaysWhereItLookedOnce) {
  auto device = PosixBackingOpener(dir_ + "/top.qcow2")("missing.qcow2");
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().message(), dir_ + "/missing.qcow2: No such file or directory");
  device = PosixBackingOpener(dir_ + "/top.qcow2")(dir_ + "/missing.qcow2");
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().message(), "No such file or directory");
  EXPECT_FALSE(PosixBackingOpener(dir_ + "/top.qcow2")("").ok());
}

// An image whose backing file is missing (here: opened from another directory than the one its
// backing file sits in) names the image, the backing file and where it was looked for, once each.
TEST_F(BackingOpenerTest, ImageWithMissingBackingFileSaysSoOnce) {
  CreateOptions create;
  create.size = 1 << 20;
  create.backing_file = "base.raw";
  create.backing_format = "raw";
  MemoryDevice device;
  ASSERT_TRUE(Image::Create(device, create, PosixBackingOpener(dir_ + "/top.qcow2")).ok());
  OpenOptions options;
  options.read_only = true;
  options.open_backing = PosixBackingOpener(dir_ + "/elsewhere/top.qcow2");
  auto image = Image::Open(device, options);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().message(), device.Name() + ": Could not open backing file 'base.raw': " +
                                          dir_ + "/elsewhere/base.raw: No such file or directory");
}

TEST(ImageOptsTest, NamesTheFileAndAppliesOpenOptions) {
  OpenOptions o;
  auto path = ParseImageOpts(
      "driver=qcow2,file.driver=file,file.filename=/tmp/a,,b.qcow2,"
      "overlap-check=constant,overlap-check.active-l2=on,"
      "lazy-refcounts=off",
      o);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(*path, "/tmp/a,b.qcow2");  // ",," is a comma, as in QEMU
  EXPECT_EQ(o.overlap_check, kOverlapCheckConstant | ClassBit(MetadataClass::kActiveL2));
  EXPECT_EQ(o.lazy_refcounts, std::optional<bool>(false));
  OpenOptions d;
  ASSERT_TRUE(ParseImageOpts("file.filename=x", d).ok());
  EXPECT_EQ(d.overlap_check, kOverlapCheckCached);
  EXPECT_FALSE(d.lazy_refcounts.has_value());
}

TEST(ImageOptsTest, RejectsWhatItCannotHonour) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"driver=raw,file.filename=x", "driver=raw"},
      {"driver=qcow2", "no file.filename"},
      {"file.filename=x,file.driver=nbd", "file.driver=nbd"},
      {"file.filename=x,l2-cache-size=1M", "does not support the option 'l2-cache-size'"},
      {"file.filename=x,overlap-check=most", "overlap-check=most"},
      {"file.filename=x,lazy-refcounts=maybe", "lazy-refcounts=maybe"},
      {"file.filename=x,junk", "Invalid option 'junk'"},
  };
  for (const Case& c : cases) {
    OpenOptions o;
    auto path = ParseImageOpts(c.text, o);
    ASSERT_FALSE(path.ok()) << c.text;
    EXPECT_NE(path.status().message().find(c.message), std::string::npos)
        << path.status().message();
  }
}

}  // namespace
}  // namespace crashsim
