// zstd + base64 trace payloads (blob.h).
#include "traces/blob.h"

#include <fmt/format.h>
#include <zstd.h>

#include "engine/invariant.h"

namespace crashsim::traces {

namespace {

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64(std::span<const uint8_t> in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = uint32_t{in[i]} << 16;
    if (i + 1 < in.size()) v |= uint32_t{in[i + 1]} << 8;
    if (i + 2 < in.size()) v |= in[i + 2];
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kBase64[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kBase64[v & 63] : '=';
  }
  return out;
}

// Strict: padded, canonical (unused bits zero), no other characters.
std::optional<std::vector<uint8_t>> Unbase64(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    const size_t pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=') : 0;
    if (pad == 1 && in[i + 2] == '=') return std::nullopt;
    uint32_t v = 0;
    for (size_t j = 0; j < 4; ++j) {
      if (j >= 4 - pad) {
        v <<= 6;
        continue;
      }
      const int d = value(in[i + j]);
      if (d < 0) return std::nullopt;
      v = v << 6 | static_cast<uint32_t>(d);
    }
    if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff))) return std::nullopt;
    out.push_back(static_cast<uint8_t>(v >> 16));
    if (pad < 2) out.push_back(static_cast<uint8_t>(v >> 8));
    if (pad < 1) out.push_back(static_cast<uint8_t>(v));
  }
  return out;
}

}  // namespace

std::string EncodeBlob(std::span<const uint8_t> raw) {
  std::vector<uint8_t> packed(ZSTD_compressBound(raw.size()));
  const size_t n = ZSTD_compress(packed.data(), packed.size(), raw.data(), raw.size(), 9);
  INVARIANT(!ZSTD_isError(n));
  packed.resize(n);
  return Base64(packed);
}

std::optional<std::vector<uint8_t>> DecodeBlob(std::string_view text, uint64_t length,
                                               std::string* why) {
  std::optional<std::vector<uint8_t>> packed = Unbase64(text);
  if (!packed) {
    *why = "the data is not canonical base64";
    return std::nullopt;
  }
  const unsigned long long declared = ZSTD_getFrameContentSize(packed->data(), packed->size());
  if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN) {
    *why = "the data is not a zstd frame with a content size";
    return std::nullopt;
  }
  if (declared != length) {
    *why = fmt::format("the data decompresses to {} bytes, the line says {}", declared, length);
    return std::nullopt;
  }
  std::vector<uint8_t> out(length);
  const size_t n = ZSTD_decompress(out.data(), out.size(), packed->data(), packed->size());
  if (ZSTD_isError(n) || n != length) {
    *why = fmt::format("the data does not decompress ({})",
                       ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short");
    return std::nullopt;
  }
  return out;
}

}  // namespace crashsim::traces
