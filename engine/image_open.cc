// Opening, creating and closing images, the header rewrite, and the dirty-bit protocol (L1, L3
// in engine/protocol.h). Everything read here is validated before it sizes a table.
#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "engine/check/check.h"
#include "engine/check/snapshot_table.h"
#include "engine/coding.h"
#include "engine/image_state.h"
#include "engine/invariant.h"

namespace crashsim {
Result<std::vector<uint64_t>> ReadTable(BlockDevice& device, uint64_t offset, uint64_t entries,
                                        const char* what) {
  // An empty table has no bytes to read, wherever its offset points (the header decoder checks
  // only that the table's bytes lie in the file): qemu opens such an image, so must the engine.
  if (entries == 0) return std::vector<uint64_t>{};
  std::vector<uint8_t> raw(entries * 8);
  Status st = device.Read(offset, raw);
  if (!st.ok()) return st.WithContext(fmt::format("reading the {} at {:#x}", what, offset));
  std::vector<uint64_t> table(entries);
  for (uint64_t i = 0; i < entries; ++i) table[i] = LoadBE64(&raw[i * 8]);
  return table;
}

namespace {

// Clean metadata clusters kept per cache; dirty ones stay until their flush point.
constexpr size_t kL2CacheClusters = 512;
constexpr size_t kRefblockCacheClusters = 64;

Result<QcowHeader> ReadHeader(BlockDevice& device, const OpenOptions& options) {
  ASSIGN_OR_RETURN(uint64_t file_size, device.Size());
  ASSIGN_OR_RETURN(std::vector<uint8_t> bytes,
                   ReadHeaderArea(file_size, [&](uint64_t offset, std::span<uint8_t> out) {
                     return device.Read(offset, out);
                   }));
  return DecodeHeader(bytes, file_size, {.for_check = options.for_check});
}

Geometry GeometryOf(const QcowHeader& h) {
  return {.cluster_bits = h.cluster_bits,
          .refcount_order = h.refcount_order,
          .extended_l2 = h.extended_l2()};
}

class RawReader : public GuestReader {
 public:
  RawReader(std::unique_ptr<BlockDevice> device, uint64_t size)
      : device_(std::move(device)), size_(size) {}
  uint64_t virtual_size() const override { return size_; }
  Status Read(uint64_t offset, std::span<uint8_t> data) override {
    return device_->Read(offset, data);
  }

 private:
  std::unique_ptr<BlockDevice> device_;
  uint64_t size_;
};

}  // namespace

Result<std::unique_ptr<GuestReader>> OpenBacking(const QcowHeader& header,
                                                 const OpenOptions& options) {
  if (!options.open_backing) {
    return Status::NotSupported("image has a backing file '" + header.backing_file +
                                "' but no way to open it was given");
  }
  if (options.max_backing_depth <= 0) {
    return Status::InvalidArgument("backing chain too deep (a loop?) at '" + header.backing_file +
                                   "'");
  }
  auto device = options.open_backing(header.backing_file);
  if (!device.ok()) {
    return device.status().WithContext("Could not open backing file '" + header.backing_file + "'");
  }
  std::string format = header.backing_format.value_or("");
  if (format.empty()) {
    uint8_t magic[4] = {};
    ASSIGN_OR_RETURN(uint64_t size, (*device)->Size());
    if (size >= 4) RETURN_IF_ERROR((*device)->Read(0, magic));
    format = LoadBE32(magic) == kQcowMagic ? "qcow2" : "raw";
  }
  if (format == "raw") {
    ASSIGN_OR_RETURN(uint64_t size, (*device)->Size());
    return std::unique_ptr<GuestReader>(new RawReader(std::move(device).value(), size));
  }
  if (format != "qcow2") {
    return Status::NotSupported("backing file format '" + format + "' is not supported");
  }
  OpenOptions backing_options;
  backing_options.read_only = true;
  backing_options.open_backing = options.open_backing;
  backing_options.max_backing_depth = options.max_backing_depth - 1;
  auto image = Image::Open(std::move(device).value(), backing_options);
  if (!image.ok()) return image.status().WithContext("backing file '" + header.backing_file + "'");
  return std::unique_ptr<GuestReader>(std::move(image).value());
}

Result<QcowHeader> ReadImageHeader(BlockDevice& device, bool for_check) {
  OpenOptions options;
  options.for_check = for_check;
  return ReadHeader(device, options);
}

std::unique_ptr<GuestReader> MakeRawReader(std::unique_ptr<BlockDevice> device) {
  auto size = device->Size();
  return std::make_unique<RawReader>(std::move(device), size.ok() ? *size : 0);
}

Image::State::State(BlockDevice& dev, QcowHeader hdr, OpenOptions opts)
    : device(dev),
      header(std::move(hdr)),
      geometry(GeometryOf(header)),
      options(std::move(opts)),
      l2_cache(dev, header.cluster_size(), kL2CacheClusters, IoTag::kL2Table,
               [this](uint64_t offset, std::span<const uint8_t> data) {
                 return DevWrite(offset, data, IoTag::kL2Table, DurableStep::kL2Writeback);
               }),
      refblock_cache(dev, header.cluster_size(), kRefblockCacheClusters, IoTag::kRefcountBlock,
                     [this](uint64_t offset, std::span<const uint8_t> data) {
                       return DevWrite(offset, data, IoTag::kRefcountBlock,
                                       DurableStep::kRefblockWriteback);
                     }) {
  dirty_on_disk = header.dirty();
}

Status Image::State::DevWrite(uint64_t offset, std::span<const uint8_t> data, IoTag tag,
                              DurableStep step, bool fua) {
  INVARIANT(!options.read_only);
  RETURN_IF_ERROR(PreWriteOverlapCheck(offset, data.size(), tag));
  ++stats.device_writes;
  stats.device_write_bytes += data.size();
  if (!fua) ++writes_since_flush;
  return device.Write(offset, data, {.fua = fua, .tag = tag, .step = static_cast<uint8_t>(step)});
}

Status Image::State::DevFlush() {
  // cache=unsafe: flushes never reach the disk (QEMU's cache.no-flush).
  if (options.cache_mode == CacheMode::kUnsafe) return Status::Ok();
  // Nothing written since the last flush, or only FUA writes: nothing to make durable (QEMU
  // skips such flushes with its write-generation counter).
  if (writes_since_flush == 0) return Status::Ok();
  ++stats.device_flushes;
  RETURN_IF_ERROR(device.Flush());
  writes_since_flush = 0;
  return Status::Ok();
}

Status Image::State::ReadHostData(uint64_t offset, std::span<uint8_t> data) {
  ASSIGN_OR_RETURN(uint64_t size, device.Size());
  std::fill(data.begin(), data.end(), 0);
  if (offset >= size) return Status::Ok();
  uint64_t n = std::min<uint64_t>(data.size(), size - offset);
  return device.Read(offset, data.first(n));
}

Status Image::State::WriteHeader(DurableStep step) {
  ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, EncodeHeader(header));
  bytes.resize(std::min<uint64_t>(AlignUp(bytes.size(), 512), header.cluster_size()), 0);
  return DevWrite(0, bytes, IoTag::kHeader, step);
}

Status Image::State::MarkDirty() {
  INVARIANT(lazy && header.version >= 3);
  if (dirty_on_disk) return Status::Ok();
  uint8_t field[8];
  StoreBE64(field, header.incompatible_features | kIncompatDirty);
  RETURN_IF_ERROR(
      DevWrite(kIncompatibleFeaturesOffset, field, IoTag::kHeader, DurableStep::kDirtyBitSet));
  RETURN_IF_ERROR(DevFlush());
  // Only treat the image as dirty once the header says so on disk.
  header.incompatible_features |= kIncompatDirty;
  dirty_on_disk = true;
  ++stats.dirty_bit_sets;
  return Status::Ok();
}

Status Image::State::MarkClean() {
  if (!dirty_on_disk) return Status::Ok();
  INVARIANT(!poisoned);
  RETURN_IF_ERROR(FlushMetadata(/*flush_refcounts_even_if_lazy=*/true));
  header.incompatible_features &= ~kIncompatDirty;
  Status st = WriteHeader(DurableStep::kDirtyBitClear);
  if (st.ok()) st = DevFlush();
  if (!st.ok()) {
    header.incompatible_features |= kIncompatDirty;
    return st;
  }
  dirty_on_disk = false;
  return Status::Ok();
}

Status Image::State::InvalidateBitmaps() {
  // The engine does not track dirty bitmaps, so before its first write it sets the in_use flag
  // of every bitmap in the directory: the spec's mark for "may be inconsistent". The bitmaps and
  // their clusters stay, refcounted, for a tool that knows how to rebuild them.
  if (bitmaps_invalidated || !header.bitmaps || !(header.autoclear_features & kAutoclearBitmaps)) {
    return Status::Ok();
  }
  const BitmapsExtension& ext = *header.bitmaps;
  std::vector<uint8_t> dir(ext.bitmap_directory_size);
  Status st = device.Read(ext.bitmap_directory_offset, dir);
  if (!st.ok()) return st.WithContext("reading the bitmap directory");
  constexpr uint32_t kBitmapInUse = 1;
  size_t pos = 0;
  for (uint32_t i = 0; i < ext.nb_bitmaps; ++i) {
    if (dir.size() - pos < 24) {
      return Status::Corruption(fmt::format("bitmap directory entry {} at {:#x} is truncated", i,
                                            ext.bitmap_directory_offset + pos));
    }
    uint32_t flags = LoadBE32(&dir[pos + 12]);
    uint64_t name_size = LoadBE16(&dir[pos + 18]);
    uint64_t extra_size = LoadBE32(&dir[pos + 20]);
    StoreBE32(&dir[pos + 12], flags | kBitmapInUse);
    uint64_t entry_size = AlignUp(24 + extra_size + name_size, 8);
    if (entry_size > dir.size() - pos) {
      return Status::Corruption(
          fmt::format("bitmap directory entry {} runs past the directory", i));
    }
    pos += entry_size;
  }
  RETURN_IF_ERROR(
      DevWrite(ext.bitmap_directory_offset, dir, IoTag::kBitmap, DurableStep::kHeaderUpdate));
  RETURN_IF_ERROR(DevFlush());
  bitmaps_invalidated = true;
  return Status::Ok();
}

Status Image::State::PrepareForWrite() {
  if (closed) return Status::InvalidArgument("image is closed");
  if (options.read_only) return Status::ReadOnly(device.Name() + ": image is opened read-only");
  if (poisoned) {
    return Status::IoError(device.Name() +
                           ": an earlier write failed half way; the image is "
                           "left for repair (reopen it read-write, or crashsim check -r all)");
  }
  if (reftable.empty()) {
    return Status::Corruption(device.Name() +
                              ": the image has no refcount table; repair it "
                              "before writing");
  }
  return InvalidateBitmaps();
}

void Image::State::Poison() {
  if (poisoned) return;
  poisoned = true;
  if (header.version < 3 || dirty_on_disk) return;
  uint8_t field[8];
  StoreBE64(field, header.incompatible_features | kIncompatDirty);
  if (DevWrite(kIncompatibleFeaturesOffset, field, IoTag::kHeader, DurableStep::kDirtyBitSet)
          .ok() &&
      DevFlush().ok()) {
    header.incompatible_features |= kIncompatDirty;
    dirty_on_disk = true;
  }
}

// ---------------------------------------------------------------------------------------------

Image::Image(std::unique_ptr<State> state) : s_(std::move(state)) {}
Image::~Image() = default;

Result<std::unique_ptr<Image>> Image::Open(std::unique_ptr<BlockDevice> device,
                                           const OpenOptions& options) {
  BlockDevice& ref = *device;
  ASSIGN_OR_RETURN(std::unique_ptr<Image> image, Open(ref, options));
  image->s_->owned_device = std::move(device);
  return image;
}

Result<std::unique_ptr<Image>> Image::Open(BlockDevice& device, const OpenOptions& options) {
  auto header_or = ReadHeader(device, options);
  if (!header_or.ok()) return header_or.status().WithContext(device.Name());
  QcowHeader header = std::move(header_or).value();
  const std::string name = device.Name();
  if (header.corrupt() && !options.read_only && !options.for_check) {
    return Status::ReadOnly(name + ": qcow2: Image is corrupt; cannot be opened read/write");
  }
  bool lazy = options.lazy_refcounts.value_or(header.lazy_refcounts());
  if (lazy && header.version < 3) {
    return Status::InvalidArgument(name +
                                   ": Lazy refcounts require a qcow2 image with at least "
                                   "qemu 1.1 compatibility level");
  }
  std::string repair_log;
  if (header.dirty() && !options.read_only && !options.for_check) {
    if (!options.repair_dirty) {
      return Status::InvalidArgument(name +
                                     ": image is dirty (not cleanly shut down) and "
                                     "automatic repair is off");
    }
    // As QEMU does: a read-write open of a dirty image runs check -r all first.
    CheckReport report = Repair(device, RepairMode::kAll);
    repair_log = FormatCheckFindings(report) + FormatCheckHuman(report);
    if (!report.status.ok() || report.check_errors > 0 || report.corruptions > 0) {
      return Status::Corruption(
          name + ": Could not repair dirty image: " +
          (report.status.ok() ? FormatCheckFindings(report) : report.status.message()));
    }
    auto repaired = ReadHeader(device, options);
    if (!repaired.ok()) return repaired.status().WithContext(name + " after repair");
    header = std::move(repaired).value();
    if (header.dirty()) return Status::Corruption(name + ": repair left the image dirty");
  }
  if (!options.load_snapshot.empty() && !options.read_only) {
    return Status::InvalidArgument(name + ": a snapshot can only be loaded read-only");
  }
  std::vector<SnapshotL1Location> snapshot_l1s;
  uint64_t snapshot_table_size = 0;
  const SnapshotEntry* loaded = nullptr;
  std::optional<SnapshotTable> snapshots;
  if (header.nb_snapshots > 0) {
    // The snapshot table is kept, never rewritten; it must at least be sound to write beside it.
    ASSIGN_OR_RETURN(uint64_t file_size, device.Size());
    SnapshotTableOptions so{.version = header.version,
                            .cluster_size = header.cluster_size(),
                            .virtual_size = header.size};
    auto table =
        ReadSnapshotTable(device, file_size, header.snapshots_offset, header.nb_snapshots, so);
    if (!table.ok()) return table.status().WithContext(name + ": snapshot table");
    for (uint32_t i = 0; i < table->entries.size(); ++i) {
      Status st = ValidateSnapshotL1(table->entries[i], i, header.cluster_size(), file_size);
      if (!st.ok()) return st.WithContext(name);
      snapshot_l1s.push_back({table->entries[i].l1_table_offset, table->entries[i].l1_size});
    }
    snapshot_table_size = table->table_size;
    snapshots = std::move(table).value();
  }
  if (!options.load_snapshot.empty()) {
    loaded = snapshots ? FindSnapshot(*snapshots, options.load_snapshot) : nullptr;
    if (loaded == nullptr) {
      return Status::NotFound(
          fmt::format("{}: Can't find snapshot '{}'", name, options.load_snapshot));
    }
    // The view reads through the snapshot's L1 table at its size; nothing writes through it.
    header.l1_table_offset = loaded->l1_table_offset;
    header.l1_size = loaded->l1_size;
    header.size = loaded->disk_size;
  }
  auto state = std::make_unique<State>(device, header, options);
  state->lazy = lazy;
  state->repair_log = std::move(repair_log);
  state->snapshot_l1s = std::move(snapshot_l1s);
  state->snapshot_table_size = snapshot_table_size;
  ASSIGN_OR_RETURN(state->l1,
                   ReadTable(device, header.l1_table_offset, header.l1_size, "active L1 table"));
  // Only a writer needs the refcount table (the header decoder has checked that it lies in the
  // file): a read-only open, which the crash checks make thousands of times, skips reading it.
  if (!options.read_only) {
    ASSIGN_OR_RETURN(std::vector<uint64_t> reftable,
                     ReadTable(device, header.refcount_table_offset,
                               uint64_t{header.refcount_table_clusters} * header.cluster_size() / 8,
                               "refcount table"));
    state->SetReftable(std::move(reftable));
  }
  if (header.has_backing_file()) {
    auto backing = OpenBacking(header, options);
    if (!backing.ok()) return backing.status().WithContext(name);
    state->backing = std::move(backing).value();
  }
  if (!options.read_only && (header.autoclear_features & ~kAutoclearKnownMask)) {
    // A writer must clear autoclear bits it does not know before it writes (QEMU does it here).
    state->header.autoclear_features &= kAutoclearKnownMask;
    RETURN_IF_ERROR(state->WriteHeader(DurableStep::kHeaderUpdate));
    RETURN_IF_ERROR(state->DevFlush());
  }
  return std::unique_ptr<Image>(new Image(std::move(state)));
}

Status Image::Create(BlockDevice& device, const CreateOptions& options,
                     const BackingOpener& open_backing) {
  RETURN_IF_ERROR(options.Validate());
  uint64_t size = options.size;
  if (!options.backing_file.empty()) {
    if (!open_backing) return Status::InvalidArgument("a backing file needs a way to open it");
    QcowHeader probe;
    probe.backing_file = options.backing_file;
    if (!options.backing_format.empty()) probe.backing_format = options.backing_format;
    OpenOptions bo;
    bo.open_backing = open_backing;
    ASSIGN_OR_RETURN(std::unique_ptr<GuestReader> backing, OpenBacking(probe, bo));
    if (size == 0) size = backing->virtual_size();
  }
  QcowHeader h;
  h.version = options.version;
  h.cluster_bits = static_cast<uint32_t>(std::countr_zero(options.cluster_size));
  h.size = size;
  h.refcount_order = static_cast<uint32_t>(std::countr_zero(options.refcount_bits));
  h.header_length = h.version == 3 ? kV3HeaderLength : kV2HeaderLength;
  if (options.lazy_refcounts) h.compatible_features |= kCompatLazyRefcounts;
  if (options.extended_l2) h.incompatible_features |= kIncompatExtendedL2;
  if (options.compression_type == CompressionType::kZstd) {
    h.incompatible_features |= kIncompatCompressionType;
    h.compression_type = CompressionType::kZstd;
  }
  if (h.version == 3 && h.cluster_size() > 4096) h.feature_names = DefaultFeatureNames();
  h.backing_file = options.backing_file;
  if (!options.backing_format.empty()) h.backing_format = options.backing_format;
  const uint64_t cs = h.cluster_size();
  Geometry g = GeometryOf(h);
  uint64_t l1_entries = g.l1_entries_for(size);
  if (l1_entries > kMaxL1Entries) {
    return Status::InvalidArgument(
        fmt::format("image size {} is too big for cluster size {}", size, cs));
  }
  h.l1_size = static_cast<uint32_t>(l1_entries);
  h.refcount_table_offset = cs;
  h.refcount_table_clusters = 1;

  // Clusters 0 (header), 1 (refcount table) and 2 (refcount block 0), as QEMU lays them out;
  // everything after is placed by the engine's own allocator.
  RETURN_IF_ERROR(device.Resize(0));
  OpenOptions oo;
  oo.cache_mode = CacheMode::kWriteback;
  // The overlap check needs a complete layout (the header names an L1 table only once it is
  // placed); it starts once the header is written, before any preallocation.
  oo.overlap_check = 0;
  State s(device, h, oo);
  std::vector<uint64_t> reftable(cs / 8, 0);
  reftable[0] = 2 * cs;
  s.SetReftable(std::move(reftable));
  std::vector<uint8_t> reftable_cluster(cs, 0), refblock(cs, 0);
  StoreBE64(reftable_cluster.data(), 2 * cs);
  for (uint64_t i = 0; i < 3; ++i) SetRefcountEntry(refblock, i, h.refcount_order, 1);
  ASSIGN_OR_RETURN(std::vector<uint8_t> header_bytes, EncodeHeader(s.header));
  header_bytes.resize(cs, 0);
  RETURN_IF_ERROR(s.DevWrite(0, header_bytes, IoTag::kHeader, DurableStep::kCreate));
  RETURN_IF_ERROR(s.DevWrite(cs, reftable_cluster, IoTag::kRefcountTable, DurableStep::kCreate));
  RETURN_IF_ERROR(s.DevWrite(2 * cs, refblock, IoTag::kRefcountBlock, DurableStep::kCreate));
  s.free_cluster_index = 3;

  uint64_t l1_bytes = l1_entries * 8;
  if (l1_entries > 0) {
    ASSIGN_OR_RETURN(uint64_t l1_offset, s.AllocateClusters(DivRoundUp(l1_bytes, cs)));
    std::vector<uint8_t> zeros(AlignUp(l1_bytes, cs), 0);
    RETURN_IF_ERROR(s.DevWrite(l1_offset, zeros, IoTag::kL1Table, DurableStep::kL1Write));
    s.header.l1_table_offset = l1_offset;
  }
  s.l1.assign(l1_entries, 0);
  RETURN_IF_ERROR(s.WriteRefcountBlocks());
  RETURN_IF_ERROR(s.DevFlush());
  RETURN_IF_ERROR(s.WriteHeader(DurableStep::kCreate));
  RETURN_IF_ERROR(s.DevFlush());
  s.options.overlap_check = OpenOptions{}.overlap_check;
  if (options.preallocation == Preallocation::kMetadata) {
    RETURN_IF_ERROR(s.PreallocateMetadata());
  }
  return s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/true);
}

Status Image::Close() {
  if (s_->closed) return Status::Ok();
  s_->closed = true;
  if (s_->options.read_only) return Status::Ok();
  if (s_->poisoned) {
    return Status::IoError(s_->device.Name() +
                           ": closed without flushing after a failed "
                           "write; the image is left for repair");
  }
  RETURN_IF_ERROR(s_->FlushMetadata(/*flush_refcounts_even_if_lazy=*/true));
  return s_->MarkClean();
}

uint64_t Image::virtual_size() const { return s_->header.size; }
const QcowHeader& Image::header() const { return s_->header; }
const Geometry& Image::geometry() const { return s_->geometry; }
bool Image::read_only() const { return s_->options.read_only; }
bool Image::lazy_refcounts() const { return s_->lazy; }
CacheMode Image::cache_mode() const { return s_->options.cache_mode; }
BlockDevice& Image::device() { return s_->device; }
const EngineStats& Image::stats() const { return s_->stats; }
const std::string& Image::repair_log() const { return s_->repair_log; }

}  // namespace crashsim
