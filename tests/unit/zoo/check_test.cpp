#include <gtest/gtest.h>

#include "mll/core/error.hpp"
#include "mll/zoo/authored.hpp"
#include "mll/zoo/check.hpp"
#include "test_paths.hpp"

namespace mll::zoo {
namespace {

AuthoredModel small(const mll::test::ScratchDir& dir, const std::string& id) {
  AuthoredModelParams p;
  p.id = id;
  p.embed_dim = 24;
  p.image_size = 48;
  return write_authored_model(p, dir.path());
}

TEST(ZooCheck, AHealthyModelPasses) {
  mll::test::ScratchDir dir;
  const AuthoredModel m = small(dir, "ok-model");
  const CheckReport r = check_model(m.spec);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.message, "ok");
  EXPECT_EQ(r.id, "ok-model");
  EXPECT_EQ(r.image_dim, 24);
  EXPECT_EQ(r.text_dim, 24);
  EXPECT_EQ(r.params, m.spec.params);
  EXPECT_GT(r.latency_ms_image, 0.0);
  EXPECT_GT(r.latency_ms_text, 0.0);
}

TEST(ZooCheck, ProblemsAreReportedNotThrown) {
  mll::test::ScratchDir dir;
  write_scripted_module(dir / "nan.pt", R"(
def encode_image(self, x: Tensor) -> Tensor:
    return x.flatten(1)[:, :4] / 0.0 * 0.0

def encode_text(self, t: Tensor) -> Tensor:
    return t.float()[:, :4] + 1.0
)");
  ModelSpec spec;
  spec.id = "nan-model";
  spec.model_file = "nan.pt";
  spec.base_dir = dir.path();
  spec.image_size = 8;
  spec.params = 1;
  spec.gflops_per_image = 1;
  CheckReport r = check_model(spec);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("nan-model"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("NaN"), std::string::npos) << r.message;

  spec.model_file = "missing.pt";
  r = check_model(spec);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("missing.pt"), std::string::npos) << r.message;

  ModelSpec wrong_params = small(dir, "counted").spec;
  wrong_params.params += 1;
  r = check_model(wrong_params);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("parameters"), std::string::npos) << r.message;
}

// zoo check runs the sidecar's own tokenizer, so that it fails where `mll label` would.
TEST(ZooCheck, RunsTheSidecarsTokenizer) {
  mll::test::ScratchDir dir;
  AuthoredModelParams p;
  p.id = "roberta-like";
  p.embed_dim = 16;
  p.image_size = 32;
  p.vocab_size = 50265;  // RoBERTa's; GPT-2's ids reach 50256
  AuthoredModel m = write_authored_model(p, dir.path());
  m.spec.tokenizer.kind = "gpt2-bpe";
  CheckReport r = check_model(m.spec);
  EXPECT_TRUE(r.ok) << r.message;

  m.spec.id = "xlmr-like";
  m.spec.tokenizer.kind = "sentencepiece";
  r = check_model(m.spec);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("model 'xlmr-like': tokenizer: kind 'sentencepiece' needs"),
            std::string::npos)
      << r.message;
  EXPECT_NE(r.message.find("tokenizer.vocab"), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find('\n'), std::string::npos) << r.message;

  m.spec.tokenizer.vocab = "missing.model";
  r = check_model(m.spec);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find(dir / "missing.model"), std::string::npos) << r.message;
}

TEST(ZooCheck, UnavailableDeviceIsAUsageError) {
  if (cuda_available()) GTEST_SKIP() << "CUDA is available here";
  mll::test::ScratchDir dir;
  CheckOptions o;
  o.run.device.kind = Device::Kind::kCuda;
  EXPECT_THROW(check_model(small(dir, "m").spec, o), UsageError);
}

}  // namespace
}  // namespace mll::zoo
