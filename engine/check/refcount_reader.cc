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

// The memo's key for [offset, offset + length), if there is a memo and the device names it.
std::optional<CheckMemo::Key> MemoKey(Context& ctx, uint64_t offset, uint64_t length,
                                      CheckMemo::Kind kind) {
  if (ctx.memo == nullptr || offset > ctx.file_size || length > ctx.file_size - offset) {
    return std::nullopt;
  }
  std::optional<ContentName> name = ctx.device.NameContent(offset, length);
  if (!name) return std::nullopt;
  return CheckMemo::Key{
      *name, uint64_t{ctx.geo.cluster_bits} | uint64_t{ctx.geo.refcount_order} << 8, kind};
}

}  // namespace

Status RefcountReader::Load(Context& ctx) {
  cache_.clear();
  last_index_ = UINT64_MAX;
  last_block_ = nullptr;
  const uint64_t bytes = uint64_t{ctx.header.refcount_table_clusters} * ctx.cluster_size();
  const std::optional<CheckMemo::Key> key =
      MemoKey(ctx, ctx.header.refcount_table_offset, bytes, CheckMemo::Kind::kRefcountTable);
  if (key) {
    if (auto kept = ctx.memo->FindRefcountTable(*key)) {
      table_ = std::move(kept);
      return Status::Ok();
    }
  }
  std::vector<uint8_t> raw(bytes);
  RETURN_IF_ERROR(ReadZeroFilled(ctx.device, ctx.file_size, ctx.header.refcount_table_offset, raw));
  MemoRefcountTable table;
  table.entries.resize(bytes / 8);
  for (size_t i = 0; i < table.entries.size(); ++i) {
    table.entries[i] = LoadBE64(&raw[i * 8]);
    if (table.entries[i] != 0) table.nonzero.push_back(static_cast<uint32_t>(i));
  }
  table_ = key ? ctx.memo->PutRefcountTable(*key, std::move(table))
               : std::make_shared<const MemoRefcountTable>(std::move(table));
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
  uint64_t offset =
      index < table_->entries.size() ? table_->entries[index] & kReftableOffsetMask : 0;
  if (offset == 0) {
    *absent = true;
    Remember(index, nullptr, true);
    return static_cast<Block*>(nullptr);
  }
  if (!IsAligned(offset, ctx.cluster_size())) {
    return Status::IoError(
        fmt::format("Refblock offset {:#x} unaligned (reftable index: {:#x})", offset, index));
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
  const std::optional<CheckMemo::Key> key =
      MemoKey(ctx, offset, ctx.cluster_size(), CheckMemo::Kind::kRefcountBlock);
  if (key) block.shared = ctx.memo->FindBlock(*key);
  if (!block.shared) {
    std::vector<uint8_t> bytes(ctx.cluster_size());
    RETURN_IF_ERROR(ReadZeroFilled(ctx.device, ctx.file_size, offset, bytes));
    block.shared = key ? ctx.memo->PutBlock(*key, std::move(bytes))
                       : std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  }
  return Remember(index, &cache_.emplace(offset, std::move(block)).first->second, false);
}

Result<uint64_t> RefcountReader::Get(Context& ctx, uint64_t cluster) {
  if (std::optional<uint64_t> cached = GetCached(ctx, cluster)) return *cached;
  bool absent = false;
  ASSIGN_OR_RETURN(Block * block, BlockFor(ctx, cluster, &absent));
  if (absent) return uint64_t{0};
  return GetRefcountEntry(std::span(block->data(), ctx.cluster_size()), IndexInBlock(ctx, cluster),
                          ctx.geo.refcount_order);
}

Result<const uint8_t*> RefcountReader::BlockData(Context& ctx, uint64_t cluster) {
  bool absent = false;
  ASSIGN_OR_RETURN(Block * block, BlockFor(ctx, cluster, &absent));
  return absent ? nullptr : block->data();
}

Status RefcountReader::Set(Context& ctx, uint64_t cluster, uint64_t value) {
  bool absent = false;
  ASSIGN_OR_RETURN(Block * block, BlockFor(ctx, cluster, &absent));
  if (absent) {
    return Status::Corruption(fmt::format("cluster {} has no refcount block", cluster));
  }
  RETURN_IF_ERROR(ctx.PrepareToWrite());
  SetRefcountEntry(std::span(block->mutable_data(), ctx.cluster_size()), IndexInBlock(ctx, cluster),
                   ctx.geo.refcount_order, value);
  block->dirty = true;
  return Status::Ok();
}

Status RefcountReader::WriteBack(Context& ctx, uint64_t offset, Block& block) {
  if (!block.dirty) return Status::Ok();
  RETURN_IF_ERROR(RepairWrite(ctx.device, offset, std::span(block.data(), ctx.cluster_size()),
                              IoTag::kRefcountBlock));
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
