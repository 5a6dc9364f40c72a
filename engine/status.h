// Errors as values. Every fallible engine call returns a Status or a Result<T>; exceptions never
// cross the engine's API. A message names the structure and the offset that is wrong, e.g.
// "L2 entry 17 of table at 0x30000: offset not cluster-aligned".
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "engine/invariant.h"

namespace crashsim {

enum class StatusCode {
  kOk = 0,
  kIoError,          // the device failed (EIO)
  kNoSpace,          // the device is full (ENOSPC)
  kCorruption,       // the image's bytes violate the format
  kInvalidArgument,  // the caller asked for something impossible
  kNotSupported,     // a valid image or option this engine does not handle
  kReadOnly,         // a write to an image opened read-only
  kNotFound,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status NoSpace(std::string m) { return {StatusCode::kNoSpace, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status NotSupported(std::string m) { return {StatusCode::kNotSupported, std::move(m)}; }
  static Status ReadOnly(std::string m) { return {StatusCode::kReadOnly, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corruption: L1 table offset 0x200 not cluster-aligned"
  std::string ToString() const;

  // Prefixes the message with context, keeping the code: "image.qcow2: " + message.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    INVARIANT(!status_.ok());
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    INVARIANT(ok());
    return *value_;
  }
  const T& value() const& {
    INVARIANT(ok());
    return *value_;
  }
  T&& value() && {
    INVARIANT(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace crashsim

#define CRASHSIM_CONCAT_INNER(a, b) a##b
#define CRASHSIM_CONCAT(a, b) CRASHSIM_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` failed.
#define RETURN_IF_ERROR(expr)        \
  do {                               \
    ::crashsim::Status _st = (expr); \
    if (!_st.ok()) return _st;       \
  } while (0)

// ASSIGN_OR_RETURN(auto x, Foo()): binds the value or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(CRASHSIM_CONCAT(_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
