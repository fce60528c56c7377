// mll zoo add | list | check | synth, mll tokenize, mll preprocess, and embedding parity of our
// preprocessing with PIL/torchvision's on real photos.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "mll/feed/inputs.hpp"
#include "mll/image/image.hpp"
#include "mll/image/preprocess.hpp"
#include "mll/zoo/authored.hpp"
#include "mll/zoo/model_spec.hpp"
#include "mll/zoo/runner.hpp"
#include "run_command.hpp"

namespace mll::test {
namespace {

TEST(ZooCli, SynthAddListCheck) {
  ScratchDir dir;
  const std::string zoo = dir / "zoo.json";
  auto r = run_mll("zoo synth --kind small --seed 3 --out " + (dir / "m") + " --zoo " + zoo, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir / "m/small-s3.pt"));
  r = run_mll("zoo synth --kind small --seed 4 --dim 32 --id other --out " + (dir / "m"), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_mll("zoo add " + (dir / "m/other.json") + " --zoo " + zoo, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_mll("zoo add " + (dir / "m/other.json") + " --zoo " + zoo, dir);
  EXPECT_EQ(r.exit_code, 65) << r.err;  // duplicate id
  r = run_mll("zoo list --zoo " + zoo, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("small-s3"), std::string::npos);
  EXPECT_NE(r.out.find("other"), std::string::npos);
  r = run_mll("zoo check --device cpu --threads 1 --zoo " + zoo, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  // One row per model: id, embedding width, parameters, latencies, status.
  EXPECT_NE(r.out.find("small-s3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    32"), std::string::npos) << r.out;  // the dim-32 model
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;
  EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FAILED"), std::string::npos) << r.out;

  // A model file that is not TorchScript fails the check, naming the file; the exit is 65.
  auto spec = zoo::load_sidecar(dir / "m/other.json");
  spec.id = "broken";
  spec.model_file = "broken.pt";
  std::ofstream(dir / "m/broken.pt") << "not a model";
  zoo::save_sidecar(spec, dir / "m/broken.json");
  ASSERT_EQ(run_mll("zoo add " + (dir / "m/broken.json") + " --zoo " + zoo, dir).exit_code, 0);
  r = run_mll("zoo check --device cpu --zoo " + zoo, dir);
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.out.find("FAILED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("broken.pt"), std::string::npos) << r.out;
  r = run_mll("zoo check --device cpu --models nope --zoo " + zoo, dir);
  EXPECT_EQ(r.exit_code, 64) << r.err;
  r = run_mll("zoo synth --kind huge --out " + (dir / "m"), dir);
  EXPECT_EQ(r.exit_code, 64);
}

TEST(ZooCli, TokenizeMatchesPublishedIds) {
  ScratchDir dir;
  std::ofstream(dir / "texts.jsonl") << "\"a photo of a cat\"\n\"the black dog\"\n";
  auto r = run_command(mll_exe() + " tokenize < " + (dir / "texts.jsonl"), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "49406 320 1125 539 320 2368 49407\n49406 518 1449 1929 49407\n");
  r = run_command(mll_exe() + " tokenize --context-length 8 < " + (dir / "texts.jsonl"), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "49406 320 1125 539 320 2368 49407 0\n49406 518 1449 1929 49407 0 0 0\n");
  r = run_command(mll_exe() + " tokenize --context-length 4 < " + (dir / "texts.jsonl"), dir);
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "49406 320 1125 49407");  // truncated, eot last
  std::ofstream(dir / "bad.jsonl") << "\"ok\"\nnot json\n";
  r = run_command(mll_exe() + " tokenize < " + (dir / "bad.jsonl"), dir);
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("stdin:2"), std::string::npos) << r.err;
  r = run_command(mll_exe() + " tokenize --tokenizer morse < " + (dir / "texts.jsonl"), dir);
  EXPECT_EQ(r.exit_code, 64) << r.err;
}

// libsentencepiece and libtorch share a process only through the DEEPBIND shim; the mll binary
// holds both.
TEST(ZooCli, SentencePieceWorksInsideTheBinaryThatHoldsLibtorch) {
  ScratchDir dir;
  std::ofstream(dir / "texts.jsonl") << "\"the lazy fox\"\n";
  const std::string model = source_dir() + "/tests/data/tokenize/tiny_sentencepiece.model";
  const auto r = run_command(mll_exe() + " tokenize --tokenizer sentencepiece --vocab " + model +
                                 " < " + (dir / "texts.jsonl"),
                             dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("0 ", 0), 0u) << r.out;                // <s>
  EXPECT_EQ(r.out.substr(r.out.size() - 3), " 2\n") << r.out;  // </s>
  EXPECT_GT(std::count(r.out.begin(), r.out.end(), ' '), 2) << r.out;
}

TEST(ZooCli, PreprocessWritesTheModelInput) {
  ScratchDir dir;
  zoo::AuthoredModelParams params;
  params.id = "p";
  params.image_size = 48;
  const auto model = zoo::write_authored_model(params, dir.path());
  const std::string photo = source_dir() + "/tests/data/image/chelsea.jpg";
  auto r = run_mll(
      "preprocess " + photo + " --sidecar " + model.sidecar_path + " --out " + (dir / "x.f32"),
      dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string bytes = slurp(dir / "x.f32");
  const auto expected =
      image::preprocess(image::decode_file(photo), feed::preprocess_spec(model.spec));
  ASSERT_EQ(bytes.size(), expected.size() * sizeof(float));
  EXPECT_EQ(std::memcmp(bytes.data(), expected.data(), bytes.size()), 0);
  r = run_mll(
      "preprocess " + photo + " --sidecar " + model.sidecar_path + " --out " + (dir / "x.f32"),
      dir);
  EXPECT_EQ(r.exit_code, 64);  // exists
  std::ofstream(dir / "empty.jpg");
  r = run_mll("preprocess " + (dir / "empty.jpg") + " --sidecar " + model.sidecar_path + " --out " +
                  (dir / "y.f32"),
              dir);
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("empty.jpg"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "y.f32"));
}

// Our preprocessing against torchvision's crops (stored losslessly as PNG by
// tools/make_preprocess_reference.py), through a ViT-B/32-shaped model.
TEST(Parity, EmbeddingsOfOurTensorsMatchTorchvisionOnRealPhotos) {
  ScratchDir dir;
  zoo::AuthoredModelParams params;
  params.kind = "vit-b32";
  params.id = "vit";
  const auto authored = zoo::write_authored_model(params, dir.path());
  zoo::Model model(authored.spec);
  const auto spec = feed::preprocess_spec(authored.spec);
  const std::string data = source_dir() + "/tests/data/image/";
  int photos = 0;
  for (const char* name : {"astronaut", "chelsea", "coffee", "hubble", "motorcycle", "rocket"}) {
    const auto ours = image::preprocess(image::decode_file(data + name + ".jpg"), spec);
    const auto crop = image::decode_file(data + "crop_" + name + "_224x224_shortest_bicubic.png");
    const auto theirs = image::to_normalized_chw(crop, spec.mean, spec.std);
    const auto a = model.encode_images(ours.data(), 1, 224, 224);
    const auto b = model.encode_images(theirs.data(), 1, 224, 224);
    double dot = 0;
    for (std::int64_t k = 0; k < a.cols; ++k) dot += double(a.values[k]) * double(b.values[k]);
    EXPECT_GE(dot, 0.999) << name;
    ++photos;
  }
  EXPECT_GE(photos, 5);
}

}  // namespace
}  // namespace mll::test
