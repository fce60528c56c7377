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

#include <algorithm>
#include <cmath>
#include <vector>

#include "mll/core/error.hpp"

namespace mll::image::detail {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

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

inline std::uint8_t clip8(std::int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

// Both passes are integer loops that vectorise; an AVX2 clone (chosen at load time, with the
// baseline kept for older CPUs) has a native 32-bit multiply, which SSE2 lacks.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void resample_region(const RgbImage& in, Box box, int out_width, int out_height,
                     Interpolation interpolation, int x0, int y0, int x1, int y1, std::uint8_t* dst,
                     std::size_t dst_stride) {
  MLL_CHECK(0 <= x0 && x0 <= x1 && x1 <= out_width && 0 <= y0 && y0 <= y1 && y1 <= out_height,
            "resample region outside the output");
  if (x0 == x1 || y0 == y1) return;
  const int region_width = x1 - x0;

  // Pillow skips a pass whose axis keeps its size and full box; that pass would be the identity.
  const bool need_horizontal =
      out_width != in.width() || box.x0 != 0.0f || box.x1 != static_cast<float>(out_width);
  const bool need_vertical =
      out_height != in.height() || box.y0 != 0.0f || box.y1 != static_cast<float>(out_height);

  Weights vert;
  int row_first = y0;  // first source row the vertical pass reads
  int row_last = y1;
  if (need_vertical) {
    vert = precompute(in.height(), box.y0, box.y1, out_height, interpolation, y0, y1);
    row_first = vert.start.front();
    row_last = vert.start.back() + vert.count.back();
  }

  // Horizontal pass into 8-bit rows [row_first, row_last), only the region's columns. Rows are
  // processed in strips of kStrip, transposed so that one source column of the whole strip is
  // contiguous: every tap is then one multiply-add over kStrip * 3 adjacent values, which the
  // compiler vectorises (integer arithmetic, so the order of evaluation cannot change results).
  std::vector<std::uint8_t> temp;
  const std::uint8_t* rows =
      nullptr;  // row r of the intermediate is rows + (r - row_first) * stride
  std::size_t rows_stride = 0;
  if (need_horizontal) {
    constexpr int kStrip = 8;
    constexpr int kLanes = kStrip * 3;
    const Weights horiz = precompute(in.width(), box.x0, box.x1, out_width, interpolation, x0, x1);
    const int col_first = horiz.start.front();
    const int col_last = horiz.start.back() + horiz.count.back();
    std::vector<std::uint8_t> strip(static_cast<std::size_t>(col_last - col_first) * kLanes, 0);
    rows_stride = static_cast<std::size_t>(region_width) * 3;
    temp.resize(rows_stride * static_cast<std::size_t>(row_last - row_first));
    for (int y = row_first; y < row_last; y += kStrip) {
      const int strip_rows = std::min(kStrip, row_last - y);
      for (int r = 0; r < strip_rows; ++r) {
        const std::uint8_t* src = in.row(y + r) + static_cast<std::size_t>(col_first) * 3;
        std::uint8_t* dst_col = strip.data() + r * 3;
        for (int x = col_first; x < col_last; ++x, src += 3, dst_col += kLanes) {
          dst_col[0] = src[0];
          dst_col[1] = src[1];
          dst_col[2] = src[2];
        }
      }
      std::uint8_t* out = temp.data() + (y - row_first) * rows_stride;
      for (int i = 0; i < region_width; ++i) {
        const std::int32_t* k = horiz.of(i);
        const std::uint8_t* p =
            strip.data() + static_cast<std::size_t>(horiz.start[i] - col_first) * kLanes;
        std::int32_t acc[kLanes];
        for (int v = 0; v < kLanes; ++v) acc[v] = 1 << (kPrecisionBits - 1);
        for (int t = 0, n = horiz.count[i]; t < n; ++t, p += kLanes) {
          const std::int32_t kt = k[t];
          for (int v = 0; v < kLanes; ++v) acc[v] += p[v] * kt;
        }
        for (int r = 0; r < strip_rows; ++r) {
          std::uint8_t* o = out + r * rows_stride + static_cast<std::size_t>(i) * 3;
          o[0] = clip8(acc[r * 3]);
          o[1] = clip8(acc[r * 3 + 1]);
          o[2] = clip8(acc[r * 3 + 2]);
        }
      }
    }
    rows = temp.data();
  } else {
    rows_stride = in.stride();
    rows = in.row(row_first) + static_cast<std::size_t>(x0) * 3;
  }

  const std::size_t values = static_cast<std::size_t>(region_width) * 3;
  if (!need_vertical) {
    for (int y = y0; y < y1; ++y) {
      std::copy_n(rows + (y - row_first) * rows_stride, values, dst + (y - y0) * dst_stride);
    }
    return;
  }
  // Vertical pass, taps outermost so the inner loop runs over contiguous bytes (vectorisable);
  // integer sums do not depend on the order of the taps.
  std::vector<std::int32_t> acc(values);
  for (int j = 0; j < y1 - y0; ++j) {
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    const std::int32_t* k = vert.of(j);
    const int first = vert.start[j] - row_first;
    for (int t = 0, n = vert.count[j]; t < n; ++t) {
      const std::uint8_t* src = rows + static_cast<std::size_t>(first + t) * rows_stride;
      const std::int32_t kt = k[t];
      for (std::size_t v = 0; v < values; ++v) acc[v] += src[v] * kt;
    }
    std::uint8_t* out = dst + j * dst_stride;
    for (std::size_t v = 0; v < values; ++v) out[v] = clip8(acc[v]);
  }
}

}  // namespace mll::image::detail
