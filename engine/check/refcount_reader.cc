#include "engine/check/refcount_reader.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/check/device_io.h"
#include "engine/coding.h"

namespace crashsim::check {
namespace {

// The comparison reads each block once, in order, so the cache only serves the scattered
// lookups of the COPIED check: 1 MiB of blocks (16 at 64 KiB clusters, at least 4 of any size)
// covers 32 GiB of a large image's file at 16-bit refcounts and keeps the peak memory small.
constexpr uint64_t kCacheBytes = 1 << 20;
constexpr uint64_t kMinCachedBlocks = 4;

uint64_t MaxCachedBlocks(const Context& ctx) {
  return std::max(kMinCachedBlocks, kCacheBytes / ctx.cluster_size());
}

}  // namespace

Status RefcountReader::Load(Context& ctx) {
  cache_.clear();
  last_index_ = UINT64_MAX;
  last_block_ = nullptr;
  const uint64_t bytes = uint64_t{ctx.header.refcount_table_clusters} * ctx.cluster_size();
  std::vector<uint8_t> raw(bytes);
  RETURN_IF_ERROR(ReadZeroFilled(ctx.device, ctx.file_size, ctx.header.refcount_table_offset, raw));
  table_.resize(bytes / 8);
  for (size_t i = 0; i < table_.size(); ++i) table_[i] = LoadBE64(&raw[i * 8]);
  return Status::Ok();
}

Result<RefcountReader::Block*> RefcountReader::BlockFor(Context& ctx, uint64_t cluster,
                                                        bool* absent) {
  const uint64_t index = cluster >> BlockEntriesBits(ctx);
  if (index == last_index_) {
    *absent = last_absent_;
    return last_block_;
  }
  *absent = false;
  uint64_t offset = index < table_.size() ? table_[index] & kReftableOffsetMask : 0;
  if (offset == 0) {
    *absent = true;
    Remember(index, nullptr, true);
    return static_cast<Block*>(nullptr);
  }
  if (!IsAligned(offset, ctx.cluster_size())) {
    return Status::IoError(fmt::format("Refblock offset {:#x} unaligned (reftable index: {:#x})",
                                       offset, index));
  }
  auto it = cache_.find(offset);
  if (it != cache_.end()) return Remember(index, &it->second, false);
  if (cache_.size() >= MaxCachedBlocks(ctx)) {
    auto victim = cache_.begin();
    RETURN_IF_ERROR(WriteBack(ctx, victim->first, victim->second));
    if (&victim->second == last_block_) Remember(UINT64_MAX, nullptr, false);
    cache_.erase(victim);
  }
  Block block;
  block.bytes.resize(ctx.cluster_size());
  RETURN_IF_ERROR(ReadZeroFilled(ctx.device, ctx.file_size, offset, block.bytes));
  return Remember(index, &cache_.emplace(offset, std::move(block)).first->second, false);
}

Result<uint64_t> RefcountReader::Get(Context& ctx, uint64_t cluster) {
  if (std::optional<uint64_t> cached = GetCached(ctx, cluster)) return *cached;
  bool absent = false;
  ASSIGN_OR_RETURN(Block * block, BlockFor(ctx, cluster, &absent));
  if (absent) return uint64_t{0};
  return GetRefcountEntry(block->bytes, IndexInBlock(ctx, cluster),
                          ctx.geo.refcount_order);
}

Result<const uint8_t*> RefcountReader::BlockData(Context& ctx, uint64_t cluster) {
  bool absent = false;
  ASSIGN_OR_RETURN(Block * block, BlockFor(ctx, cluster, &absent));
  return absent ? nullptr : block->bytes.data();
}

Status RefcountReader::Set(Context& ctx, uint64_t cluster, uint64_t value) {
  bool absent = false;
  ASSIGN_OR_RETURN(Block * block, BlockFor(ctx, cluster, &absent));
  if (absent) {
    return Status::Corruption(fmt::format("cluster {} has no refcount block", cluster));
  }
  RETURN_IF_ERROR(ctx.PrepareToWrite());
  SetRefcountEntry(block->bytes, IndexInBlock(ctx, cluster),
                   ctx.geo.refcount_order, value);
  block->dirty = true;
  return Status::Ok();
}

Status RefcountReader::WriteBack(Context& ctx, uint64_t offset, Block& block) {
  if (!block.dirty) return Status::Ok();
  RETURN_IF_ERROR(RepairWrite(ctx.device, offset, block.bytes, IoTag::kRefcountBlock));
  block.dirty = false;
  return Status::Ok();
}

Status RefcountReader::Flush(Context& ctx) {
  bool wrote = false;
  for (auto& [offset, block] : cache_) {
    wrote |= block.dirty;
    RETURN_IF_ERROR(WriteBack(ctx, offset, block));
  }
  if (wrote) {
    RETURN_IF_ERROR(ctx.device.Flush());
    RETURN_IF_ERROR(RefreshFileSize(ctx));
  }
  return Status::Ok();
}

}  // namespace crashsim::check
