// Resampling identical to Pillow 9.4's libImaging/Resample.c for 8-bit RGB (bicubic a = -0.5 and
// bilinear). What makes it bit-exact, each of which changes pixels if done otherwise:
//  * the kernel is stretched by the scale when shrinking (antialiasing), with the same double
//    arithmetic for centres, bounds (truncated "+ 0.5" rounding) and weights, normalised to sum 1;
//  * weights become integers with 22 fractional bits, rounded away from zero;
//  * the horizontal pass runs first and rounds to 8 bits; the vertical pass reads those bytes;
//  * accumulators start at one half and results are clamped after an arithmetic shift.
// Output pixels depend only on their own coefficients, so computing just the crop is exact.
// This file is compiled with -ffp-contract=off: a fused multiply-add would change the weights.
#include "resample.hpp"
#include "resample_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "mll/core/error.hpp"

namespace mll::image::detail {
namespace {

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

// Fixed-point weights of outputs [first, last) along one axis.
struct Weights {
  int ksize = 0;
  std::vector<int> start;       // first source index of each output
  std::vector<int> count;       // number of source pixels it reads
  std::vector<std::int32_t> k;  // ksize weights per output

  const std::int32_t* of(int i) const { return k.data() + static_cast<std::size_t>(i) * ksize; }
};

Weights precompute(int in_size, float in0, float in1, int out_size, Interpolation interpolation,
                   int first, int last) {
  double (*filter)(double) = bicubic_filter;
  double filter_support = 2.0;
  if (interpolation == Interpolation::kBilinear) {
    filter = bilinear_filter;
    filter_support = 1.0;
  }
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter_support * filterscale;
  const double ss = 1.0 / filterscale;

  Weights w;
  w.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  const int n = last - first;
  w.start.resize(n);
  w.count.resize(n);
  w.k.assign(static_cast<std::size_t>(n) * w.ksize, 0);
  std::vector<double> kd(w.ksize);
  for (int i = 0; i < n; ++i) {
    const int xx = first + i;
    const double center = in0 + (xx + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double v = filter((x + xmin - center + 0.5) * ss);
      kd[x] = v;
      ww += v;
    }
    std::int32_t* k = w.k.data() + static_cast<std::size_t>(i) * w.ksize;
    for (int x = 0; x < xmax; ++x) {
      double v = kd[x];
      if (ww != 0.0) v /= ww;
      k[x] = v < 0 ? static_cast<std::int32_t>(-0.5 + v * (1 << kPrecisionBits))
                   : static_cast<std::int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    w.start[i] = xmin;
    w.count[i] = xmax;
  }
  return w;
}

// Eight int32 lanes as a plain array, for CPUs without AVX2 (and the test of both builds).
struct Portable {
  struct Acc {
    std::int32_t v[kLanes];
  };
  static Acc start() {
    Acc a;
    for (std::int32_t& x : a.v) x = kHalf;
    return a;
  }
  static void multiply_add(Acc& acc, const std::uint8_t* p, std::int32_t weight) {
    for (int l = 0; l < kLanes; ++l) acc.v[l] += p[l] * weight;
  }
  static void store(const Acc& acc, std::uint8_t* out) {
    for (int l = 0; l < kLanes; ++l) out[l] = shift_and_clamp(acc.v[l]);
  }
};

bool use_avx2(Kernels kernels) {
#if defined(MLL_IMAGE_AVX2_KERNELS)  // x86-64 builds: resample_avx2.cpp is compiled in
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  if (kernels == Kernels::kAvx2 && !has_avx2) {
    MLL_THROW(InternalError, "AVX2 resampling kernels asked for on a CPU without AVX2");
  }
  return kernels == Kernels::kAvx2 || (kernels == Kernels::kBest && has_avx2);
#else
  if (kernels == Kernels::kAvx2)
    MLL_THROW(InternalError, "AVX2 resampling kernels exist only in x86-64 builds");
  return false;
#endif
}

// Buffers of one thread, kept between images: allocating them per image cost page faults on
// every decode thread. They keep their largest size for the thread's life: for a labeling
// crop a few MB at most (rows of the crop's width times the source rows it reads).
struct Scratch {
  std::vector<std::uint8_t> strip;   // one transposed strip of source rows
  std::vector<std::uint8_t> values;  // its horizontal results, kStripValues per output column
  std::vector<std::uint8_t> rows;    // the 8-bit intermediate image
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

Taps taps_of(const Weights& w) { return {w.k.data(), w.ksize, w.start.data(), w.count.data()}; }

// Pixels move between the image and a strip with one 4-byte copy each instead of three bytes:
// the fourth byte read is the next pixel's first (or a spare byte at the end of a buffer), and
// the fourth byte written lands where the copy that follows writes. Three-byte copies cost as
// much as the horizontal multiply-adds themselves. kSpare: bytes past the end of each scratch
// buffer that such a copy may touch.
constexpr std::size_t kSpare = 8;

// Source rows [y, y + strip_rows), columns [col_first, col_last), into `strip`: column x's
// kStripValues bytes are rows 0..7 of that column, RGB each. Rows 0..7 in order, so row r's
// fourth byte is overwritten by row r + 1 (row 7's by the next column's row 0, written later).
void transpose_strip(const RgbImage& in, int y, int strip_rows, int col_first, int col_last,
                     std::uint8_t* strip) {
  // The image's last pixel has no byte after it: copied with three.
  const int wide_last = std::min(col_last, in.width() - 1);
  const std::uint8_t* src_rows[kStrip];
  for (int r = 0; r < strip_rows; ++r) src_rows[r] = in.row(y + r);
  std::uint8_t* dst = strip;
  int x = col_first;
  for (; x < wide_last; ++x, dst += kStripValues) {
    for (int r = 0; r < strip_rows; ++r) std::memcpy(dst + r * 3, src_rows[r] + x * 3, 4);
  }
  for (; x < col_last; ++x, dst += kStripValues) {
    for (int r = 0; r < strip_rows; ++r) std::memcpy(dst + r * 3, src_rows[r] + x * 3, 3);
  }
}

// The horizontal results of a strip (`values`: kStripValues bytes per output column) to its
// `strip_rows` rows of the intermediate, `stride` bytes apart. Pixels left to right, so each
// fourth byte is overwritten next (a row's last by the following row, or lands in the spare).
void untranspose_strip(const std::uint8_t* values, int width, int strip_rows, std::uint8_t* out,
                       std::size_t stride) {
  for (int r = 0; r < strip_rows; ++r, out += stride) {
    const std::uint8_t* column = values + r * 3;
    for (int i = 0; i < width; ++i, column += kStripValues) std::memcpy(out + i * 3, column, 4);
  }
}

// The 8-bit rows that the vertical pass reads: source row r at data + (r - first) * stride.
struct Rows {
  const std::uint8_t* data;
  std::size_t stride;
  int first;
  const std::uint8_t* row(int r) const {
    return data + static_cast<std::size_t>(r - first) * stride;
  }
};

// Horizontal pass of source rows [row_first, row_last) into the thread's scratch, only the
// region's output columns (horiz). Rows go in strips of kStrip, transposed so that one source
// column of the whole strip is contiguous: every tap is then one multiply-add over kStripValues
// adjacent values.
Rows horizontal_pass(const RgbImage& in, const Weights& horiz, int row_first, int row_last,
                     bool avx2) {
  Scratch& s = scratch();
  const Taps taps = taps_of(horiz);
  const int width = static_cast<int>(horiz.start.size());
  const int col_first = horiz.start.front();
  const int col_last = horiz.start.back() + horiz.count.back();
  s.strip.resize(static_cast<std::size_t>(col_last - col_first) * kStripValues + kSpare);
  s.values.resize(static_cast<std::size_t>(width) * kStripValues + kSpare);
  const std::size_t stride = static_cast<std::size_t>(width) * 3;
  s.rows.resize(stride * static_cast<std::size_t>(row_last - row_first) + kSpare);
  for (int y = row_first; y < row_last; y += kStrip) {
    const int strip_rows = std::min(kStrip, row_last - y);
    transpose_strip(in, y, strip_rows, col_first, col_last, s.strip.data());
    if (avx2) {
      horizontal_strip_avx2(taps, col_first, width, s.strip.data(), s.values.data());
    } else {
      horizontal_strip<Portable>(taps, col_first, width, s.strip.data(), s.values.data());
    }
    untranspose_strip(s.values.data(), width, strip_rows, s.rows.data() + (y - row_first) * stride,
                      stride);
  }
  return {s.rows.data(), stride, row_first};
}

// Vertical pass: output row j of the region (vert) sums its taps' rows of `rows`, `values` bytes
// each, in blocks of contiguous values held in registers.
void vertical_pass(Rows rows, const Weights& vert, std::size_t values, std::uint8_t* dst,
                   std::size_t dst_stride, bool avx2) {
  for (std::size_t j = 0; j < vert.start.size(); ++j) {
    const int i = static_cast<int>(j);
    const std::uint8_t* first = rows.row(vert.start[j]);
    std::uint8_t* out = dst + j * dst_stride;
    if (avx2) {
      vertical_row_avx2(vert.of(i), vert.count[i], first, rows.stride, values, out);
    } else {
      vertical_row<Portable>(vert.of(i), vert.count[i], first, rows.stride, values, out);
    }
  }
}

}  // namespace

bool has_avx2_kernels() { return use_avx2(Kernels::kBest); }

void resample_region(const RgbImage& in, Box box, int out_width, int out_height,
                     Interpolation interpolation, int x0, int y0, int x1, int y1, std::uint8_t* dst,
                     std::size_t dst_stride, Kernels kernels) {
  MLL_CHECK(0 <= x0 && x0 <= x1 && x1 <= out_width && 0 <= y0 && y0 <= y1 && y1 <= out_height,
            "resample region outside the output");
  // As Pillow, which rejects a box that is empty or outside the image: the weights' bounds and
  // the scratch sizes assume one inside it.
  MLL_CHECK(0.0f <= box.x0 && box.x0 < box.x1 && box.x1 <= static_cast<float>(in.width()) &&
                0.0f <= box.y0 && box.y0 < box.y1 && box.y1 <= static_cast<float>(in.height()),
            "resample box outside the image");
  if (x0 == x1 || y0 == y1) return;
  const bool avx2 = use_avx2(kernels);

  // Pillow skips a pass whose axis keeps its size and full box; that pass would be the identity.
  const bool need_horizontal =
      out_width != in.width() || box.x0 != 0.0f || box.x1 != static_cast<float>(out_width);
  const bool need_vertical =
      out_height != in.height() || box.y0 != 0.0f || box.y1 != static_cast<float>(out_height);

  Weights vert;
  int row_first = y0;  // the source rows the vertical pass reads
  int row_last = y1;
  if (need_vertical) {
    vert = precompute(in.height(), box.y0, box.y1, out_height, interpolation, y0, y1);
    row_first = vert.start.front();
    row_last = vert.start.back() + vert.count.back();
  }
  // Without a horizontal pass the vertical one reads the region's columns of `in` itself.
  const Rows rows =
      need_horizontal
          ? horizontal_pass(
                in, precompute(in.width(), box.x0, box.x1, out_width, interpolation, x0, x1),
                row_first, row_last, avx2)
          : Rows{in.data() + static_cast<std::size_t>(x0) * 3, in.stride(), 0};

  const std::size_t values = static_cast<std::size_t>(x1 - x0) * 3;
  if (need_vertical) {
    vertical_pass(rows, vert, values, dst, dst_stride, avx2);
  } else {
    for (int y = y0; y < y1; ++y) {
      std::copy_n(rows.row(y), values, dst + (y - y0) * dst_stride);
    }
  }
}

}  // namespace mll::image::detail
