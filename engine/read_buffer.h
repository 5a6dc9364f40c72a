// A byte vector for buffers that a read fills whole right after they are sized. std::vector
// zero-fills what resize() adds, and crash-state checks size a 64 KiB table buffer several times
// per state only to overwrite it at once: that zero-filling was a tenth of a check's time.
// Here resize() leaves new bytes uninitialised; everything else is std::vector.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace crashsim {

template <typename T>
class DefaultInitAllocator : public std::allocator<T> {
 public:
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  using std::allocator<T>::allocator;

  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;  // default-initialised: no zeroing for bytes
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

using ReadBuffer = std::vector<uint8_t, DefaultInitAllocator<uint8_t>>;

}  // namespace crashsim
