// Pillow-compatible two-pass resampling of a rectangle of the output (private to src/image).
#pragma once

#include <cstddef>
#include <cstdint>

#include "mll/image/image.hpp"
#include "mll/image/preprocess.hpp"

namespace mll::image::detail {

// The source rectangle that is scaled onto the whole output, in source pixels (Pillow's `box`,
// float as in Pillow's C API).
struct Box {
  float x0, y0, x1, y1;
};

// Which build of the inner loops runs: the best this CPU has (AVX2 on x86-64 CPUs that have
// it), or one named (tests compare them; asking for AVX2 where it is missing throws).
enum class Kernels { kBest, kPortable, kAvx2 };

// Whether kBest means AVX2 on this CPU.
bool has_avx2_kernels();

// Computes the output pixels [x0, x1) x [y0, y1) of resizing box of `in` to out_width x out_height,
// exactly as Pillow 9.4's ImagingResample does for the whole image, and writes them to `dst`
// (rows of (x1 - x0) RGB pixels, `dst_stride` bytes apart). Every build of the kernels gives
// the same bytes. Thread-safe: scratch buffers are per thread.
void resample_region(const RgbImage& in, Box box, int out_width, int out_height,
                     Interpolation interpolation, int x0, int y0, int x1, int y1, std::uint8_t* dst,
                     std::size_t dst_stride, Kernels kernels = Kernels::kBest);

}  // namespace mll::image::detail
