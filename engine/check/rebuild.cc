#include "engine/check/rebuild.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "engine/check/device_io.h"
#include "engine/coding.h"

namespace crashsim::check {
namespace {

struct Layout {
  uint64_t first_cluster = 0;          // where the new structures start
  std::vector<uint64_t> block_ranges;  // refcount table indexes that get a block, ascending
  uint64_t table_clusters = 0;
};

// Chooses which ranges need a refcount block and how big the table is, counting the new
// structures themselves, until the sizes stop changing (they only grow, so this ends).
Layout PlanLayout(const ReferenceCounter& counter, const Geometry& geo) {
  const uint64_t per_block = geo.refcount_block_entries();
  const uint64_t first = counter.nb_clusters();
  std::vector<bool> used(DivRoundUp(first, per_block), false);
  for (uint64_t c = 0; c < first; ++c) {
    if (counter.Get(c)) used[c / per_block] = true;
  }
  Layout layout;
  layout.first_cluster = first;
  uint64_t blocks = 0;
  uint64_t table_clusters = 0;
  while (true) {
    const uint64_t end = first + blocks + table_clusters;
    std::vector<bool> ranges = used;
    if (end > first) {
      ranges.resize(std::max<uint64_t>(ranges.size(), DivRoundUp(end, per_block)), false);
      for (uint64_t r = first / per_block; r <= (end - 1) / per_block; ++r) ranges[r] = true;
    }
    uint64_t new_blocks = static_cast<uint64_t>(std::count(ranges.begin(), ranges.end(), true));
    uint64_t new_table = std::max<uint64_t>(1, DivRoundUp(ranges.size() * 8, geo.cluster_size()));
    if (new_blocks == blocks && new_table == table_clusters) {
      for (uint64_t r = 0; r < ranges.size(); ++r) {
        if (ranges[r]) layout.block_ranges.push_back(r);
      }
      layout.table_clusters = table_clusters;
      return layout;
    }
    blocks = new_blocks;
    table_clusters = new_table;
  }
}

}  // namespace

Status RebuildRefcountStructure(Context& ctx, ReferenceCounter& counter) {
  const Geometry& geo = ctx.geo;
  const uint64_t cs = geo.cluster_size();
  // The new structures go after the file's end, but never on a structure that already claims
  // clusters there (an L1 table past EOF): the layout moves past such a claim and, as the file
  // will cover it, counts it.
  Layout layout = PlanLayout(counter, geo);
  while (counter.CountPastEofBelow(
             ctx, layout.first_cluster + layout.block_ranges.size() + layout.table_clusters) > 0) {
    layout = PlanLayout(counter, geo);
  }
  if (layout.table_clusters * cs > kMaxReftableBytes) {
    return Status::NoSpace(
        fmt::format("Reference count table too large: {} clusters needed", layout.table_clusters));
  }
  const uint64_t table_cluster = layout.first_cluster + layout.block_ranges.size();
  for (uint64_t c = layout.first_cluster; c < table_cluster + layout.table_clusters; ++c) {
    counter.Set(c, 1);
  }
  RETURN_IF_ERROR(ctx.PrepareToWrite());
  const uint64_t per_block = geo.refcount_block_entries();
  std::vector<uint8_t> table(layout.table_clusters * cs, 0);
  std::vector<uint8_t> block(cs);
  for (size_t k = 0; k < layout.block_ranges.size(); ++k) {
    const uint64_t range = layout.block_ranges[k];
    const uint64_t block_offset = (layout.first_cluster + k) * cs;
    std::fill(block.begin(), block.end(), uint8_t{0});
    // Clusters past the counter's end have no references: their entries stay 0.
    const uint64_t first = range * per_block;
    const uint64_t counted =
        counter.nb_clusters() > first ? std::min(per_block, counter.nb_clusters() - first) : 0;
    for (uint64_t j = 0; j < counted; ++j) {
      if (uint64_t v = counter.Get(first + j)) SetRefcountEntry(block, j, geo.refcount_order, v);
    }
    RETURN_IF_ERROR(RepairWrite(ctx.device, block_offset, block, IoTag::kRefcountBlock));
    StoreBE64(&table[range * 8], block_offset);
  }
  const uint64_t table_offset = table_cluster * cs;
  RETURN_IF_ERROR(RepairWrite(ctx.device, table_offset, table, IoTag::kRefcountTable));
  RETURN_IF_ERROR(ctx.device.Flush());  // R4: the new structure is durable before the switch

  uint8_t pointer[12];
  StoreBE64(pointer, table_offset);
  StoreBE32(pointer + 8, static_cast<uint32_t>(layout.table_clusters));
  RETURN_IF_ERROR(RepairWriteSync(ctx.device, kReftableOffsetOffset, pointer, IoTag::kHeader));
  ctx.header.refcount_table_offset = table_offset;
  ctx.header.refcount_table_clusters = static_cast<uint32_t>(layout.table_clusters);
  return RefreshFileSize(ctx);
}

}  // namespace crashsim::check
