// Debugging commands for a misbehaving model: mll tokenize, mll preprocess.
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>

#include "command.hpp"
#include "mll/archive/image_ref.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/feed/inputs.hpp"
#include "mll/image/image.hpp"
#include "mll/image/preprocess.hpp"
#include "mll/tokenize/tokenizer.hpp"
#include "mll/zoo/model_spec.hpp"

namespace mll::cli {
namespace {

void tokenize_options(po::options_description& d, po::positional_options_description&) {
  d.add_options()("tokenizer",
                  po::value<std::string>()->default_value("clip-bpe")->value_name("KIND"),
                  "clip-bpe, gpt2-bpe or sentencepiece")(
      "vocab", po::value<std::string>()->value_name("FILE"),
      "vocabulary / model file (defaults: mll's CLIP merges for clip-bpe, GPT-2's "
      "encoder.json for gpt2-bpe)")("merges", po::value<std::string>()->value_name("FILE"),
                                    "gpt2-bpe: the merges file (default: GPT-2's vocab.bpe)")(
      "context-length", po::value<int>()->value_name("N"),
      "pad and truncate to N tokens as open_clip does (default: unpadded sot ... eot)");
}

int tokenize_run(const po::variables_map& vm, distributed::Session& session) {
  tokenize::TokenizerSpec spec;
  spec.kind = vm["tokenizer"].as<std::string>();
  if (vm.count("vocab")) spec.vocab_path = vm["vocab"].as<std::string>();
  if (vm.count("merges")) spec.merges_path = vm["merges"].as<std::string>();
  const bool padded = vm.count("context-length") != 0;
  if (padded) {
    spec.context_length = vm["context-length"].as<int>();
    if (spec.context_length < 2) MLL_THROW(UsageError, "--context-length must be >= 2");
  }
  const auto tokenizer = tokenize::make_tokenizer(spec);
  std::string line;
  std::size_t number = 0;
  while (std::getline(std::cin, line)) {
    ++number;
    nlohmann::json text;
    try {
      text = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      MLL_THROW(DataError, "stdin:", number, ": not a JSON string (write each text as \"...\")");
    }
    if (!text.is_string()) MLL_THROW(DataError, "stdin:", number, ": expected a JSON string");
    const auto ids = padded ? tokenizer->encode_padded(text.get<std::string>())
                            : tokenizer->encode(text.get<std::string>());
    for (std::size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
  return 0;
}

void preprocess_options(po::options_description& d, po::positional_options_description& p) {
  d.add_options()("image", po::value<std::string>()->required()->value_name("FILE"),
                  "JPEG or PNG image")(
      "sidecar", po::value<std::string>()->required()->value_name("FILE"),
      "model sidecar JSON: image size, resize mode, interpolation, mean/std")(
      "out,o", po::value<std::string>()->required()->value_name("FILE"),
      "output: raw little-endian float32, C x H x W")("force", po::bool_switch(),
                                                      "overwrite an existing output");
  p.add("image", 1);
}

int preprocess_run(const po::variables_map& vm, distributed::Session& session) {
  const std::string out = vm["out"].as<std::string>();
  fs::check_output_path(out, vm["force"].as<bool>());
  const auto spec = feed::preprocess_spec(zoo::load_sidecar(vm["sidecar"].as<std::string>()));
  // A file, or a shard member as probe sets and reports name it (SHARD.tar:OFFSET:MEMBER).
  const std::string image = vm["image"].as<std::string>();
  const auto tensor =
      image::preprocess(image::decode_memory(archive::read_image_bytes(image), image), spec);
  static_assert(sizeof(float) == 4);
  fs::AtomicOutput output(out);
  {
    std::ofstream file(output.temp_path(), std::ios::binary);
    // x86-64 and aarch64 are little-endian, which is what the format promises.
    file.write(reinterpret_cast<const char*>(tensor.data()),
               static_cast<std::streamsize>(tensor.size() * sizeof(float)));
    if (!file) MLL_THROW(IoError, out, ": write failed");
  }
  output.commit();
  std::cout << "wrote " << out << ": 3 x " << spec.height << " x " << spec.width << " float32\n";
  return 0;
}

}  // namespace

void add_debug_commands(std::vector<Command>& commands) {
  commands.push_back({"tokenize", "print token ids of JSON strings read from stdin, one per line",
                      "[--tokenizer KIND] [--context-length N] < texts.jsonl", tokenize_options,
                      tokenize_run});
  commands.back().example = "echo '\"a photo of a dog\"' | mll tokenize --context-length 77";
  commands.push_back({"preprocess", "write the model input tensor of one image",
                      "IMAGE --sidecar FILE --out X.f32", preprocess_options, preprocess_run});
  commands.back().example =
      "mll preprocess photo.jpg --sidecar models/vit-b-32.json --out photo.f32";
}

}  // namespace mll::cli
