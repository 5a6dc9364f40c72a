// The qcow2 header (cluster 0): fixed fields, header extensions and the backing file name,
// decoded and encoded in this one place. Decode validates every field against the spec and
// QEMU's limits before anything is sized from it; the bytes are untrusted. Encode produces the
// whole header area, which the engine rewrites at once (as QEMU rewrites cluster 0).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/status.h"

namespace crashsim {

inline constexpr uint32_t kQcowMagic = 0x514649fb;  // "QFI\xfb"
inline constexpr uint32_t kV2HeaderLength = 72;
inline constexpr uint32_t kV3MinHeaderLength = 104;
inline constexpr uint32_t kV3HeaderLength = 112;  // with compression_type and padding
inline constexpr uint32_t kMinClusterBits = 9;
inline constexpr uint32_t kMaxClusterBits = 21;
inline constexpr uint32_t kMaxRefcountOrder = 6;
inline constexpr uint64_t kMaxReftableBytes = 8ull << 20;     // QCOW_MAX_REFTABLE_SIZE
inline constexpr uint64_t kMaxL1Entries = (32ull << 20) / 8;  // QCOW_MAX_L1_SIZE
inline constexpr uint32_t kMaxSnapshots = 65536;              // QCOW_MAX_SNAPSHOTS
inline constexpr uint32_t kMaxBackingFileNameLength = 1023;
inline constexpr uint32_t kMaxBackingFormatLength = 15;
inline constexpr uint64_t kMaxHostOffset = 1ull << 56;  // QCOW_MAX_CLUSTER_OFFSET

// Byte offsets of fields the engine rewrites on their own (named durable steps).
inline constexpr uint64_t kSizeOffset = 24;  // the virtual disk size (8)
inline constexpr uint64_t kIncompatibleFeaturesOffset = 72;
inline constexpr uint64_t kL1SizeOffset = 36;          // l1_size (4) + l1_table_offset (8)
inline constexpr uint64_t kReftableOffsetOffset = 48;  // offset (8) + clusters (4)

// Feature bits.
inline constexpr uint64_t kIncompatDirty = 1ull << 0;
inline constexpr uint64_t kIncompatCorrupt = 1ull << 1;
inline constexpr uint64_t kIncompatDataFile = 1ull << 2;
inline constexpr uint64_t kIncompatCompressionType = 1ull << 3;
inline constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
inline constexpr uint64_t kIncompatKnownMask = 0x1f;
inline constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;
inline constexpr uint64_t kAutoclearBitmaps = 1ull << 0;
inline constexpr uint64_t kAutoclearRawData = 1ull << 1;
inline constexpr uint64_t kAutoclearKnownMask = 0x3;

// Header extension types.
inline constexpr uint32_t kExtEnd = 0x00000000;
inline constexpr uint32_t kExtBackingFormat = 0xe2792aca;
inline constexpr uint32_t kExtFeatureTable = 0x6803f857;
inline constexpr uint32_t kExtBitmaps = 0x23852875;
inline constexpr uint32_t kExtCrypto = 0x0537be77;
inline constexpr uint32_t kExtDataFile = 0x44415441;

enum class CompressionType : uint8_t { kDeflate = 0, kZstd = 1 };

struct FeatureName {
  uint8_t type = 0;  // 0 incompatible, 1 compatible, 2 autoclear
  uint8_t bit = 0;
  std::string name;
};

struct BitmapsExtension {
  uint32_t nb_bitmaps = 0;
  uint64_t bitmap_directory_size = 0;
  uint64_t bitmap_directory_offset = 0;
};

struct UnknownExtension {
  uint32_t type = 0;
  std::vector<uint8_t> data;
};

struct QcowHeader {
  uint32_t version = 3;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = 16;
  uint64_t size = 0;
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible_features = 0;
  uint64_t compatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = kV3HeaderLength;
  CompressionType compression_type = CompressionType::kDeflate;
  // Header fields past the ones this engine knows (header_length > 112), kept verbatim.
  std::vector<uint8_t> unknown_fields;

  // Extensions.
  std::string backing_file;
  std::optional<std::string> backing_format;
  std::vector<FeatureName> feature_names;
  std::optional<BitmapsExtension> bitmaps;
  std::optional<std::string> data_file;
  std::optional<std::vector<uint8_t>> crypto;  // raw 16-byte FDE pointer, kept verbatim
  std::vector<UnknownExtension> unknown_extensions;

  uint64_t cluster_size() const { return uint64_t{1} << cluster_bits; }
  uint32_t refcount_bits() const { return 1u << refcount_order; }
  bool extended_l2() const { return incompatible_features & kIncompatExtendedL2; }
  bool dirty() const { return incompatible_features & kIncompatDirty; }
  bool corrupt() const { return incompatible_features & kIncompatCorrupt; }
  bool lazy_refcounts() const { return compatible_features & kCompatLazyRefcounts; }
  bool has_backing_file() const { return backing_file_offset != 0; }
};

struct HeaderDecodeOptions {
  // qemu-img check opens with the CHECK flag: a missing refcount table is reported, not refused.
  bool for_check = false;
  // The checker: tables that lie past the end of the file and an active L1 table at offset 0
  // are left to its walk, which reports what QEMU's check reads there (zeros past EOF, the
  // header's own bytes as L1 entries); QEMU's open refuses neither. Other opens refuse both.
  bool tables_checked_by_walk = false;
};

// The number of bytes Decode needs to see for the fixed fields.
inline constexpr size_t kHeaderProbeBytes = 112;

// How many bytes from the start of the file DecodeHeader needs to see to decode this image as
// it would from the whole first cluster: the fixed fields, the extensions up to their end marker
// and the backing file name, as far as `prefix` (the first bytes of the file) shows them. When
// the prefix cannot tell (the extensions run past it, or the fields are not sane) the answer is
// the cluster size, or `prefix.size()` if even that is unknown. Lets readers fetch a few KiB of
// a 2 MiB first cluster.
uint64_t HeaderBytesNeeded(std::span<const uint8_t> prefix);
inline constexpr size_t kHeaderPrefixBytes = 4096;  // what readers fetch first

// Reads the header area of a file of `file_size` bytes through `read` (bytes at an offset): a
// 4 KiB prefix, then as much more as HeaderBytesNeeded says (never past the file).
Result<std::vector<uint8_t>> ReadHeaderArea(
    uint64_t file_size, const std::function<Status(uint64_t, std::span<uint8_t>)>& read);

// Decodes the header from the first bytes of the image. `cluster0` is the start of the file, up to
// one cluster (fewer if the file is shorter); `file_size` bounds the offsets it names.
Result<QcowHeader> DecodeHeader(std::span<const uint8_t> cluster0, uint64_t file_size,
                                HeaderDecodeOptions options = {});

// Encodes the whole header area: fixed fields, extensions, end marker and backing file name.
// Sets backing_file_offset/size in the result from backing_file. Fails if it exceeds a cluster.
Result<std::vector<uint8_t>> EncodeHeader(QcowHeader& header);

// Names of the incompatible bits in `mask`, from the image's feature table where it has them:
// "dirty bit, Unknown incompatible feature: 20".
std::string DescribeIncompatibleFeatures(const QcowHeader& header, uint64_t mask);

// The feature name table the engine writes (the bits it knows).
std::vector<FeatureName> DefaultFeatureNames();

}  // namespace crashsim
