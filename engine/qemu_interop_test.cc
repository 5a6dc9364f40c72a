// Engine-level interop: images the engine creates and writes pass `qemu-img check` and equal a
// raw file holding the same bytes (`qemu-img compare`). Skipped where qemu-img is missing.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "engine/image.h"
#include "engine/posix_device.h"
#include "engine/test_util.h"

namespace crashsim {
namespace {

namespace fs = std::filesystem;

struct InteropCase {
  uint32_t version;
  uint64_t cluster_size;
  uint32_t refcount_bits;
  bool lazy;
  bool extended_l2;
  bool preallocate;
};

class QemuInteropTest : public ::testing::TestWithParam<InteropCase> {
 protected:
  void SetUp() override {
    if (!testing::HaveQemuImg()) GTEST_SKIP() << "qemu-img not installed";
    dir_ = fs::temp_directory_path() / ("crashsim-interop-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  int Run(const std::string& cmd) {
    return WEXITSTATUS(std::system((cmd + " >/dev/null 2>&1").c_str()));
  }
  fs::path dir_;
};

TEST_P(QemuInteropTest, EngineImagesCheckCleanAndMatchRaw) {
  const InteropCase c = GetParam();
  const uint64_t size = 4 << 20;
  const std::string img = (dir_ / "t.qcow2").string(), raw = (dir_ / "t.raw").string();
  CreateOptions o = testing::MatrixOptions(size, c.version, c.cluster_size, c.refcount_bits, c.lazy,
                                           c.extended_l2);
  o.preallocation = c.preallocate ? Preallocation::kMetadata : Preallocation::kOff;
  {
    auto dev = PosixDevice::Open(img, {.create = true});
    ASSERT_TRUE(dev.ok());
    Status st = Image::Create(**dev, o);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::vector<uint8_t> model(size, 0);
  std::mt19937_64 rng(c.cluster_size + c.refcount_bits);
  {
    auto dev = PosixDevice::Open(img, {});
    ASSERT_TRUE(dev.ok());
    auto image = Image::Open(std::move(dev).value(), {});
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    for (int i = 0; i < 40; ++i) {
      uint64_t off = rng() % size, len = 1 + rng() % std::min<uint64_t>(size - off, 200000);
      int kind = static_cast<int>(rng() % 8);
      if (kind < 5) {
        auto data = testing::Pattern(len, static_cast<uint8_t>(i));
        ASSERT_TRUE((*image)->Write(off, data).ok());
        std::copy(data.begin(), data.end(), model.begin() + static_cast<std::ptrdiff_t>(off));
      } else if (kind < 7) {
        ASSERT_TRUE((*image)->WriteZeroes(off, len, kind == 6).ok());
        std::fill_n(model.begin() + static_cast<std::ptrdiff_t>(off), len, 0);
      } else {
        ASSERT_TRUE((*image)->Discard(off, len).ok());
        uint64_t s = AlignUp(off, c.cluster_size), e = AlignDown(off + len, c.cluster_size);
        for (uint64_t p = s; p < e; ++p) model[p] = 0;
      }
    }
    ASSERT_TRUE((*image)->Close().ok());
  }
  std::ofstream(raw, std::ios::binary)
      .write(reinterpret_cast<const char*>(model.data()),
             static_cast<std::streamsize>(model.size()));
  EXPECT_EQ(Run("qemu-img check " + img), 0) << "qemu-img check failed on " << img;
  EXPECT_EQ(Run("qemu-img compare -f qcow2 -F raw " + img + " " + raw), 0);
  if (::testing::Test::HasFailure()) {
    std::system(("qemu-img check " + img + " | tail -5; cp " + img + " /tmp/failed.qcow2").c_str());
  }
}

std::vector<InteropCase> Cases() {
  std::vector<InteropCase> out;
  for (uint64_t cs : {512u, 4096u, 65536u, 2u << 20}) {
    out.push_back({2, cs, 16, false, false, false});
    out.push_back({3, cs, 1, false, false, false});
    out.push_back({3, cs, 16, true, false, false});
    out.push_back({3, cs, 64, true, false, cs >= 4096});
    if (cs >= 16384) out.push_back({3, cs, 16, true, true, false});
  }
  out.push_back({3, 65536, 16, false, false, true});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Matrix, QemuInteropTest, ::testing::ValuesIn(Cases()),
                         [](const auto& param_info) {
                           const InteropCase& c = param_info.param;
                           return fmt::format("v{}_cs{}_rc{}{}{}{}", c.version, c.cluster_size,
                                              c.refcount_bits, c.lazy ? "_lazy" : "",
                                              c.extended_l2 ? "_ext" : "",
                                              c.preallocate ? "_prealloc" : "");
                         });

}  // namespace
}  // namespace crashsim
