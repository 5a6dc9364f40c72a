#include "simdisk/cost_model.h"

namespace crashsim::simdisk {

IoCounters& IoCounters::operator+=(const IoCounters& other) {
  reads += other.reads;
  bytes_read += other.bytes_read;
  writes += other.writes;
  bytes_written += other.bytes_written;
  fua_writes += other.fua_writes;
  flushes += other.flushes;
  resizes += other.resizes;
  failed += other.failed;
  time_ns += other.time_ns;
  return *this;
}

uint64_t WriteCostNs(const CostModel& cost, uint64_t bytes, bool fua_honoured) {
  return cost.write_ns + bytes * cost.byte_ps / 1000 + (fua_honoured ? cost.fua_ns : 0);
}

uint64_t ReadCostNs(const CostModel& cost, uint64_t bytes) {
  return cost.read_ns + bytes * cost.read_byte_ps / 1000;
}

uint64_t FlushCostNs(const CostModel& cost, bool honoured) { return honoured ? cost.flush_ns : 0; }

}  // namespace crashsim::simdisk
