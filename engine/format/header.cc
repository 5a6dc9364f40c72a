#include "engine/format/header.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "engine/coding.h"

namespace crashsim {
namespace {

constexpr size_t kFeatureNameEntrySize = 48;
constexpr size_t kFeatureNameLength = 46;

size_t PadTo8(size_t n) { return (n + 7) & ~size_t{7}; }

Status HeaderError(const std::string& what) { return Status::Corruption("qcow2 header: " + what); }

uint64_t L2EntriesPerTable(const QcowHeader& h) {
  return h.cluster_size() / (h.extended_l2() ? 16 : 8);
}

// Parses the extension area [start, end) of cluster 0 into `h`.
Status DecodeExtensions(std::span<const uint8_t> bytes, size_t start, size_t end, QcowHeader& h) {
  size_t offset = start;
  std::vector<uint32_t> seen;
  while (offset < end) {
    if (end - offset < 8)
      return HeaderError(fmt::format("header extension at {:#x} truncated", offset));
    uint32_t type = LoadBE32(&bytes[offset]);
    uint32_t len = LoadBE32(&bytes[offset + 4]);
    offset += 8;
    if (type == kExtEnd) return Status::Ok();
    if (len > end - offset) {
      return HeaderError(fmt::format(
          "Header extension too large: extension {:#010x} at {:#x} has length {}, {} bytes left",
          type, offset - 8, len, end - offset));
    }
    if (type != 0 && std::find(seen.begin(), seen.end(), type) != seen.end() &&
        type != kExtFeatureTable) {
      // Known extensions may appear once; unknown ones are kept as they come.
      if (type == kExtBackingFormat || type == kExtBitmaps || type == kExtCrypto ||
          type == kExtDataFile) {
        return HeaderError(fmt::format("header extension {:#010x} appears twice", type));
      }
    }
    seen.push_back(type);
    const uint8_t* data = &bytes[offset];
    switch (type) {
      case kExtBackingFormat:
        if (len > kMaxBackingFormatLength) {
          return HeaderError(fmt::format("backing format extension length {} too large", len));
        }
        h.backing_format = std::string(reinterpret_cast<const char*>(data), len);
        break;
      case kExtFeatureTable:
        for (size_t i = 0; i + kFeatureNameEntrySize <= len; i += kFeatureNameEntrySize) {
          FeatureName f;
          f.type = data[i];
          f.bit = data[i + 1];
          const char* name = reinterpret_cast<const char*>(data + i + 2);
          f.name.assign(name, strnlen(name, kFeatureNameLength));
          h.feature_names.push_back(std::move(f));
        }
        break;
      case kExtBitmaps: {
        if (len != 24)
          return HeaderError(fmt::format("bitmaps extension has length {}, not 24", len));
        BitmapsExtension b;
        b.nb_bitmaps = LoadBE32(data);
        if (LoadBE32(data + 4) != 0)
          return HeaderError("bitmaps extension: reserved field not zero");
        b.bitmap_directory_size = LoadBE64(data + 8);
        b.bitmap_directory_offset = LoadBE64(data + 16);
        if (b.nb_bitmaps == 0 || b.nb_bitmaps > 65535) {
          return HeaderError(
              fmt::format("bitmaps extension: {} bitmaps (must be 1..65535)", b.nb_bitmaps));
        }
        if (b.bitmap_directory_size > 1024ull * 65535) {
          return HeaderError("bitmaps extension: bitmap directory too large");
        }
        if (!IsAligned(b.bitmap_directory_offset, h.cluster_size())) {
          return HeaderError(fmt::format("bitmaps extension: directory offset {:#x} not aligned",
                                         b.bitmap_directory_offset));
        }
        h.bitmaps = b;
        break;
      }
      case kExtCrypto:
        h.crypto = std::vector<uint8_t>(data, data + len);
        break;
      case kExtDataFile:
        h.data_file = std::string(reinterpret_cast<const char*>(data), len);
        break;
      default:
        h.unknown_extensions.push_back({type, std::vector<uint8_t>(data, data + len)});
        break;
    }
    offset += PadTo8(len);
  }
  return Status::Ok();
}

Status ValidateTables(const QcowHeader& h, uint64_t file_size, HeaderDecodeOptions options) {
  const uint64_t cs = h.cluster_size();
  // Active L1 table.
  if (h.l1_size > kMaxL1Entries) {
    return HeaderError(
        fmt::format("Active L1 table too large: {} entries (limit {})", h.l1_size, kMaxL1Entries));
  }
  if (!IsAligned(h.l1_table_offset, cs) || h.l1_table_offset >= kMaxHostOffset) {
    return HeaderError(fmt::format("Active L1 table offset invalid: {:#x}", h.l1_table_offset));
  }
  uint64_t clusters = DivRoundUp(h.size, cs);
  uint64_t l1_needed = DivRoundUp(clusters, L2EntriesPerTable(h));
  if (h.l1_size < l1_needed) {
    return HeaderError(fmt::format("L1 table is too small: {} entries, {} needed for {} bytes",
                                   h.l1_size, l1_needed, h.size));
  }
  const bool strict = !options.tables_checked_by_walk;
  if (strict && h.l1_size > 0 && h.l1_table_offset == 0) {
    return HeaderError("Active L1 table offset invalid: 0x0 (the L1 table would be the header)");
  }
  if (strict && h.l1_size > 0 && h.l1_table_offset + h.l1_size * 8ull > file_size) {
    return HeaderError(
        fmt::format("Active L1 table at {:#x} ({} entries) lies outside the file "
                    "({} bytes)",
                    h.l1_table_offset, h.l1_size, file_size));
  }
  // Refcount table.
  uint64_t reftable_bytes = uint64_t{h.refcount_table_clusters} * cs;
  if (reftable_bytes > kMaxReftableBytes) {
    return HeaderError(
        fmt::format("Reference count table too large: {} clusters", h.refcount_table_clusters));
  }
  if (!IsAligned(h.refcount_table_offset, cs) || h.refcount_table_offset >= kMaxHostOffset) {
    return HeaderError(
        fmt::format("Reference count table offset invalid: {:#x}", h.refcount_table_offset));
  }
  if (h.refcount_table_clusters == 0) {
    if (!options.for_check) return HeaderError("Image does not contain a reference count table");
  } else if (h.refcount_table_offset == 0) {
    return HeaderError(
        "Reference count table offset invalid: 0x0 (the refcount table would be "
        "the header)");
  } else if (strict && h.refcount_table_offset + reftable_bytes > AlignUp(file_size, cs)) {
    return HeaderError(
        fmt::format("Reference count table at {:#x} ({} clusters) lies outside "
                    "the file ({} bytes)",
                    h.refcount_table_offset, h.refcount_table_clusters, file_size));
  }
  // Snapshot table.
  if (h.nb_snapshots > kMaxSnapshots) {
    return HeaderError(fmt::format("Snapshot table too large: {} snapshots", h.nb_snapshots));
  }
  if (h.nb_snapshots > 0 && (!IsAligned(h.snapshots_offset, cs) || h.snapshots_offset == 0 ||
                             (strict && h.snapshots_offset >= file_size))) {
    return HeaderError(fmt::format("Snapshot table offset invalid: {:#x}", h.snapshots_offset));
  }
  return Status::Ok();
}

}  // namespace

std::vector<FeatureName> DefaultFeatureNames() {
  return {
      {0, 0, "dirty bit"},        {0, 1, "corrupt bit"},         {0, 2, "external data file"},
      {0, 3, "compression type"}, {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
      {2, 0, "bitmaps"},          {2, 1, "raw external data"},
  };
}

std::string DescribeIncompatibleFeatures(const QcowHeader& header, uint64_t mask) {
  std::string out;
  uint64_t unnamed = 0;
  for (int bit = 0; bit < 64; ++bit) {
    uint64_t m = uint64_t{1} << bit;
    if (!(mask & m)) continue;
    auto it = std::find_if(header.feature_names.begin(), header.feature_names.end(),
                           [&](const FeatureName& f) { return f.type == 0 && f.bit == bit; });
    if (it == header.feature_names.end()) {
      unnamed |= m;
      continue;
    }
    if (!out.empty()) out += ", ";
    out += it->name;
  }
  if (unnamed) {
    if (!out.empty()) out += ", ";
    out += fmt::format("Unknown incompatible feature: {:x}", unnamed);
  }
  return out;
}

uint64_t HeaderBytesNeeded(std::span<const uint8_t> prefix) {
  if (prefix.size() < 24 || LoadBE32(prefix.data()) != kQcowMagic) return prefix.size();
  const uint32_t bits = LoadBE32(&prefix[20]);
  if (bits < kMinClusterBits || bits > kMaxClusterBits) return prefix.size();
  const uint64_t cs = uint64_t{1} << bits;
  const uint32_t version = LoadBE32(&prefix[4]);
  uint64_t header_length = kV2HeaderLength;
  if (version == 3) {
    if (prefix.size() < kV3MinHeaderLength) return cs;
    header_length = LoadBE32(&prefix[100]);
  } else if (version != 2) {
    return prefix.size();
  }
  if (prefix.size() < kV2HeaderLength) return cs;
  const uint64_t backing_offset = LoadBE64(&prefix[8]);
  const uint64_t backing_end = backing_offset + LoadBE32(&prefix[16]);
  if (backing_offset > cs || backing_end > cs || header_length > cs || header_length % 8 != 0) {
    return cs;  // DecodeHeader refuses it; let it see what it always saw
  }
  // Walk the extensions as DecodeExtensions does, to their end marker.
  const uint64_t area_end = backing_offset != 0 ? backing_offset : cs;
  uint64_t offset = header_length;
  while (offset < area_end) {
    if (offset + 8 > prefix.size() || area_end - offset < 8) return cs;
    const uint32_t type = LoadBE32(&prefix[offset]);
    const uint64_t length = LoadBE32(&prefix[offset + 4]);
    offset += 8;
    if (type == kExtEnd) return std::max({offset, backing_end, header_length});
    offset += PadTo8(length);
  }
  return cs;
}

Result<std::vector<uint8_t>> ReadHeaderArea(
    uint64_t file_size, const std::function<Status(uint64_t, std::span<uint8_t>)>& read) {
  std::vector<uint8_t> bytes(std::min<uint64_t>(file_size, kHeaderPrefixBytes));
  RETURN_IF_ERROR(read(0, bytes));
  const uint64_t needed = std::min<uint64_t>(file_size, HeaderBytesNeeded(bytes));
  if (needed > bytes.size()) {
    const size_t have = bytes.size();
    bytes.resize(needed);
    RETURN_IF_ERROR(read(have, std::span(bytes).subspan(have)));
  }
  return bytes;
}

Result<QcowHeader> DecodeHeader(std::span<const uint8_t> bytes, uint64_t file_size,
                                HeaderDecodeOptions options) {
  if (bytes.size() < 4 || LoadBE32(bytes.data()) != kQcowMagic) {
    return Status::Corruption("not a qcow2 image: bad magic (expected QFI\\xfb at offset 0)");
  }
  if (bytes.size() < kV2HeaderLength) {
    return HeaderError(fmt::format("file truncated: {} bytes, the header needs {}", bytes.size(),
                                   kV2HeaderLength));
  }
  QcowHeader h;
  const uint8_t* p = bytes.data();
  h.version = LoadBE32(p + 4);
  if (h.version != 2 && h.version != 3) {
    return Status::NotSupported(fmt::format("Unsupported qcow2 version {}", h.version));
  }
  h.backing_file_offset = LoadBE64(p + 8);
  h.backing_file_size = LoadBE32(p + 16);
  h.cluster_bits = LoadBE32(p + 20);
  h.size = LoadBE64(p + 24);
  h.crypt_method = LoadBE32(p + 32);
  h.l1_size = LoadBE32(p + 36);
  h.l1_table_offset = LoadBE64(p + 40);
  h.refcount_table_offset = LoadBE64(p + 48);
  h.refcount_table_clusters = LoadBE32(p + 56);
  h.nb_snapshots = LoadBE32(p + 60);
  h.snapshots_offset = LoadBE64(p + 64);
  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
    return HeaderError(fmt::format("Unsupported cluster size: 2^{} (cluster_bits must be {}..{})",
                                   h.cluster_bits, kMinClusterBits, kMaxClusterBits));
  }
  const uint64_t cs = h.cluster_size();
  if (h.version == 2) {
    h.header_length = kV2HeaderLength;
    h.refcount_order = 4;
  } else {
    if (bytes.size() < kV3MinHeaderLength) {
      return HeaderError(fmt::format("file truncated: {} bytes, a v3 header needs {}", bytes.size(),
                                     kV3MinHeaderLength));
    }
    h.incompatible_features = LoadBE64(p + 72);
    h.compatible_features = LoadBE64(p + 80);
    h.autoclear_features = LoadBE64(p + 88);
    h.refcount_order = LoadBE32(p + 96);
    h.header_length = LoadBE32(p + 100);
    if (h.header_length < kV3MinHeaderLength) {
      return HeaderError(fmt::format("qcow2 header too short: header_length {}", h.header_length));
    }
    if (h.header_length > cs) {
      return HeaderError(
          fmt::format("qcow2 header exceeds cluster size: header_length {}", h.header_length));
    }
    if (h.header_length % 8 != 0) {
      return HeaderError(fmt::format("header_length {} is not a multiple of 8", h.header_length));
    }
    if (bytes.size() < h.header_length) {
      return HeaderError(fmt::format("file truncated: {} bytes, header_length is {}", bytes.size(),
                                     h.header_length));
    }
    if (h.header_length > 104) {
      uint8_t type = p[104];
      if (type > 1) return Status::NotSupported(fmt::format("unknown compression type: {}", type));
      h.compression_type = static_cast<CompressionType>(type);
    }
    if (h.header_length > kV3HeaderLength) {
      h.unknown_fields.assign(p + kV3HeaderLength, p + h.header_length);
    }
  }
  if (h.refcount_order > kMaxRefcountOrder) {
    return HeaderError(fmt::format(
        "Reference count entry width too large; may not exceed 64 bits (refcount_order {})",
        h.refcount_order));
  }
  // Backing file name: inside cluster 0, after the extensions.
  if (h.backing_file_offset != 0) {
    if (h.backing_file_offset > cs) {
      return HeaderError(fmt::format("Invalid backing file offset {:#x}", h.backing_file_offset));
    }
    if (h.backing_file_size > kMaxBackingFileNameLength ||
        h.backing_file_size > cs - h.backing_file_offset) {
      return HeaderError(fmt::format("Backing file name too long: {} bytes", h.backing_file_size));
    }
    if (h.backing_file_offset + h.backing_file_size > bytes.size()) {
      return HeaderError("file truncated inside the backing file name");
    }
    h.backing_file.assign(reinterpret_cast<const char*>(p + h.backing_file_offset),
                          h.backing_file_size);
  }
  size_t ext_start = h.header_length;
  size_t ext_end = h.backing_file_offset ? h.backing_file_offset : cs;
  ext_end = std::min<size_t>(ext_end, bytes.size());
  if (ext_start < ext_end) RETURN_IF_ERROR(DecodeExtensions(bytes, ext_start, ext_end, h));

  // Feature bits, after the feature table so unknown bits can be named.
  uint64_t unknown = h.incompatible_features & ~kIncompatKnownMask;
  if (unknown) {
    return Status::NotSupported("Unsupported qcow2 feature(s): " +
                                DescribeIncompatibleFeatures(h, unknown));
  }
  if (h.incompatible_features & kIncompatDataFile) {
    return Status::NotSupported("Unsupported qcow2 feature(s): external data file");
  }
  bool type_bit = h.incompatible_features & kIncompatCompressionType;
  if (type_bit != (h.compression_type != CompressionType::kDeflate)) {
    return HeaderError(type_bit ? "Compression type incompatible feature bit must not be set"
                                : "Compression type incompatible feature bit must be set");
  }
  if (h.extended_l2() && h.cluster_bits < 14) {
    return HeaderError("extended L2 entries need a cluster size of at least 16 KiB");
  }
  if (h.crypt_method != 0) {
    return Status::NotSupported(fmt::format("Unsupported encryption method {}", h.crypt_method));
  }
  if (h.size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / 2) {
    return HeaderError(fmt::format("Image is too big: virtual size {}", h.size));
  }
  RETURN_IF_ERROR(ValidateTables(h, file_size, options));
  return h;
}

Result<std::vector<uint8_t>> EncodeHeader(QcowHeader& h) {
  const uint64_t cs = h.cluster_size();
  std::vector<uint8_t> out;
  uint32_t fixed =
      h.version == 2
          ? kV2HeaderLength
          : std::max<uint32_t>(kV3HeaderLength,
                               kV3HeaderLength + static_cast<uint32_t>(h.unknown_fields.size()));
  if (h.version == 3) h.header_length = fixed;
  out.resize(fixed, 0);
  uint8_t* p = out.data();
  StoreBE32(p, kQcowMagic);
  StoreBE32(p + 4, h.version);
  StoreBE32(p + 20, h.cluster_bits);
  StoreBE64(p + 24, h.size);
  StoreBE32(p + 32, h.crypt_method);
  StoreBE32(p + 36, h.l1_size);
  StoreBE64(p + 40, h.l1_table_offset);
  StoreBE64(p + 48, h.refcount_table_offset);
  StoreBE32(p + 56, h.refcount_table_clusters);
  StoreBE32(p + 60, h.nb_snapshots);
  StoreBE64(p + 64, h.snapshots_offset);
  if (h.version == 3) {
    StoreBE64(p + 72, h.incompatible_features);
    StoreBE64(p + 80, h.compatible_features);
    StoreBE64(p + 88, h.autoclear_features);
    StoreBE32(p + 96, h.refcount_order);
    StoreBE32(p + 100, h.header_length);
    p[104] = static_cast<uint8_t>(h.compression_type);
    std::copy(h.unknown_fields.begin(), h.unknown_fields.end(), out.begin() + kV3HeaderLength);
  }
  auto add_ext = [&out](uint32_t type, std::span<const uint8_t> data) {
    size_t at = out.size();
    out.resize(at + 8 + PadTo8(data.size()), 0);
    StoreBE32(&out[at], type);
    StoreBE32(&out[at + 4], static_cast<uint32_t>(data.size()));
    std::copy(data.begin(), data.end(), out.begin() + static_cast<std::ptrdiff_t>(at + 8));
  };
  auto bytes_of = [](const std::string& s) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  if (h.backing_format) add_ext(kExtBackingFormat, bytes_of(*h.backing_format));
  if (h.data_file) add_ext(kExtDataFile, bytes_of(*h.data_file));
  if (h.crypto) add_ext(kExtCrypto, *h.crypto);
  if (!h.feature_names.empty() && h.version == 3) {
    std::vector<uint8_t> table(h.feature_names.size() * kFeatureNameEntrySize, 0);
    for (size_t i = 0; i < h.feature_names.size(); ++i) {
      uint8_t* e = &table[i * kFeatureNameEntrySize];
      e[0] = h.feature_names[i].type;
      e[1] = h.feature_names[i].bit;
      std::copy_n(h.feature_names[i].name.begin(),
                  std::min(h.feature_names[i].name.size(), kFeatureNameLength), e + 2);
    }
    add_ext(kExtFeatureTable, table);
  }
  if (h.bitmaps) {
    uint8_t b[24] = {};
    StoreBE32(b, h.bitmaps->nb_bitmaps);
    StoreBE64(b + 8, h.bitmaps->bitmap_directory_size);
    StoreBE64(b + 16, h.bitmaps->bitmap_directory_offset);
    add_ext(kExtBitmaps, b);
  }
  for (const UnknownExtension& e : h.unknown_extensions) add_ext(e.type, e.data);
  add_ext(kExtEnd, {});
  if (!h.backing_file.empty()) {
    h.backing_file_offset = out.size();
    h.backing_file_size = static_cast<uint32_t>(h.backing_file.size());
    out.insert(out.end(), h.backing_file.begin(), h.backing_file.end());
  } else {
    h.backing_file_offset = 0;
    h.backing_file_size = 0;
  }
  p = out.data();
  StoreBE32(p, kQcowMagic);
  StoreBE64(p + 8, h.backing_file_offset);
  StoreBE32(p + 16, h.backing_file_size);
  if (h.backing_file.size() > kMaxBackingFileNameLength) {
    return Status::InvalidArgument(fmt::format("backing file name too long ({} bytes, limit {})",
                                               h.backing_file.size(), kMaxBackingFileNameLength));
  }
  if (out.size() > cs) {
    return Status::NoSpace(
        fmt::format("header, extensions and backing file name need {} bytes, "
                    "more than one {}-byte cluster",
                    out.size(), cs));
  }
  return out;
}

}  // namespace crashsim
