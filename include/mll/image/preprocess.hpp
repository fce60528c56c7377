// CLIP-style preprocessing, bit-exact with open_clip's eval transform on Pillow 9.4 and
// torchvision 0.14: Resize (Pillow's antialiased fixed-point resampling) -> CenterCrop -> ToTensor
// -> Normalize. docs/preprocessing.md describes the algorithm and the evidence.
//
// The work is split at the uint8 crop, which is what a preprocessing cache stores:
// resize_and_crop_u8() produces it and to_normalized_chw() turns it into the model input; the two
// together equal preprocess(). Nothing here is collective; every function is thread-safe.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "mll/image/image.hpp"

namespace mll::image {

// open_clip's resize_mode values.
enum class ResizeMode {
  kShortest,  // scale the shorter side to the target, then center-crop (the default)
  kSquash,    // scale to exactly the target size, ignoring the aspect ratio
  kLongest,   // scale the longer side to the target, then pad (with `fill`) to the target size
};

enum class Interpolation { kBicubic, kBilinear };

// Parse the sidecar spellings ("shortest", "squash", "longest"; "bicubic", "bilinear").
// Throw UsageError naming the accepted values.
ResizeMode parse_resize_mode(const std::string& text);
Interpolation parse_interpolation(const std::string& text);
const char* to_string(ResizeMode mode) noexcept;
const char* to_string(Interpolation interpolation) noexcept;

// OpenAI CLIP's normalisation, open_clip's default.
inline constexpr std::array<float, 3> kClipMean = {0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr std::array<float, 3> kClipStd = {0.26862954f, 0.26130258f, 0.27577711f};

struct PreprocessSpec {
  int height = 224;  // the model input size; an int image_size means height == width
  int width = 224;
  ResizeMode resize_mode = ResizeMode::kShortest;
  Interpolation interpolation = Interpolation::kBicubic;
  // Stored as float32 because torchvision's Normalize converts them to the tensor's dtype first.
  std::array<float, 3> mean = kClipMean;
  std::array<float, 3> std = kClipStd;
  int fill = 0;  // padding value of the "longest" mode (open_clip's fill_color)
  // Allows JPEG DCT-domain downscaling when the photo is >= 2x the target: faster, not exact.
  bool fast_jpeg_decode = false;

  static PreprocessSpec square(int size) {
    PreprocessSpec spec;
    spec.height = spec.width = size;
    return spec;
  }
  // Throws UsageError for non-positive sizes or std entries, or fill outside 0..255.
  void validate() const;
};

// Where the crop lies: the resized image is resized_width x resized_height; output pixel (x, y)
// is resized pixel (x + crop_left, y + crop_top), or `fill` where that is outside (only "longest"
// and images smaller than the crop pad, exactly as torchvision's CenterCrop does).
struct CropPlan {
  int resized_width = 0;
  int resized_height = 0;
  int crop_left = 0;
  int crop_top = 0;
};

// The geometry torchvision/open_clip compute for a source_width x source_height image (Resize's
// int(size * long / short), ResizeKeepRatio's round(), CenterCrop's round-half-to-even offsets).
// Throws UsageError for an invalid spec, DataError for an empty source.
CropPlan plan_crop(int source_width, int source_height, const PreprocessSpec& spec);

// Pillow 9.4's Image.resize((width, height), BICUBIC or BILINEAR) with reducing_gap=None:
// antialiased when shrinking, fixed-point weights, horizontal pass into an 8-bit intermediate,
// then vertical. Throws UsageError for non-positive sizes.
RgbImage resize(const RgbImage& image, int width, int height, Interpolation interpolation);

// Resize + center crop (or pad) to spec.width x spec.height, as uint8 HWC. Only the pixels inside
// the crop are computed, which gives the same values as resizing everything and cropping.
RgbImage resize_and_crop_u8(const RgbImage& image, const PreprocessSpec& spec);
// The same for a possibly reduced-scale decode: the geometry comes from the source size and the
// resampling box is scaled to the decoded image, so the framing matches the exact path.
RgbImage resize_and_crop_u8(const Decoded& decoded, const PreprocessSpec& spec);

// ToTensor + Normalize: out[c][y][x] = (float(v) / 255 - mean[c]) / std[c] in float32, one rounding
// per operation as torch does. Returns 3 * height * width floats, channel-major.
std::vector<float> to_normalized_chw(const RgbImage& crop, const std::array<float, 3>& mean,
                                     const std::array<float, 3>& std);
// Writes into `out` (3 * crop.height() * crop.width() floats), e.g. one slot of a batch buffer.
void to_normalized_chw(const RgbImage& crop, const std::array<float, 3>& mean,
                       const std::array<float, 3>& std, float* out);

// resize_and_crop_u8 followed by to_normalized_chw: the model input, 3 x spec.height x spec.width.
std::vector<float> preprocess(const RgbImage& image, const PreprocessSpec& spec);

// The decode options a spec asks for (a reduced-scale JPEG decode when fast_jpeg_decode is set).
DecodeOptions decode_options_for(const PreprocessSpec& spec);

// decode_file with decode_options_for(spec) + resize_and_crop_u8. Throws as decode_file does.
RgbImage load_crop_u8(const std::string& path, const PreprocessSpec& spec);

}  // namespace mll::image
