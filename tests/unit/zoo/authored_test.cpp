#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "mll/core/error.hpp"
#include "mll/zoo/authored.hpp"
#include "mll/zoo/runner.hpp"
#include "test_paths.hpp"
#include "zoo_test_util.hpp"

namespace mll::zoo {
namespace {

using test::expect_throw_containing;

TEST(ZooAuthored, VitB32CostMatchesOpenClipProfile) {
  AuthoredModelParams p;
  p.kind = "vit-b32";
  const ArchitectureCost c = architecture_cost(p);
  // open_clip's model_profile.csv, ViT-B-32: image 87.85 M params / 8.82 GFLOPs, text 63.43 M /
  // 5.96 GFLOPs (its total adds the logit_scale scalar).
  EXPECT_EQ(c.image_params, 87849216);
  EXPECT_EQ(c.text_params, 63428096);
  EXPECT_NEAR(c.gflops_per_image, 8.82, 0.005);
  EXPECT_NEAR(c.gflops_per_text, 5.96, 0.005);
}

TEST(ZooAuthored, RejectsBadParameters) {
  mll::test::ScratchDir dir;
  AuthoredModelParams p;
  p.kind = "resnet";
  expect_throw_containing<UsageError>([&] { write_authored_model(p, dir.path()); },
                                      {"unknown authored model kind 'resnet'"});
  p.kind = "vit-b32";
  p.image_size = 256;
  EXPECT_THROW(write_authored_model(p, dir.path()), UsageError);
  p = {};
  p.id = "a/b";
  EXPECT_THROW(write_authored_model(p, dir.path()), UsageError);
  p = {};
  p.context_length = 1;
  EXPECT_THROW(write_authored_model(p, dir.path()), UsageError);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(ZooAuthored, ScriptedModuleSourceErrorsAreUsageErrors) {
  mll::test::ScratchDir dir;
  expect_throw_containing<UsageError>(
      [&] {
        write_scripted_module(dir / "x.pt", "def encode_image(self, x: Tensor):\n  retur x\n");
      },
      {"does not compile"});
  EXPECT_THROW(write_scripted_module(dir / "y.pt", "", {{"w", {2, 2}, {1.0f}}}), UsageError);
}

// The realistic model: ViT-B/32 image tower and 12-layer causal text transformer.
TEST(ZooAuthored, VitB32LoadsAndEncodes) {
  mll::test::ScratchDir dir;
  AuthoredModelParams p;
  p.kind = "vit-b32";
  p.id = "vit";
  p.seed = 3;
  const AuthoredModel m = write_authored_model(p, dir.path());
  EXPECT_EQ(m.spec.params, 87849216 + 63428096);
  EXPECT_EQ(m.spec.image_size, 224);
  set_threads(2);
  const Model model(load_sidecar(m.sidecar_path));
  EXPECT_EQ(model.parameter_count(), m.spec.params);

  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  std::vector<float> images(2 * 3 * 224 * 224);
  for (float& v : images) v = dist(rng);
  const Matrix e = model.encode_images(images.data(), 2, 224, 224);
  ASSERT_EQ(e.rows, 2);
  ASSERT_EQ(e.cols, 512);
  double cos = 0;
  for (int c = 0; c < 512; ++c) cos += double(e.row(0)[c]) * e.row(1)[c];
  EXPECT_LT(cos, 0.999);  // different images, different embeddings

  // Two rows equal up to the end-of-text token, different after it: the causal mask and EOT
  // pooling make the padding irrelevant.
  std::vector<std::int64_t> ids(2 * 77, 0);
  for (int b = 0; b < 2; ++b) {
    ids[b * 77 + 0] = 49406;
    ids[b * 77 + 1] = 320;
    ids[b * 77 + 2] = 1929;
    ids[b * 77 + 3] = 49407;
  }
  ids[77 + 10] = 555;
  const Matrix t = model.encode_text(ids.data(), 2, 77);
  ASSERT_EQ(t.cols, 512);
  for (int c = 0; c < 512; ++c) EXPECT_NEAR(t.row(0)[c], t.row(1)[c], 1e-5);
  set_threads(1);
}

}  // namespace
}  // namespace mll::zoo
