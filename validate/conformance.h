// Reader conformance: a corpus of qcow2 images made by crashsim's engine across the features it
// supports (versions, cluster sizes, refcount widths, zero clusters, compressed clusters with
// deflate and zstd, backing chains, internal snapshots, preallocation, extended L2, a dirty
// lazy-refcounts image),
// each with the guest content it must read as (computed from the writes, independently of any
// reader), and a runner that converts each image to raw with a reader command and compares.
// Compressed clusters are made by rewriting a normal cluster's L2 entry to a compressed
// descriptor and letting crashsim's repair recompute the refcounts (the engine never writes
// compressed clusters itself); every image is checked clean by crashsim before use.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/status.h"

namespace crashsim::validate {

struct CorpusImage {
  std::string feature;  // the row of the table: "refcount_bits=1", "backing chain", ...
  std::string path;     // the top image
  uint64_t virtual_size = 0;
  uint64_t content_hash = 0;      // simdisk HashBytes of the expected guest content
  std::vector<uint8_t> expected;  // the content itself, to say where a reader went wrong
};

// Builds the corpus in `dir` (created). Fails if the engine cannot make an image or an image
// does not check clean or read back as expected with crashsim itself.
Result<std::vector<CorpusImage>> BuildCorpus(const std::string& dir);

struct ReaderOutcome {
  std::string feature;
  bool pass = false;
  std::string detail;  // on failure: exit code and first line, or "content differs at 0x..."
};

// Built-in reader templates: "qemu" or "qemu-img" (qemu-img convert -O raw) and "libqcow"
// (python3-libqcow). Anything else must be a command template with {image} and {output} (and
// optionally {python_libqcow}); a name that is neither is an error naming the built-ins.
Result<std::string> ReaderTemplate(const std::string& name);

// Runs `reader` (a template) on each image into a raw file in `dir` and compares it;
// `progress(done)` after each image.
std::vector<ReaderOutcome> RunReader(const std::vector<CorpusImage>& corpus,
                                     const std::string& reader, const std::string& dir,
                                     int timeout_ms,
                                     const std::function<void(size_t)>& progress = {});

}  // namespace crashsim::validate
