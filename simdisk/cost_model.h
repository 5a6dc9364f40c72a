// Simulated time and I/O counters. Every device operation is charged a configurable latency
// (per write, per byte written, per flush, extra per FUA write), in integer nanoseconds and
// picoseconds so the totals are exact and identical on every machine. Counters are kept per
// guest operation, so lazy and non-lazy refcounts can be compared in simulated time as well as
// in writes, bytes, flushes and FUA writes. No clock is ever read.
#pragma once

#include <cstdint>

namespace crashsim::simdisk {

struct CostModel {
  uint64_t write_ns = 10'000;  // fixed cost of a write (command overhead)
  uint64_t byte_ps = 500;      // per byte written, in picoseconds (2 GB/s)
  uint64_t read_ns = 5'000;
  uint64_t read_byte_ps = 250;
  uint64_t flush_ns = 500'000;  // a device cache flush
  uint64_t fua_ns = 100'000;    // extra for a FUA write over an ordinary one
};

struct IoCounters {
  uint64_t reads = 0;
  uint64_t bytes_read = 0;
  uint64_t writes = 0;
  uint64_t bytes_written = 0;
  uint64_t fua_writes = 0;
  uint64_t flushes = 0;
  uint64_t resizes = 0;
  uint64_t failed = 0;   // operations failed by the fault plan
  uint64_t time_ns = 0;  // simulated time spent in the device

  IoCounters& operator+=(const IoCounters& other);
  bool operator==(const IoCounters&) const = default;
};

// The simulated cost of one operation; `honoured` is false for a flush or FUA the cache mode
// drops (unsafe), which then costs what an ordinary write or nothing costs.
uint64_t WriteCostNs(const CostModel& cost, uint64_t bytes, bool fua_honoured);
uint64_t ReadCostNs(const CostModel& cost, uint64_t bytes);
uint64_t FlushCostNs(const CostModel& cost, bool honoured);

}  // namespace crashsim::simdisk
