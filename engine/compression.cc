#include "engine/compression.h"

#include <fmt/format.h>
#include <zlib.h>
#include <zstd.h>

namespace crashsim {
namespace {

// QEMU writes raw deflate with a 4 KiB window (windowBits -12); inflate accepts any window.
constexpr int kDeflateWindowBits = -12;

Status Inflate(std::span<const uint8_t> input, std::span<uint8_t> output) {
  z_stream z{};
  if (inflateInit2(&z, -15) != Z_OK) return Status::IoError("zlib: inflateInit2 failed");
  z.next_in = const_cast<Bytef*>(input.data());
  z.avail_in = static_cast<uInt>(input.size());
  z.next_out = output.data();
  z.avail_out = static_cast<uInt>(output.size());
  int ret = inflate(&z, Z_FINISH);
  size_t produced = output.size() - z.avail_out;
  inflateEnd(&z);
  if ((ret != Z_STREAM_END && ret != Z_BUF_ERROR && ret != Z_OK) || produced != output.size()) {
    return Status::Corruption(
        fmt::format("deflate data does not decompress to a full cluster "
                    "({} of {} bytes, zlib {})",
                    produced, output.size(), ret));
  }
  return Status::Ok();
}

Status ZstdDecompress(std::span<const uint8_t> input, std::span<uint8_t> output) {
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  if (!ctx) return Status::IoError("zstd: cannot create a context");
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  ZSTD_outBuffer out{output.data(), output.size(), 0};
  size_t ret = 0;
  while (out.pos < out.size && in.pos < in.size) {
    ret = ZSTD_decompressStream(ctx, &out, &in);
    if (ZSTD_isError(ret)) break;
    if (ret == 0) break;
  }
  ZSTD_freeDCtx(ctx);
  if (ZSTD_isError(ret) || out.pos != out.size) {
    return Status::Corruption(fmt::format(
        "zstd data does not decompress to a full cluster ({} "
        "of {} bytes{})",
        out.pos, out.size, ZSTD_isError(ret) ? std::string(", ") + ZSTD_getErrorName(ret) : ""));
  }
  return Status::Ok();
}

}  // namespace

Status DecompressCluster(CompressionType type, std::span<const uint8_t> input,
                         std::span<uint8_t> output) {
  return type == CompressionType::kZstd ? ZstdDecompress(input, output) : Inflate(input, output);
}

Result<std::vector<uint8_t>> CompressCluster(CompressionType type, std::span<const uint8_t> input) {
  std::vector<uint8_t> out;
  if (type == CompressionType::kZstd) {
    out.resize(ZSTD_compressBound(input.size()));
    size_t n = ZSTD_compress(out.data(), out.size(), input.data(), input.size(), 3);
    if (ZSTD_isError(n)) return Status::IoError(std::string("zstd: ") + ZSTD_getErrorName(n));
    out.resize(n);
  } else {
    z_stream z{};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kDeflateWindowBits, 9,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      return Status::IoError("zlib: deflateInit2 failed");
    }
    out.resize(deflateBound(&z, static_cast<uLong>(input.size())));
    z.next_in = const_cast<Bytef*>(input.data());
    z.avail_in = static_cast<uInt>(input.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    int ret = deflate(&z, Z_FINISH);
    size_t n = out.size() - z.avail_out;
    deflateEnd(&z);
    if (ret != Z_STREAM_END) return Status::IoError("zlib: deflate did not finish");
    out.resize(n);
  }
  if (out.size() >= input.size()) out.clear();
  return out;
}

}  // namespace crashsim
