// Checked int64 arithmetic for sizes computed from caller-supplied numbers (widths, strides,
// counts, offsets): an overflow is a std::range_error naming what was being computed, which the
// binding turns into a JS RangeError. A wrapped size would pass a buffer check and let a kernel
// read or write far past the buffer; every size product or sum of caller numbers goes through here.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fqa {

inline int64_t checkedMul(int64_t a, int64_t b, const char* what) {
  int64_t out;
  if (__builtin_mul_overflow(a, b, &out))
    throw std::range_error(std::string(what) + " overflows a 64-bit integer (" + std::to_string(a) + " * " + std::to_string(b) + ")");
  return out;
}

inline int64_t checkedAdd(int64_t a, int64_t b, const char* what) {
  int64_t out;
  if (__builtin_add_overflow(a, b, &out))
    throw std::range_error(std::string(what) + " overflows a 64-bit integer (" + std::to_string(a) + " + " + std::to_string(b) + ")");
  return out;
}

// a * b * c * ..., each step checked.
template <typename... Rest>
int64_t checkedProduct(const char* what, int64_t a, Rest... rest) {
  ((a = checkedMul(a, int64_t(rest), what)), ...);
  return a;
}

}  // namespace fqa
