#include "mll/feed/inputs.hpp"

#include <sstream>

#include "mll/core/error.hpp"
#include "mll/zoo/tokenizer.hpp"

namespace mll::feed {

image::PreprocessSpec preprocess_spec(const zoo::ModelSpec& spec) {
  try {
    image::PreprocessSpec out = image::PreprocessSpec::square(spec.image_size);
    out.resize_mode = image::parse_resize_mode(spec.resize_mode);
    out.interpolation = image::parse_interpolation(spec.interpolation);
    out.mean = spec.mean;
    out.std = spec.stddev;
    out.validate();
    return out;
  } catch (const Error& e) {
    MLL_THROW(DataError, "model '", spec.id, "': ", e.what());
  }
}

std::unique_ptr<tokenize::Tokenizer> make_tokenizer(const zoo::ModelSpec& spec) {
  return zoo::make_model_tokenizer(spec);
}

std::string preprocess_key(const image::PreprocessSpec& spec) {
  std::ostringstream key;
  key.precision(9);
  key << spec.height << "x" << spec.width << " " << image::to_string(spec.resize_mode) << " "
      << image::to_string(spec.interpolation) << " fill=" << spec.fill
      << (spec.fast_jpeg_decode ? " fast" : "") << " mean=" << spec.mean[0] << "," << spec.mean[1]
      << "," << spec.mean[2] << " std=" << spec.std[0] << "," << spec.std[1] << "," << spec.std[2];
  return key.str();
}

}  // namespace mll::feed
