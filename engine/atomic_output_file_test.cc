// AtomicOutputFile: the target appears only on Commit(), whole; an abandoned file leaves nothing
// behind and a file that was at the target name untouched.
#include "engine/atomic_output_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace crashsim {
namespace {

namespace fs = std::filesystem;

class AtomicOutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("crashsim-atomic-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string Contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void Put(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
  }
  // The names in the directory, so a leftover temporary file shows.
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

TEST_F(AtomicOutputFileTest, TargetAppearsOnlyOnCommit) {
  auto file = AtomicOutputFile::Create(Path("out"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE((*file)->Append("hello ").ok());
  ASSERT_TRUE((*file)->Append("world").ok());
  EXPECT_FALSE(fs::exists(Path("out")));
  EXPECT_EQ(fs::path((*file)->temp_path()).parent_path(), dir_);
  ASSERT_TRUE((*file)->Commit().ok());
  EXPECT_EQ(Contents(Path("out")), "hello world");
  file->reset();
  EXPECT_EQ(Names(), std::vector<std::string>{"out"});
}

TEST_F(AtomicOutputFileTest, AbandonedFileLeavesNothingAndKeepsTheOldTarget) {
  Put(Path("out"), "precious");
  {
    auto file = AtomicOutputFile::Create(Path("out"));
    ASSERT_TRUE(file.ok());
    auto device = (*file)->Device();
    ASSERT_TRUE(device.ok());
    std::vector<uint8_t> data(4096, 0x55);
    ASSERT_TRUE((*device)->Write(0, data, WriteOptions{}).ok());
    ASSERT_TRUE((*device)->Resize(1 << 20).ok());
  }  // destroyed without Commit(), as a command that failed part-way
  EXPECT_EQ(Contents(Path("out")), "precious");
  EXPECT_EQ(Names(), std::vector<std::string>{"out"});
}

TEST_F(AtomicOutputFileTest, DeviceWritesReachTheTargetAndItsMessagesNameIt) {
  auto file = AtomicOutputFile::Create(Path("image"));
  ASSERT_TRUE(file.ok());
  auto device = (*file)->Device();
  ASSERT_TRUE(device.ok());
  EXPECT_EQ((*device)->Name(), Path("image"));
  std::vector<uint8_t> data(512, 0xa5);
  ASSERT_TRUE((*device)->Write(1024, data, WriteOptions{}).ok());
  ASSERT_TRUE((*file)->Commit().ok());
  EXPECT_EQ(fs::file_size(Path("image")), 1536u);
  std::vector<uint8_t> back(512);
  EXPECT_TRUE((*device)->Read(1024, back).ok());  // the device outlives the commit
  EXPECT_EQ(back, data);
}

TEST_F(AtomicOutputFileTest, ReplacingKeepsTheModeAndFollowsSymlinks) {
  Put(Path("real"), "old");
  ASSERT_EQ(::chmod(Path("real").c_str(), 0600), 0);
  fs::create_symlink("real", Path("link"));
  ASSERT_TRUE(WriteFileAtomically(Path("link"), "new").ok());
  EXPECT_TRUE(fs::is_symlink(Path("link")));
  EXPECT_EQ(Contents(Path("real")), "new");
  struct stat st;
  ASSERT_EQ(::stat(Path("real").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(Names(), (std::vector<std::string>{"link", "real"}));
}

TEST_F(AtomicOutputFileTest, RefusesADirectoryAndANonWritableFileUpFront) {
  fs::create_directories(Path("sub"));
  auto dir = AtomicOutputFile::Create(Path("sub"));
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find(Path("sub")), std::string::npos);
  if (::geteuid() != 0) {  // root may write anything
    Put(Path("ro"), "keep");
    ASSERT_EQ(::chmod(Path("ro").c_str(), 0444), 0);
    auto ro = AtomicOutputFile::Create(Path("ro"));
    ASSERT_FALSE(ro.ok());
    EXPECT_NE(ro.status().message().find(Path("ro")), std::string::npos);
  }
  for (const std::string& name : Names()) EXPECT_EQ(name.find(".tmp-"), std::string::npos);
}

TEST_F(AtomicOutputFileTest, ANonRegularTargetIsWrittenInPlace) {
  ASSERT_TRUE(WriteFileAtomically("/dev/null", "discarded").ok());
}

TEST_F(AtomicOutputFileTest, AMissingDirectoryIsAnErrorNamingTheTarget) {
  auto file = AtomicOutputFile::Create(Path("no/such/out"));
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find(Path("no/such/out")), std::string::npos);
}

}  // namespace
}  // namespace crashsim
