// Where the image's fixed metadata lives, from the header alone: the header cluster, the active
// L1 table, the refcount table and the blocks it names, the snapshot table and each snapshot's
// L1 table. The repairer consults it before trusting or rewriting an L2 table: an L2 table inside
// one of these is garbage, and writing "repairs" into it would damage the structure it overlaps
// (QEMU guards the same writes with its overlap check).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace crashsim::check {

class MetadataMap {
 public:
  void Add(uint64_t offset, uint64_t size, std::string name);
  // The name of a structure overlapping [offset, offset+size), or nullptr.
  const std::string* Find(uint64_t offset, uint64_t size) const;

 private:
  struct Range {
    uint64_t begin;
    uint64_t end;
    std::string name;
  };
  mutable std::vector<Range> ranges_;
  mutable std::vector<uint64_t> max_end_;  // running maximum of `end` over sorted ranges
  mutable bool sorted_ = true;
};

}  // namespace crashsim::check
