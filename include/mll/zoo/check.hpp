// `mll zoo check`: does a model honour the runner's contract?
// Not collective.
#pragma once

#include <cstdint>
#include <string>

#include "mll/zoo/model_spec.hpp"
#include "mll/zoo/runner.hpp"

namespace mll::zoo {

struct CheckReport {
  std::string id;
  std::int64_t image_dim = 0;
  std::int64_t text_dim = 0;
  std::int64_t params = 0;        // counted in the loaded module (the sidecar's value may differ)
  double latency_ms_image = 0.0;  // median per batch of CheckOptions::batch
  double latency_ms_text = 0.0;
  bool ok = false;
  std::string message;  // "ok", or what is wrong (one line naming the model)
};

struct CheckOptions {
  RunOptions run;
  int batch = 2;
  int repeats = 3;  // timed runs after one warm-up run
  std::uint64_t seed = 0;
};

// Builds the sidecar's tokenizer (make_model_tokenizer) and loads the model, runs `batch` random
// images and real captions tokenized by that tokenizer through both towers,
// verifies shapes, finiteness, equal widths (and the sidecar's embed_dim), unit norms after the
// runner's normalisation, and that the sidecar's params matches the module's. Problems with the
// model (DataError, IoError) are reported in the result, not thrown; throws UsageError when the
// device is unavailable.
CheckReport check_model(const ModelSpec& spec, const CheckOptions& options = {});

}  // namespace mll::zoo
