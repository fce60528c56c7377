// `mll zoo check`: does a model honour the runner's contract?
// Not collective.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mll/zoo/model_spec.hpp"
#include "mll/zoo/runner.hpp"

namespace mll::zoo {

// The parity guard's measurement of one model (mll/feed/parity.hpp): the cosine of each reference
// input's embedding through mll with the one the exporter computed in the model's framework.
struct ParityReport {
  std::string set;                  // the parity set, e.g. "parity-1"
  double min_cosine = 0.99999;      // the threshold applied
  std::vector<std::string> inputs;  // "image astronaut.jpg", "caption 2", ... (row order)
  std::vector<double> cosines;      // one per input
  double worst = 1.0;               // the smallest cosine
  std::string worst_input;          // its input
  bool passed() const noexcept { return worst >= min_cosine; }
  // {"set", "min_cosine", "worst", "worst_input", "cosines": {input: cosine}} (provenance).
  std::string json() const;
  // One line naming the model, the input, its cosine and the threshold; for a failed check, what
  // usually causes it.
  std::string message(const std::string& model_id) const;
};

struct CheckReport {
  std::string id;
  std::int64_t image_dim = 0;
  std::int64_t text_dim = 0;
  std::int64_t params = 0;        // counted in the loaded module (the sidecar's value may differ)
  double latency_ms_image = 0.0;  // median per batch of CheckOptions::batch
  double latency_ms_text = 0.0;
  bool ok = false;
  std::string message;  // "ok", or what is wrong (one line naming the model)
  // Filled when CheckOptions::parity ran (the sidecar has reference embeddings).
  std::optional<ParityReport> parity;
};

struct CheckOptions {
  RunOptions run;
  int batch = 2;
  int repeats = 3;  // timed runs after one warm-up run
  std::uint64_t seed = 0;
  // Called with the loaded model after the contract checks passed, for a sidecar with reference
  // embeddings: the parity guard (feed::measure_parity), which needs the image pipeline this
  // module does not link. A report that did not pass fails the check with its message.
  std::function<ParityReport(const Model&)> parity;
};

// Builds the sidecar's tokenizer (make_model_tokenizer) and loads the model, runs `batch` random
// images and real captions tokenized by that tokenizer through both towers,
// verifies shapes, finiteness, equal widths (and the sidecar's embed_dim), unit norms after the
// runner's normalisation, that the sidecar's params matches the module's, and then runs
// options.parity when the sidecar has a reference. Problems with the
// model (DataError, IoError) are reported in the result, not thrown; throws UsageError when the
// device is unavailable.
CheckReport check_model(const ModelSpec& spec, const CheckOptions& options = {});

}  // namespace mll::zoo
