// The conformance corpus and runner (conformance.h).
#include "validate/conformance.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "engine/atomic_output_file.h"
#include "engine/check/check.h"
#include "engine/coding.h"
#include "engine/compression.h"
#include "engine/format/entries.h"
#include "engine/image.h"
#include "engine/options.h"
#include "engine/posix_device.h"
#include "process/subprocess.h"
#include "properties/workload.h"
#include "simdisk/hash.h"
#include "validate/target.h"

namespace crashsim::validate {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kDiskSize = 4 << 20;

// libqcow through its Python binding: reads the whole guest disk into a raw file. A backing
// file is not opened by libqcow on its own; the script follows the chain with set_parent.
constexpr const char* kLibqcowScript = R"py(import os, sys, pyqcow
keep = []  # parents must outlive the child: libqcow holds no reference of its own
def open_chain(path):
    f = pyqcow.file()
    f.open(path)
    backing = f.get_backing_filename() if hasattr(f, 'get_backing_filename') else None
    if backing:
        parent = open_chain(os.path.join(os.path.dirname(path), backing))
        f.set_parent(parent)
        keep.append(parent)
    return f
f = open_chain(sys.argv[1])
size = f.get_media_size()
with open(sys.argv[2], 'wb') as out:
    at = 0
    while at < size:
        n = min(1 << 20, size - at)
        out.write(f.read_buffer_at_offset(n, at))
        at += n
)py";

struct Model {
  std::vector<uint8_t> bytes = std::vector<uint8_t>(kDiskSize, 0);
};

// One image to make: creation options, and what to do to it (on the engine and the model).
struct Recipe {
  std::string feature;
  std::string create;  // qemu-img -o syntax
  std::function<Status(Image&, Model&, BlockDevice&)> fill;
  std::string backing;  // feature of an earlier recipe whose image is the backing file
  bool leave_dirty = false;
};

Status WritePattern(Image& image, Model& m, uint64_t offset, uint64_t length, uint32_t pattern) {
  std::vector<uint8_t> data(length);
  FillPattern(pattern, offset, data);
  std::copy(data.begin(), data.end(), m.bytes.begin() + static_cast<ptrdiff_t>(offset));
  return image.Write(offset, data);
}

Status ZeroRange(Image& image, Model& m, uint64_t offset, uint64_t length, bool unmap) {
  std::fill_n(m.bytes.begin() + static_cast<ptrdiff_t>(offset), length, 0);
  return image.WriteZeroes(offset, length, unmap);
}

// The common content: unaligned and multi-cluster writes, an overwrite, a zeroed range.
Status Standard(Image& image, Model& m, BlockDevice&) {
  RETURN_IF_ERROR(WritePattern(image, m, 0, 3 * 65536 + 1000, 11));
  RETURN_IF_ERROR(WritePattern(image, m, 1 << 20, 4096, 22));
  RETURN_IF_ERROR(WritePattern(image, m, 100000, 3000, 33));
  RETURN_IF_ERROR(WritePattern(image, m, kDiskSize - 5000, 5000, 44));
  return Status::Ok();
}

// Rewrites the L2 entry of guest cluster `guest_cluster` as a compressed cluster holding the
// cluster's current content; the refcounts are then fixed by crashsim's repair.
Status CompressCluster(Image& image, BlockDevice& device, uint64_t guest_cluster) {
  const QcowHeader header = image.header();
  const uint64_t cs = uint64_t{1} << header.cluster_bits;
  std::vector<uint8_t> content(cs);
  RETURN_IF_ERROR(image.Read(guest_cluster * cs, content));
  ASSIGN_OR_RETURN(std::vector<uint8_t> packed, CompressCluster(header.compression_type, content));
  if (packed.size() >= cs) return Status::NotSupported("cluster does not compress");
  const uint64_t l2_entries = cs / 8;
  uint8_t raw[8];
  RETURN_IF_ERROR(device.Read(header.l1_table_offset + guest_cluster / l2_entries * 8, raw));
  const uint64_t l2_offset = LoadBE64(raw) & kL1OffsetMask;
  if (l2_offset == 0) return Status::InvalidArgument("guest cluster has no L2 table");
  ASSIGN_OR_RETURN(uint64_t end, device.Size());
  const uint64_t host = AlignUp(end, cs);
  RETURN_IF_ERROR(device.Write(host, packed, {}));
  StoreBE64(raw, EncodeCompressed(host, packed.size(), header.cluster_bits));
  RETURN_IF_ERROR(device.Write(l2_offset + guest_cluster % l2_entries * 8, raw, {}));
  return device.Flush();
}

// Compressible content: a short text repeated.
Status WriteText(Image& image, Model& m, uint64_t offset, uint64_t length) {
  std::vector<uint8_t> data(length);
  const std::string text = "crashsim conformance corpus, compressed cluster. ";
  for (uint64_t i = 0; i < length; ++i)
    data[i] = static_cast<uint8_t>(text[(offset + i) % text.size()]);
  std::copy(data.begin(), data.end(), m.bytes.begin() + static_cast<ptrdiff_t>(offset));
  return image.Write(offset, data);
}

std::vector<Recipe> Recipes() {
  auto compressed = [](Image& image, Model& m, BlockDevice& device) -> Status {
    RETURN_IF_ERROR(WriteText(image, m, 0, 2 * 65536));
    RETURN_IF_ERROR(WritePattern(image, m, 1 << 20, 4096, 22));
    RETURN_IF_ERROR(image.Flush());
    RETURN_IF_ERROR(CompressCluster(image, device, 0));
    return CompressCluster(image, device, 1);
  };
  std::vector<Recipe> r = {
      {"v2 (compat=0.10)", "compat=0.10", Standard, "", false},
      {"v3 (compat=1.1)", "compat=1.1", Standard, "", false},
      {"cluster_size=512", "cluster_size=512", Standard, "", false},
      {"cluster_size=4k", "cluster_size=4096", Standard, "", false},
      {"cluster_size=2M", "cluster_size=2097152", Standard, "", false},
  };
  for (int bits : {1, 2, 4, 8, 32, 64}) {
    r.push_back({fmt::format("refcount_bits={}", bits), fmt::format("refcount_bits={}", bits),
                 Standard, "", false});
  }
  r.push_back({"zero clusters (v3)", "compat=1.1",
               [](Image& image, Model& m, BlockDevice& d) -> Status {
                 RETURN_IF_ERROR(Standard(image, m, d));
                 RETURN_IF_ERROR(ZeroRange(image, m, 65536, 65536, false));
                 return ZeroRange(image, m, 2 << 20, 3 * 65536, false);
               },
               "", false});
  r.push_back({"zeroed + unmapped", "compat=1.1",
               [](Image& image, Model& m, BlockDevice& d) -> Status {
                 RETURN_IF_ERROR(Standard(image, m, d));
                 return ZeroRange(image, m, 0, 2 * 65536, true);
               },
               "", false});
  r.push_back({"zero writes (v2)", "compat=0.10",
               [](Image& image, Model& m, BlockDevice& d) -> Status {
                 RETURN_IF_ERROR(Standard(image, m, d));
                 return ZeroRange(image, m, 65536, 65536, false);
               },
               "", false});
  r.push_back({"compressed (deflate)", "compat=1.1", compressed, "", false});
  r.push_back({"compressed (zstd)", "compat=1.1,compression_type=zstd", compressed, "", false});
  r.push_back({"preallocation=metadata", "preallocation=metadata", Standard, "", false});
  r.push_back({"extended_l2=on", "extended_l2=on",
               [](Image& image, Model& m, BlockDevice& d) -> Status {
                 RETURN_IF_ERROR(Standard(image, m, d));
                 RETURN_IF_ERROR(WritePattern(image, m, 3 << 20, 2048, 55));  // one subcluster
                 return ZeroRange(image, m, 4096, 2048, false);
               },
               "", false});
  r.push_back({"backing base", "compat=1.1", Standard, "", false});
  r.push_back({"backing chain (2 levels)", "compat=1.1",
               [](Image& image, Model& m, BlockDevice&) -> Status {
                 RETURN_IF_ERROR(WritePattern(image, m, 4096, 512, 66));  // partial cluster: COW
                 RETURN_IF_ERROR(ZeroRange(image, m, 1 << 20, 65536, false));  // hides the base
                 return WritePattern(image, m, 2 << 20, 65536, 77);
               },
               "backing base", false});
  r.push_back({"internal snapshots", "compat=1.1",
               [](Image& image, Model& m, BlockDevice& d) -> Status {
                 // Two snapshots, each followed by writes over the clusters it shares, so the
                 // active layer is made of copied L2 tables and clusters with refcount > 1.
                 RETURN_IF_ERROR(Standard(image, m, d));
                 RETURN_IF_ERROR(image.CreateSnapshot("1", "snap1"));
                 RETURN_IF_ERROR(WritePattern(image, m, 65536 + 100, 2000, 88));
                 RETURN_IF_ERROR(image.CreateSnapshot("2", "snap2"));
                 RETURN_IF_ERROR(WritePattern(image, m, 0, 4096, 99));
                 // No zero clusters here, so the row tells snapshots apart from zero flags.
                 return WritePattern(image, m, 2 * 65536 + 512, 65536, 111);
               },
               "", false});
  r.push_back({"lazy refcounts, dirty", "compat=1.1,lazy_refcounts=on", Standard, "", true});
  return r;
}

std::string Slug(const std::string& feature) {
  std::string s;
  for (char c : feature) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s;
}

// Builds the recipe's image at `path`, which appears only once the image is complete (a
// recipe that fails leaves no image a reader could be run on).
Status MakeImage(const Recipe& recipe, const std::string& path, const std::string& backing_path,
                 Model& model) {
  CreateOptions create;
  create.size = kDiskSize;
  RETURN_IF_ERROR(ParseCreateOptions(recipe.create, create));
  if (!backing_path.empty()) {
    create.backing_file = fs::path(backing_path).filename().string();
    create.backing_format = "qcow2";
  }
  ASSIGN_OR_RETURN(auto output, AtomicOutputFile::Create(path));
  ASSIGN_OR_RETURN(auto device, output->Device());
  RETURN_IF_ERROR(Image::Create(*device, create, PosixBackingOpener(path)));
  OpenOptions open;
  open.open_backing = PosixBackingOpener(path);
  open.cache_mode = CacheMode::kWriteback;
  {
    ASSIGN_OR_RETURN(auto image, Image::Open(*device, open));
    RETURN_IF_ERROR(recipe.fill(*image, model, *device));
    if (recipe.leave_dirty) {
      RETURN_IF_ERROR(image->Flush());
      return output->Commit();  // never closed: the dirty bit stays set
    }
    RETURN_IF_ERROR(image->Close());
  }
  CheckReport report = Check(*device);
  if (CheckExitCode(report) != 0) {
    CheckReport fixed = Repair(*device, RepairMode::kAll);  // compressed: refcounts recomputed
    if (CheckExitCode(fixed) != 0) {
      return Status::Corruption(recipe.feature + ": the corpus image does not check clean: " +
                                FormatCheckFindings(fixed) + CheckFailure(fixed));
    }
  }
  return output->Commit();
}

}  // namespace

Result<std::vector<CorpusImage>> BuildCorpus(const std::string& dir) {
  fs::create_directories(dir);
  std::vector<CorpusImage> corpus;
  std::map<std::string, std::pair<std::string, Model>> made;
  for (const Recipe& recipe : Recipes()) {
    const std::string path = dir + "/" + Slug(recipe.feature) + ".qcow2";
    Model model;
    std::string backing_path;
    if (!recipe.backing.empty()) {
      backing_path = made.at(recipe.backing).first;
      model = made.at(recipe.backing).second;
    }
    RETURN_IF_ERROR(MakeImage(recipe, path, backing_path, model).WithContext(recipe.feature));
    // crashsim must read its own image as the model says.
    ASSIGN_OR_RETURN(auto device, PosixDevice::Open(path, PosixOpenOptions{.read_only = true}));
    OpenOptions ro;
    ro.read_only = true;
    ro.open_backing = PosixBackingOpener(path);
    ASSIGN_OR_RETURN(auto image, Image::Open(*device, ro));
    std::vector<uint8_t> got(kDiskSize);
    RETURN_IF_ERROR(image->Read(0, got));
    if (got != model.bytes) {
      return Status::Corruption(recipe.feature + ": crashsim does not read back its own image");
    }
    made[recipe.feature] = {path, model};
    corpus.push_back(
        {recipe.feature, path, kDiskSize, simdisk::HashBytes(model.bytes), model.bytes});
  }
  return corpus;
}

Result<std::string> ReaderTemplate(const std::string& name) {
  if (name == "qemu" || name == "qemu-img") {
    return std::string("qemu-img convert -f qcow2 -O raw {image} {output}");
  }
  if (name == "libqcow") return std::string("/usr/bin/python3 {python_libqcow} {image} {output}");
  // Anything else is a command: without both placeholders it could not read the image into the
  // output, and every image would fail for a reason that is not the reader's.
  if (name.find("{image}") == std::string::npos || name.find("{output}") == std::string::npos) {
    return Status::InvalidArgument(fmt::format(
        "--reader '{}' is neither a built-in reader (qemu, qemu-img, libqcow) nor a command "
        "template with {{image}} and {{output}}",
        name));
  }
  return name;
}

std::vector<ReaderOutcome> RunReader(const std::vector<CorpusImage>& corpus,
                                     const std::string& reader, const std::string& dir,
                                     int timeout_ms, const std::function<void(size_t)>& progress) {
  const std::string script = dir + "/libqcow_to_raw.py";
  (void)WriteFileAtomically(script, kLibqcowScript);  // a missing script fails each read
  std::vector<ReaderOutcome> out;
  const Result<std::string> command = ReaderTemplate(reader);
  for (const CorpusImage& image : corpus) {
    if (progress) progress(out.size());
    ReaderOutcome o{image.feature, false, ""};
    const std::string output = dir + "/out.raw";
    fs::remove(output);
    auto argv =
        command.ok()
            ? ExpandCommand(*command,
                            {{"image", image.path}, {"output", output}, {"python_libqcow", script}})
            : Result<std::vector<std::string>>(command.status());
    if (!argv.ok()) {
      o.detail = argv.status().ToString();
      out.push_back(o);
      continue;
    }
    ProcessResult r = RunCommand(*argv, timeout_ms);
    std::ifstream in(output, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
    if (r.exit_code != 0) {
      std::string last = r.output;
      while (!last.empty() && last.back() == '\n') last.pop_back();
      last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
      o.detail = fmt::format("exit {}: {}", r.exit_code, last.substr(0, 160));
    } else if (bytes.size() != image.virtual_size) {
      o.detail = fmt::format("read {} bytes, expected {}", bytes.size(), image.virtual_size);
    } else if (simdisk::HashBytes(bytes) != image.content_hash) {
      o.detail = "content differs from the expected guest data";
      if (!image.expected.empty()) {
        auto [a, b] = std::mismatch(bytes.begin(), bytes.end(), image.expected.begin());
        const uint64_t at = static_cast<uint64_t>(a - bytes.begin());
        uint64_t end = at;
        while (end < bytes.size() && bytes[end] != image.expected[end]) ++end;
        o.detail += fmt::format(
            " from guest offset {:#x} ({} bytes differ there: read {:#04x}, "
            "expected {:#04x})",
            at, end - at, *a, *b);
      }
    } else {
      o.pass = true;
    }
    out.push_back(o);
  }
  return out;
}

}  // namespace crashsim::validate
