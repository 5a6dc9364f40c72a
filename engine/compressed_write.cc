// Compressed cluster writes, as QEMU's qcow2_co_pwritev_compressed_part does: a whole guest
// cluster is compressed, its bytes go to the end of the last compressed cluster when they fit in
// that host cluster (a shared host cluster holds one reference per compressed cluster that
// starts in it), else to a fresh cluster, and the L2 entry names them only once they are durable
// (R2: FUA in writethrough, the barrier before the L2 write otherwise).
#include <fmt/format.h>

#include "engine/compression.h"
#include "engine/image.h"
#include "engine/image_state.h"
#include "engine/invariant.h"

namespace crashsim {
namespace {

// Whether an entry names host bytes: QEMU's "Compression can't overwrite anything".
bool HoldsHostData(const L2Entry& entry) {
  return (entry.word & kOflagCompressed) != 0 || entry.host_offset() != 0;
}

}  // namespace

Status Image::State::WriteCompressedCluster(uint64_t guest_offset,
                                            std::span<const uint8_t> cluster) {
  const uint64_t cs = header.cluster_size();
  INVARIANT(cluster.size() == cs && guest_offset % cs == 0);
  const uint64_t l2_index = geometry.l2_index(guest_offset);
  ASSIGN_OR_RETURN(L2Entry old, LookupEntry(guest_offset));
  INVARIANT(!HoldsHostData(old));  // Image::WriteCompressed refuses such clusters
  ASSIGN_OR_RETURN(std::vector<uint8_t> packed, CompressCluster(header.compression_type, cluster));
  if (packed.empty()) return WriteCluster(guest_offset, cluster);  // does not compress

  const uint64_t bytes = packed.size();
  uint64_t host = 0;
  if (compressed_free != 0 && compressed_free % cs != 0 && compressed_free % cs + bytes <= cs) {
    // Another compressed cluster in the host cluster the last one ends in: one more reference,
    // unless the refcount is at its width's maximum (1-bit refcounts: always), as in QEMU's
    // qcow2_alloc_bytes.
    ASSIGN_OR_RETURN(uint64_t rc, GetRefcount(cluster_index(compressed_free)));
    if (rc < geometry.refcount_max()) {
      if (lazy) RETURN_IF_ERROR(MarkDirty());  // protocol L1
      host = compressed_free;
      RETURN_IF_ERROR(SetRefcount(cluster_index(host), rc + 1));
    }
  }
  if (host == 0) {
    ASSIGN_OR_RETURN(host, AllocateClusters(1));
  }
  // The next one starts on the next sector, as QEMU's descriptor counts whole sectors.
  compressed_free = AlignUp(host + bytes, 512);
  if (compressed_free % cs == 0) compressed_free = 0;

  const bool fua = CacheModeWritesThrough(options.cache_mode);
  RETURN_IF_ERROR(DevWrite(host, packed, IoTag::kData, DurableStep::kGuestData, fua));
  ASSIGN_OR_RETURN(uint64_t table_offset, L2TableForWrite(geometry.l1_index(guest_offset)));
  ASSIGN_OR_RETURN(std::span<uint8_t> table, l2_cache.Get(table_offset));
  L2Entry updated;
  updated.word = EncodeCompressed(host, bytes, header.cluster_bits);
  updated.bitmap = 0;  // a compressed entry has no subcluster bitmap
  SetL2Entry(table, l2_index, updated);
  l2_cache.MarkDirty(table_offset);
  if (!fua) l2_needs_data_barrier = true;  // R2
  ReleaseEntry(old);  // a zero or unallocated entry: nothing, unless it held a host cluster
  return Status::Ok();
}

Status Image::WriteCompressed(uint64_t offset, std::span<const uint8_t> data) {
  RETURN_IF_ERROR(s_->PrepareForWrite());
  const uint64_t cs = s_->header.cluster_size();
  const uint64_t size = s_->header.size;
  if (offset % cs != 0 || offset > size || data.size() > size - offset ||
      (data.size() % cs != 0 && offset + data.size() != size)) {
    return Status::InvalidArgument(
        fmt::format("compressed write of {} bytes at offset {}: it must cover whole clusters "
                    "of {} bytes (the last may end at the end of the {}-byte disk)",
                    data.size(), offset, cs, size));
  }
  std::vector<uint8_t> cluster(cs);
  for (uint64_t done = 0; done < data.size(); done += cs) {
    const uint64_t n = std::min<uint64_t>(cs, data.size() - done);
    // The last cluster of a disk that ends inside it is padded with zeros, as QEMU pads it.
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(done), n, cluster.begin());
    std::fill(cluster.begin() + static_cast<std::ptrdiff_t>(n), cluster.end(), uint8_t{0});
    // Refused before anything is written, so the image stays usable (QEMU fails it with EIO).
    ASSIGN_OR_RETURN(L2Entry old, s_->LookupEntry(offset + done));
    if (HoldsHostData(old)) {
      return Status::IoError(
          fmt::format("compressed write at guest offset {:#x}: the cluster is already allocated "
                      "(a compressed write cannot overwrite data)",
                      offset + done));
    }
    RETURN_IF_ERROR(s_->Guard(s_->WriteCompressedCluster(offset + done, cluster)));
  }
  if (CacheModeWritesThrough(s_->options.cache_mode)) return s_->GuestFlush();
  return Status::Ok();
}

}  // namespace crashsim
