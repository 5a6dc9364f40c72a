// L1, L2 and refcount entries: bit layouts from the qcow2 spec, decoded in one place.
// Pure functions over integers; callers read the raw 64-bit words with LoadBE64.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "engine/coding.h"

namespace crashsim {

inline constexpr uint64_t kOflagCopied = 1ull << 63;
inline constexpr uint64_t kOflagCompressed = 1ull << 62;
inline constexpr uint64_t kOflagZero = 1ull << 0;
inline constexpr uint64_t kL1OffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kL2OffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kL1ReservedMask = 0x7f000000000001ffull;
inline constexpr uint64_t kL2ReservedMask = 0x3f000000000001feull;
inline constexpr uint64_t kReftableOffsetMask = 0xfffffffffffffe00ull;
inline constexpr uint64_t kReftableReservedMask = 0x1ffull;
inline constexpr uint32_t kSubclustersPerCluster = 32;

enum class ClusterType { kUnallocated, kZeroPlain, kZeroAlloc, kNormal, kCompressed };
const char* ClusterTypeName(ClusterType type);

// The per-image shape every index computation needs.
struct Geometry {
  uint32_t cluster_bits = 16;
  uint32_t refcount_order = 4;
  bool extended_l2 = false;

  uint64_t cluster_size() const { return uint64_t{1} << cluster_bits; }
  uint64_t l2_entry_size() const { return extended_l2 ? 16 : 8; }
  uint64_t l2_entries() const { return cluster_size() / l2_entry_size(); }
  uint64_t subcluster_size() const {
    return extended_l2 ? cluster_size() / kSubclustersPerCluster : cluster_size();
  }
  uint32_t refcount_bits() const { return 1u << refcount_order; }
  uint64_t refcount_max() const {
    return refcount_bits() == 64 ? ~uint64_t{0} : (uint64_t{1} << refcount_bits()) - 1;
  }
  uint64_t refcount_block_entries() const { return cluster_size() * 8 / refcount_bits(); }

  uint64_t l1_index(uint64_t guest_offset) const {
    return (guest_offset >> cluster_bits) / l2_entries();
  }
  uint64_t l2_index(uint64_t guest_offset) const {
    return (guest_offset >> cluster_bits) % l2_entries();
  }
  uint64_t offset_in_cluster(uint64_t offset) const { return offset & (cluster_size() - 1); }
  // Entries of L1 needed to map `virtual_size` bytes.
  uint64_t l1_entries_for(uint64_t virtual_size) const {
    return DivRoundUp(DivRoundUp(virtual_size, cluster_size()), l2_entries());
  }
  // Guest bytes one L2 table maps.
  uint64_t l2_coverage() const { return l2_entries() << cluster_bits; }
};

// Compressed cluster descriptor (L2 bit 62 set).
struct CompressedDescriptor {
  uint64_t host_offset = 0;  // byte offset, usually unaligned
  uint64_t sectors = 0;      // total 512-byte sectors, field + 1
  uint64_t compressed_size() const { return sectors * 512 - (host_offset & 511); }
};
inline uint32_t CompressedOffsetBits(uint32_t cluster_bits) { return 62 - (cluster_bits - 8); }
inline CompressedDescriptor DecodeCompressed(uint64_t entry, uint32_t cluster_bits) {
  uint32_t x = CompressedOffsetBits(cluster_bits);
  uint64_t offset_mask = (uint64_t{1} << x) - 1;
  uint64_t sector_mask = (uint64_t{1} << (cluster_bits - 8)) - 1;
  return {entry & offset_mask, ((entry >> x) & sector_mask) + 1};
}
inline uint64_t EncodeCompressed(uint64_t host_offset, uint64_t compressed_size,
                                 uint32_t cluster_bits) {
  uint32_t x = CompressedOffsetBits(cluster_bits);
  uint64_t end = host_offset + compressed_size;
  uint64_t sectors = DivRoundUp(end, 512) - host_offset / 512;
  return kOflagCompressed | ((sectors - 1) << x) | host_offset;
}

// Standard L2 entry classification (word 0). For extended L2 the ZERO bit is unused and the
// caller looks at the subcluster bitmap instead.
inline ClusterType ClassifyL2Entry(uint64_t entry, bool extended_l2) {
  if (entry & kOflagCompressed) return ClusterType::kCompressed;
  uint64_t offset = entry & kL2OffsetMask;
  if (!extended_l2 && (entry & kOflagZero)) {
    return offset ? ClusterType::kZeroAlloc : ClusterType::kZeroPlain;
  }
  return offset ? ClusterType::kNormal : ClusterType::kUnallocated;
}

// Calls fn(index) for every entry of a table of `entry_size`-byte entries (8 or 16) that has a
// nonzero byte, in index order. An all-zero entry is unallocated in every table kind, and most
// entries of a crash-test image's tables are zero: a 64 KiB L2 table with a few dozen entries
// set is mostly skipped 64 bytes at a time instead of 8,192 entries one by one.
template <typename Fn>
void ForEachNonZeroEntry(std::span<const uint8_t> table, size_t entry_size, Fn&& fn) {
  constexpr size_t kBlock = 64;
  const size_t whole = table.size() / kBlock * kBlock;
  size_t pos = 0;
  auto visit = [&](size_t begin, size_t end) {
    for (size_t at = begin; at + entry_size <= end; at += entry_size) {
      uint64_t word = 0;
      std::memcpy(&word, &table[at], 8);
      if (entry_size == 16) {
        uint64_t second = 0;
        std::memcpy(&second, &table[at + 8], 8);
        word |= second;
      }
      if (word != 0) fn(at / entry_size);
    }
  };
  for (; pos < whole; pos += kBlock) {
    uint64_t w[8];
    std::memcpy(w, &table[pos], sizeof w);
    if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) == 0) continue;
    visit(pos, pos + kBlock);
  }
  visit(pos, table.size() / entry_size * entry_size);
}

// Extended L2 subcluster bitmap (word 1).
inline bool SubclusterAllocated(uint64_t bitmap, uint32_t i) { return (bitmap >> i) & 1; }
inline bool SubclusterZero(uint64_t bitmap, uint32_t i) { return (bitmap >> (32 + i)) & 1; }
inline uint64_t SubclusterRangeMask(uint32_t first, uint32_t count) {
  uint64_t m = count >= 32 ? 0xffffffffull : ((uint64_t{1} << count) - 1);
  return m << first;
}

// Refcount block entries of 1..64 bits: big-endian for >= 8 bits, LSB-first packed below.
inline uint64_t GetRefcountEntry(std::span<const uint8_t> block, uint64_t index, uint32_t order) {
  uint32_t bits = 1u << order;
  switch (bits) {
    case 8:
      return block[index];
    case 16:
      return LoadBE16(&block[index * 2]);
    case 32:
      return LoadBE32(&block[index * 4]);
    case 64:
      return LoadBE64(&block[index * 8]);
    default: {
      uint32_t per_byte = 8 / bits;
      uint32_t shift = static_cast<uint32_t>(index % per_byte) * bits;
      return (block[index / per_byte] >> shift) & ((1u << bits) - 1);
    }
  }
}
inline void SetRefcountEntry(std::span<uint8_t> block, uint64_t index, uint32_t order,
                             uint64_t value) {
  uint32_t bits = 1u << order;
  switch (bits) {
    case 8:
      block[index] = static_cast<uint8_t>(value);
      return;
    case 16:
      StoreBE16(&block[index * 2], static_cast<uint16_t>(value));
      return;
    case 32:
      StoreBE32(&block[index * 4], static_cast<uint32_t>(value));
      return;
    case 64:
      StoreBE64(&block[index * 8], value);
      return;
    default: {
      uint32_t per_byte = 8 / bits;
      uint32_t shift = static_cast<uint32_t>(index % per_byte) * bits;
      uint8_t mask = static_cast<uint8_t>(((1u << bits) - 1) << shift);
      uint8_t& b = block[index / per_byte];
      b = static_cast<uint8_t>((b & ~mask) | ((value << shift) & mask));
    }
  }
}

}  // namespace crashsim
