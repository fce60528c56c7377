#include "mll/feed/parity.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "mll/core/data.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/hash.hpp"
#include "mll/feed/inputs.hpp"
#include "mll/image/preprocess.hpp"

namespace mll::feed {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

const json& field(const json& object, const char* name, const std::string& origin) {
  const auto it = object.find(name);
  if (it == object.end()) MLL_THROW(DataError, origin, ": field '", name, "': missing");
  return *it;
}

std::string string_field(const json& object, const char* name, const std::string& origin) {
  const json& value = field(object, name, origin);
  if (!value.is_string() || value.get<std::string>().empty()) {
    MLL_THROW(DataError, origin, ": field '", name, "': must be a non-empty string");
  }
  return value.get<std::string>();
}

double cosine(const float* a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

// Appends one cosine per row of `mll` against `reference`, naming each input.
void compare(const Matrix& mll, const std::vector<std::vector<float>>& reference,
             const std::vector<std::string>& names, const std::string& model_id,
             zoo::ParityReport& report) {
  for (std::size_t i = 0; i < reference.size(); ++i) {
    if (static_cast<std::size_t>(mll.cols) != reference[i].size()) {
      MLL_THROW(DataError, "model '", model_id, "': the reference embeddings have ",
                reference[i].size(), " values, the model returns ", mll.cols);
    }
    const double c = cosine(mll.row(static_cast<std::int64_t>(i)), reference[i]);
    report.inputs.push_back(names[i]);
    report.cosines.push_back(c);
    if (!(c >= report.worst)) {  // a NaN becomes the worst too
      report.worst = c;
      report.worst_input = names[i];
    }
  }
}

}  // namespace

ParitySet load_parity_set(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name.front() == '.') {
    MLL_THROW(DataError, "'", name, "' is not the name of a parity set");
  }
  ParitySet set;
  set.name = name;
  set.manifest = data_file("reference/" + name + ".json");
  json root;
  try {
    root = json::parse(fs::read_file(set.manifest));
  } catch (const json::exception& e) {
    MLL_THROW(DataError, set.manifest, ": not valid JSON: ", e.what());
  }
  if (!root.is_object()) MLL_THROW(DataError, set.manifest, ": must be a JSON object");
  if (string_field(root, "name", set.manifest) != name) {
    MLL_THROW(DataError, set.manifest, ": field 'name' is not '", name, "'");
  }
  const std::string dir = stdfs::path(set.manifest).parent_path().string();
  const json& images = field(root, "images", set.manifest);
  if (!images.is_array() || images.empty()) {
    MLL_THROW(DataError, set.manifest, ": field 'images': must be a non-empty array");
  }
  for (const json& image : images) {
    if (!image.is_object()) MLL_THROW(DataError, set.manifest, ": field 'images': not objects");
    const std::string file = string_field(image, "file", set.manifest);
    const std::string sha256 = string_field(image, "sha256", set.manifest);
    const std::string path = (stdfs::path(dir) / file).string();
    fs::require_input_file(path, "parity set image");
    if (const std::string actual = sha256_file(path); actual != sha256) {
      MLL_THROW(DataError, path, ": SHA-256 ", actual, " differs from ", sha256, " in ",
                set.manifest, " (reference embeddings hold only for the exact files)");
    }
    set.image_paths.push_back(path);
    set.image_names.push_back(file);
  }
  const json& captions = field(root, "captions", set.manifest);
  if (!captions.is_array() || captions.empty()) {
    MLL_THROW(DataError, set.manifest, ": field 'captions': must be a non-empty array");
  }
  for (const json& caption : captions) {
    if (!caption.is_string()) MLL_THROW(DataError, set.manifest, ": field 'captions': not strings");
    set.captions.push_back(caption.get<std::string>());
  }
  return set;
}

double default_min_cosine(zoo::Precision precision) {
  switch (precision) {
    case zoo::Precision::kFp32:
      return 0.99999;
    case zoo::Precision::kFp16:
      return 0.9999;
    case zoo::Precision::kBf16:
      return 0.999;
  }
  return 0.99999;
}

zoo::ParityReport measure_parity(const zoo::Model& model, double min_cosine) {
  const zoo::ModelSpec& spec = model.spec();
  if (!spec.reference) {
    MLL_THROW(UsageError, "model '", spec.id, "': the sidecar has no reference embeddings");
  }
  const zoo::ParityReference& ref = *spec.reference;
  const ParitySet set = load_parity_set(ref.set);
  if (set.image_paths.size() != ref.image_embeddings.size() ||
      set.captions.size() != ref.text_embeddings.size()) {
    MLL_THROW(DataError, "model '", spec.id, "': the sidecar's reference has ",
              ref.image_embeddings.size(), " image and ", ref.text_embeddings.size(),
              " caption rows, parity set ", set.name, " (", set.manifest, ") has ",
              set.image_paths.size(), " and ", set.captions.size());
  }

  // The exact decode, whatever the run's --fast-decode: the guard checks the export, and the
  // reference was made from exact pixels.
  const image::PreprocessSpec preprocess = preprocess_spec(spec);
  const std::size_t per_image = 3 * static_cast<std::size_t>(preprocess.height) * preprocess.width;
  std::vector<float> pixels(per_image * set.image_paths.size());
  for (std::size_t i = 0; i < set.image_paths.size(); ++i) {
    image::to_normalized_chw(image::load_crop_u8(set.image_paths[i], preprocess), preprocess.mean,
                             preprocess.std, pixels.data() + i * per_image);
  }
  const auto tokenizer = make_tokenizer(spec);
  const std::vector<std::int64_t> ids = tokenizer->encode_batch(set.captions);

  zoo::ParityReport report;
  report.set = set.name;
  report.min_cosine = min_cosine;
  std::vector<std::string> image_inputs, caption_inputs;
  for (const auto& name : set.image_names) image_inputs.push_back("image " + name);
  for (std::size_t i = 0; i < set.captions.size(); ++i) {
    caption_inputs.push_back(cat("caption ", i + 1));
  }
  compare(model.encode_images(pixels.data(), static_cast<int>(set.image_paths.size()),
                              preprocess.height, preprocess.width),
          ref.image_embeddings, image_inputs, spec.id, report);
  compare(model.encode_text(ids.data(), static_cast<int>(set.captions.size()),
                            tokenizer->context_length()),
          ref.text_embeddings, caption_inputs, spec.id, report);
  return report;
}

}  // namespace mll::feed
