// Tagging a target's writes by the image's own metadata (metadata_tags.h).
#include "validate/metadata_tags.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "engine/coding.h"
#include "engine/format/header.h"

namespace crashsim::validate {

namespace {

void MarkRoles(const simdisk::Medium& medium, std::map<uint64_t, IoTag>& roles,
               uint32_t& cluster_bits) {
  uint8_t h[104] = {};
  if (medium.size() < sizeof(h)) return;
  medium.ReadAt(0, h);
  if (LoadBE32(h) != kQcowMagic) return;
  const uint32_t bits = LoadBE32(h + 20);
  if (bits < kMinClusterBits || bits > kMaxClusterBits) return;
  cluster_bits = bits;
  const uint64_t cs = uint64_t{1} << bits;
  const uint64_t limit = medium.size() / cs + 1;
  auto mark = [&](uint64_t offset, IoTag tag) {
    const uint64_t c = offset >> bits;
    if (c < limit) roles.emplace(c, tag);
  };
  auto read_table = [&](uint64_t offset, uint64_t entries) {
    std::vector<uint64_t> out;
    entries =
        std::min<uint64_t>(entries, (medium.size() > offset ? medium.size() - offset : 0) / 8);
    std::vector<uint8_t> raw(entries * 8);
    medium.ReadAt(offset, raw);
    for (uint64_t i = 0; i < entries; ++i) out.push_back(LoadBE64(&raw[i * 8]));
    return out;
  };
  mark(0, IoTag::kHeader);
  const uint32_t l1_size = std::min<uint32_t>(LoadBE32(h + 36), kMaxL1Entries);
  const uint64_t l1_offset = LoadBE64(h + 40);
  const uint64_t rt_offset = LoadBE64(h + 48);
  const uint32_t rt_clusters = std::min<uint32_t>(LoadBE32(h + 56), kMaxReftableBytes >> bits);
  const uint64_t snap_offset = LoadBE64(h + 64);
  for (uint64_t at = l1_offset; at < l1_offset + uint64_t{l1_size} * 8; at += cs)
    mark(at, IoTag::kL1Table);
  for (uint64_t at = rt_offset; at < rt_offset + uint64_t{rt_clusters} * cs; at += cs) {
    mark(at, IoTag::kRefcountTable);
  }
  if (LoadBE32(h + 60) > 0) mark(snap_offset, IoTag::kSnapshotTable);
  for (uint64_t e : read_table(l1_offset, l1_size)) {
    if (e & 0x00fffffffffffe00ull) mark(e & 0x00fffffffffffe00ull, IoTag::kL2Table);
  }
  for (uint64_t e : read_table(rt_offset, uint64_t{rt_clusters} * cs / 8)) {
    if (e & ~uint64_t{0x1ff}) mark(e & ~uint64_t{0x1ff}, IoTag::kRefcountBlock);
  }
}

}  // namespace

std::shared_ptr<const simdisk::Recording> TagByImageMetadata(const simdisk::Recording& recording) {
  std::map<uint64_t, IoTag> roles;
  uint32_t bits = 16;
  MarkRoles(*recording.MediumAt(recording.op_count()), roles, bits);
  for (const simdisk::OpRecord& op : recording.ops()) {
    if (op.IsBarrier()) MarkRoles(*recording.MediumAt(op.seq + 1), roles, bits);
  }
  std::map<uint64_t, std::string> labels;
  for (const simdisk::GuestOp& g : recording.guest_ops()) labels[g.id] = g.label;
  auto out = std::make_shared<simdisk::Recording>(recording.cache(), recording.atomic_unit(),
                                                  recording.initial());
  for (simdisk::OpRecord op : recording.ops()) {
    if (op.kind == simdisk::OpKind::kWrite) {
      auto it = roles.find(op.offset >> bits);
      op.tag = it == roles.end() ? IoTag::kData : it->second;
    }
    const uint64_t seq = out->Append(op);
    if (op.kind == simdisk::OpKind::kGuestBegin)
      out->BeginGuestOp(op.guest_op, labels[op.guest_op], seq);
    if (op.kind == simdisk::OpKind::kGuestAck) out->AckGuestOp(op.guest_op, seq);
  }
  return out;
}

}  // namespace crashsim::validate
