#include "mll/image/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "mll/core/error.hpp"
#include "resample.hpp"

namespace mll::image {

ResizeMode parse_resize_mode(const std::string& text) {
  if (text == "shortest") return ResizeMode::kShortest;
  if (text == "squash") return ResizeMode::kSquash;
  if (text == "longest") return ResizeMode::kLongest;
  MLL_THROW(UsageError, "unknown resize mode '", text, "' (expected shortest, squash or longest)");
}

Interpolation parse_interpolation(const std::string& text) {
  if (text == "bicubic") return Interpolation::kBicubic;
  if (text == "bilinear") return Interpolation::kBilinear;
  MLL_THROW(UsageError, "unknown interpolation '", text, "' (expected bicubic or bilinear)");
}

const char* to_string(ResizeMode mode) noexcept {
  switch (mode) {
    case ResizeMode::kShortest:
      return "shortest";
    case ResizeMode::kSquash:
      return "squash";
    case ResizeMode::kLongest:
      return "longest";
  }
  return "?";
}

const char* to_string(Interpolation interpolation) noexcept {
  return interpolation == Interpolation::kBilinear ? "bilinear" : "bicubic";
}

void PreprocessSpec::validate() const {
  if (height <= 0 || width <= 0) {
    MLL_THROW(UsageError, "preprocessing size must be positive, got ", height, "x", width);
  }
  for (float s : std) {
    if (!(s > 0.0f) || !std::isfinite(s)) MLL_THROW(UsageError, "preprocessing std must be > 0");
  }
  for (float m : mean) {
    if (!std::isfinite(m)) MLL_THROW(UsageError, "preprocessing mean must be finite");
  }
  if (fill < 0 || fill > 255) MLL_THROW(UsageError, "fill must be in 0..255, got ", fill);
}

namespace {

// Python's round() on a double: halves go to the even neighbour (the default FP rounding mode).
int round_half_even(double v) { return static_cast<int>(std::nearbyint(v)); }

// open_clip's ResizeKeepRatio: the ratio mixes the two axes' ratios by `longest` (0 or 1 here).
void keep_ratio_size(int w, int h, const PreprocessSpec& spec, double longest, int& out_w,
                     int& out_h) {
  const double ratio_h = static_cast<double>(h) / spec.height;
  const double ratio_w = static_cast<double>(w) / spec.width;
  const double ratio =
      std::max(ratio_h, ratio_w) * longest + std::min(ratio_h, ratio_w) * (1.0 - longest);
  out_h = round_half_even(h / ratio);
  out_w = round_half_even(w / ratio);
}

// torchvision's center_crop along one axis: pad (offset negative) when the crop is larger,
// otherwise the offset is round((size - crop) / 2.0).
int crop_offset(int size, int crop) {
  if (crop > size) return -((crop - size) / 2);
  return round_half_even((size - crop) / 2.0);
}

}  // namespace

CropPlan plan_crop(int source_width, int source_height, const PreprocessSpec& spec) {
  spec.validate();
  if (source_width <= 0 || source_height <= 0) {
    MLL_THROW(DataError, "cannot preprocess an empty image (", source_width, "x", source_height,
              ")");
  }
  CropPlan plan;
  const int w = source_width;
  const int h = source_height;
  switch (spec.resize_mode) {
    case ResizeMode::kShortest:
      if (spec.height == spec.width) {
        // torchvision Resize(int): the short side becomes `size`, the long side
        // int(size * long / short) with a true (double) division and truncation.
        const int size = spec.height;
        const int short_side = std::min(w, h);
        const int long_side = std::max(w, h);
        const int new_long = static_cast<int>(static_cast<double>(std::int64_t{size} * long_side) /
                                              static_cast<double>(short_side));
        plan.resized_width = w <= h ? size : new_long;
        plan.resized_height = w <= h ? new_long : size;
      } else {
        keep_ratio_size(w, h, spec, 0.0, plan.resized_width, plan.resized_height);
      }
      break;
    case ResizeMode::kSquash:
      plan.resized_width = spec.width;
      plan.resized_height = spec.height;
      break;
    case ResizeMode::kLongest:
      keep_ratio_size(w, h, spec, 1.0, plan.resized_width, plan.resized_height);
      break;
  }
  // A sliver of an image can round to zero pixels; Pillow rejects that too.
  if (plan.resized_width <= 0 || plan.resized_height <= 0) {
    MLL_THROW(DataError, "a ", w, "x", h, " image is too thin to resize for a ", spec.width, "x",
              spec.height, " input");
  }
  plan.crop_left = crop_offset(plan.resized_width, spec.width);
  plan.crop_top = crop_offset(plan.resized_height, spec.height);
  return plan;
}

RgbImage resize(const RgbImage& image, int width, int height, Interpolation interpolation) {
  if (width <= 0 || height <= 0) MLL_THROW(UsageError, "resize to ", width, "x", height);
  if (image.empty()) MLL_THROW(DataError, "cannot resize an empty image");
  RgbImage out(width, height);
  const detail::Box box{0.0f, 0.0f, static_cast<float>(image.width()),
                        static_cast<float>(image.height())};
  detail::resample_region(image, box, width, height, interpolation, 0, 0, width, height, out.data(),
                          out.stride());
  return out;
}

namespace {

RgbImage crop_scaled(const RgbImage& image, int source_width, int source_height, int scale_denom,
                     const PreprocessSpec& spec) {
  const CropPlan plan = plan_crop(source_width, source_height, spec);
  // The decoded pixel i covers source pixels [i * d, (i + 1) * d): the source spans
  // source_size / d decoded pixels, a fraction when the size is not a multiple of d.
  const float d = static_cast<float>(scale_denom);
  const detail::Box box{0.0f, 0.0f, static_cast<float>(source_width) / d,
                        static_cast<float>(source_height) / d};
  if (scale_denom < 1 || image.empty() || box.x1 > static_cast<float>(image.width()) ||
      box.y1 > static_cast<float>(image.height())) {
    MLL_THROW(UsageError, "decoded image ", image.width(), "x", image.height(),
              " does not match its source size ", source_width, "x", source_height, " at scale 1/",
              scale_denom);
  }

  RgbImage crop(spec.width, spec.height);
  // Only "longest" uses open_clip's fill; torchvision's CenterCrop always pads with 0.
  const int fill = spec.resize_mode == ResizeMode::kLongest ? spec.fill : 0;
  const int x0 = std::max(plan.crop_left, 0);
  const int y0 = std::max(plan.crop_top, 0);
  const int x1 = std::min(plan.crop_left + spec.width, plan.resized_width);
  const int y1 = std::min(plan.crop_top + spec.height, plan.resized_height);
  if (x1 <= x0 || y1 <= y0) return crop;  // unreachable for centred crops; keeps dst in bounds
  if (fill != 0 && (x1 - x0 != spec.width || y1 - y0 != spec.height)) {
    std::fill(crop.data(), crop.data() + crop.size_bytes(), static_cast<std::uint8_t>(fill));
  }
  std::uint8_t* dst =
      crop.row(y0 - plan.crop_top) + static_cast<std::size_t>(x0 - plan.crop_left) * 3;
  detail::resample_region(image, box, plan.resized_width, plan.resized_height, spec.interpolation,
                          x0, y0, x1, y1, dst, crop.stride());
  return crop;
}

}  // namespace

RgbImage resize_and_crop_u8(const Decoded& decoded, const PreprocessSpec& spec) {
  return crop_scaled(decoded.image, decoded.source_width, decoded.source_height,
                     decoded.scale_denom, spec);
}

RgbImage resize_and_crop_u8(const RgbImage& image, const PreprocessSpec& spec) {
  return crop_scaled(image, image.width(), image.height(), 1, spec);
}

void to_normalized_chw(const RgbImage& crop, const std::array<float, 3>& mean,
                       const std::array<float, 3>& std, float* out) {
  // The float value depends only on (channel, byte): a 3 x 256 table computed with torch's
  // operation order (divide by 255, subtract, divide; float32, no fused multiply-add).
  float lut[3][256];
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      const float unit = static_cast<float>(v) / 255.0f;
      lut[c][v] = (unit - mean[c]) / std[c];
    }
  }
  const std::size_t plane = static_cast<std::size_t>(crop.width()) * crop.height();
  float* r = out;
  float* g = out + plane;
  float* b = out + 2 * plane;
  const std::uint8_t* p = crop.data();
  for (std::size_t i = 0; i < plane; ++i, p += 3) {
    r[i] = lut[0][p[0]];
    g[i] = lut[1][p[1]];
    b[i] = lut[2][p[2]];
  }
}

std::vector<float> to_normalized_chw(const RgbImage& crop, const std::array<float, 3>& mean,
                                     const std::array<float, 3>& std) {
  std::vector<float> out(crop.size_bytes());
  to_normalized_chw(crop, mean, std, out.data());
  return out;
}

std::vector<float> preprocess(const RgbImage& image, const PreprocessSpec& spec) {
  return to_normalized_chw(resize_and_crop_u8(image, spec), spec.mean, spec.std);
}

DecodeOptions decode_options_for(const PreprocessSpec& spec) {
  DecodeOptions options;
  if (spec.fast_jpeg_decode) {
    // Reduce only while both sides stay >= twice the largest side the model sees, whatever the
    // resize mode, so the final antialiased resize still shrinks by at least 2x.
    options.jpeg_min_short_side = 2 * std::max(spec.height, spec.width);
  }
  return options;
}

RgbImage load_crop_u8(const std::string& path, const PreprocessSpec& spec) {
  return resize_and_crop_u8(decode_file(path, decode_options_for(spec)), spec);
}

}  // namespace mll::image
