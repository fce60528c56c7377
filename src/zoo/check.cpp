#include "mll/zoo/check.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mll/core/error.hpp"
#include "mll/zoo/tokenizer.hpp"

namespace mll::zoo {
namespace {

// Real captions of the kinds labeling feeds, curly quotes and a ligature included, so that the
// model's own tokenizer runs here as it will in `mll label`.
const std::vector<std::string>& check_captions() {
  static const std::vector<std::string> captions = {
      "a photo of a golden retriever.", "it\u2019s a \u201ctabby cat\u201d on a sofa",
      "a close-up photo of the \ufb01sh", "A bad photo of a red fox, 2 of them",
      "itap of my espresso machine"};
  return captions;
}

template <typename F>
double median_ms(int repeats, F&& run) {
  run();  // warm-up: the TorchScript executor optimises on the first calls
  std::vector<double> times;
  for (int i = 0; i < std::max(1, repeats); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::string check_rows(const Matrix& e, int batch, const char* tower) {
  if (e.rows != batch) return cat(tower, " returned ", e.rows, " rows for a batch of ", batch);
  for (std::int64_t r = 0; r < e.rows; ++r) {
    double sum = 0;
    for (std::int64_t c = 0; c < e.cols; ++c) sum += static_cast<double>(e.row(r)[c]) * e.row(r)[c];
    if (std::abs(std::sqrt(sum) - 1.0) > 1e-3) {
      return cat(tower, " row ", r, " has norm ", std::sqrt(sum), " after normalisation");
    }
  }
  return {};
}

}  // namespace

std::string ParityReport::json() const {
  nlohmann::json by_input = nlohmann::json::object();
  for (std::size_t i = 0; i < inputs.size() && i < cosines.size(); ++i) {
    by_input[inputs[i]] = cosines[i];
  }
  return nlohmann::json{{"set", set},
                        {"min_cosine", min_cosine},
                        {"worst", worst},
                        {"worst_input", worst_input},
                        {"cosines", by_input}}
      .dump();
}

std::string ParityReport::message(const std::string& model_id) const {
  std::ostringstream out;
  out << std::fixed << std::setprecision(8) << "model '" << model_id << "': parity "
      << (passed() ? "ok" : "check failed") << ": " << worst_input << " has cosine " << worst
      << (passed() ? " >= " : " < ") << std::setprecision(5) << min_cosine
      << " with the exporter's reference (set " << set << ")";
  if (!passed()) {
    out << ": mll's decoding, preprocessing or tokenizer for this sidecar, or the exported module "
           "itself, differs from the model's framework (docs/models.md, \"The parity guard\")";
  }
  return out.str();
}

CheckReport check_model(const ModelSpec& spec, const CheckOptions& options) {
  CheckReport report;
  report.id = spec.id;
  const int batch = std::max(1, options.batch);
  try {
    const Model model(spec, options.run);
    report.params = model.parameter_count();
    std::mt19937_64 rng(options.seed);
    std::normal_distribution<float> pixel(0.0f, 1.0f);
    const int s = spec.image_size;
    std::vector<float> images(static_cast<std::size_t>(batch) * 3 * s * s);
    for (float& v : images) v = pixel(rng);
    const auto tokenizer = make_model_tokenizer(spec);
    std::vector<std::string> texts;
    for (int b = 0; b < batch; ++b) {
      texts.push_back(check_captions()[static_cast<std::size_t>(b) % check_captions().size()]);
    }
    const std::vector<std::int64_t> ids = tokenizer->encode_batch(texts);

    Matrix image;
    Matrix text;
    report.latency_ms_image = median_ms(
        options.repeats, [&] { image = model.encode_images(images.data(), batch, s, s); });
    report.latency_ms_text = median_ms(options.repeats, [&] {
      text = model.encode_text(ids.data(), batch, spec.tokenizer.context_length);
    });
    report.image_dim = image.cols;
    report.text_dim = text.cols;

    std::string problem = check_rows(image, batch, "encode_image");
    if (problem.empty()) problem = check_rows(text, batch, "encode_text");
    if (problem.empty() && image.cols != text.cols) {
      problem = cat("image width ", image.cols, " differs from text width ", text.cols);
    }
    if (problem.empty() && spec.params != report.params) {
      problem = cat("sidecar says ", spec.params, " parameters, the module has ", report.params);
    }
    report.ok = problem.empty();
    report.message = report.ok ? "ok" : cat("model '", spec.id, "': ", problem);
    if (report.ok && spec.reference && options.parity) {
      report.parity = options.parity(model);
      report.ok = report.parity->passed();
      if (!report.ok) report.message = report.parity->message(spec.id);  // names the model
    }
  } catch (const UsageError&) {
    throw;
  } catch (const DataError& e) {
    report.message = e.what();
  } catch (const IoError& e) {
    report.message = e.what();
  }
  return report;
}

}  // namespace mll::zoo
