// The parity guard: does mll feed a model exactly what the model's own framework feeds it?
//
// The exporter (tools/export_openclip.py) embeds the inputs of a parity set (3 photos and 5
// captions shipped in data/reference/<set>.json) with the framework's own preprocessing,
// tokenizer and eager towers, and writes the rows into the sidecar (`reference`). Here the same
// inputs go through mll's decoder, preprocessing, tokenizer and runner, and each row's cosine
// with its reference is measured. On real architectures a one-pixel crop shift costs 1e-4 to
// 7e-4 of cosine and float16 storage less than 1e-7, so 0.99999 tells them apart in float32
// (docs/models.md, "The parity guard"). Nothing here is collective; every function is
// thread-safe.
#pragma once

#include <string>
#include <vector>

#include "mll/zoo/check.hpp"
#include "mll/zoo/model_spec.hpp"
#include "mll/zoo/runner.hpp"

namespace mll::feed {

// One parity set: its manifest and the inputs it names.
struct ParitySet {
  std::string name;
  std::string manifest;                  // the manifest file read
  std::vector<std::string> image_paths;  // in manifest order
  std::vector<std::string> image_names;  // file names as in the manifest
  std::vector<std::string> captions;
};

// Reads data/reference/<name>.json from mll's data directory (mll/core/data.hpp) and checks the
// SHA-256 of every image it names. Throws DataError naming the file for an unknown set, a
// malformed manifest or an image whose bytes changed (a reference is only valid for the exact
// inputs it was computed from), IoError when a file cannot be read.
ParitySet load_parity_set(const std::string& name);

// The threshold for a run in `precision` when none is given: 0.99999 in float32. Reduced-precision
// towers lose cosine to rounding alone, so fp16 gets 0.9999 and bf16 0.999 (chosen from their
// machine epsilons, 8x apart; not yet measured on real architectures on a GPU): there the guard
// catches gross mismatches (normalisation, activation, tokenizer), not a one-pixel shift.
double default_min_cosine(zoo::Precision precision);

// Embeds the parity set named by model.spec().reference through mll's pipeline (exact decoding,
// the sidecar's preprocessing and tokenizer) and measures the cosines against the reference.
// A mismatch is reported, not thrown. Throws UsageError when the sidecar has no reference,
// DataError when the set cannot be used or its sizes differ from the reference's (a sidecar made
// for another version of the set), and what the model's encode calls throw.
zoo::ParityReport measure_parity(const zoo::Model& model, double min_cosine);

}  // namespace mll::feed
