#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "mll/core/error.hpp"
#include "mll/core/hash.hpp"
#include "mll/zoo/authored.hpp"
#include "mll/zoo/runner.hpp"
#include "test_paths.hpp"
#include "zoo_test_util.hpp"

namespace mll::zoo {
namespace {

using test::expect_throw_containing;
using test::write_text;

std::vector<float> random_images(int batch, int size, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(static_cast<std::size_t>(batch) * 3 * size * size);
  for (float& x : v) x = dist(rng);
  return v;
}

// CLIP-style rows: sot, a few ids, eot, zero padding.
std::vector<std::int64_t> token_rows(int batch, int len, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int64_t> id(1, 49405);
  std::vector<std::int64_t> v(static_cast<std::size_t>(batch) * len, 0);
  for (int b = 0; b < batch; ++b) {
    const int n = 1 + b % 5;
    v[b * len] = 49406;
    for (int i = 1; i <= n; ++i) v[b * len + i] = id(rng);
    v[b * len + n + 1] = 49407;
  }
  return v;
}

AuthoredModelParams small_params(const std::string& id, std::uint64_t seed = 0) {
  AuthoredModelParams p;
  p.kind = "small";
  p.id = id;
  p.seed = seed;
  p.embed_dim = 16;
  p.image_size = 32;
  return p;
}

void expect_unit_rows(const Matrix& e) {
  for (std::int64_t r = 0; r < e.rows; ++r) {
    double sum = 0;
    for (std::int64_t c = 0; c < e.cols; ++c) sum += double(e.row(r)[c]) * e.row(r)[c];
    EXPECT_NEAR(std::sqrt(sum), 1.0, 1e-5);
  }
}

TEST(ZooDevice, ParsesDeviceNames) {
  EXPECT_FALSE(parse_device("cpu").is_cuda());
  EXPECT_EQ(parse_device("cpu").str(), "cpu");
  EXPECT_EQ(parse_device("auto").is_cuda(), cuda_available());
  EXPECT_THROW(parse_device("gpu"), UsageError);
  EXPECT_THROW(parse_device("cuda:x"), UsageError);
  EXPECT_THROW(parse_device("cuda:"), UsageError);
  if (!cuda_available()) {
    expect_throw_containing<UsageError>([] { parse_device("cuda"); }, {"CUDA is not available"});
    EXPECT_THROW(parse_device("cuda:1"), UsageError);
  } else {
    EXPECT_EQ(parse_device("cuda").str(), "cuda:0");
    EXPECT_THROW(parse_device(cat("cuda:", cuda_device_count())), UsageError);
  }
}

// auto is fp16 on CUDA and fp32 on the CPU; fp16 on the CPU is refused, bf16 is not.
TEST(ZooPrecision, ParsesNamesForTheDevice) {
  const Device cpu = parse_device("cpu");
  EXPECT_EQ(parse_precision("auto", cpu), Precision::kFp32);
  EXPECT_EQ(parse_precision("fp32", cpu), Precision::kFp32);
  EXPECT_EQ(parse_precision("bf16", cpu), Precision::kBf16);
  expect_throw_containing<UsageError>([&] { parse_precision("fp16", cpu); },
                                      {"fp16 needs a CUDA device", "bf16"});
  expect_throw_containing<UsageError>([&] { parse_precision("int8", cpu); },
                                      {"unknown precision 'int8'"});
  Device cuda;
  cuda.kind = Device::Kind::kCuda;
  EXPECT_EQ(parse_precision("auto", cuda), Precision::kFp16);
  EXPECT_EQ(parse_precision("fp16", cuda), Precision::kFp16);
  EXPECT_EQ(to_string(Precision::kFp32), "fp32");
  EXPECT_EQ(to_string(Precision::kFp16), "fp16");
  EXPECT_EQ(to_string(Precision::kBf16), "bf16");
}

// bfloat16 on the CPU: normalised float32 rows close to (but not equal to) float32's.
TEST(ZooPrecision, Bf16RunsOnTheCpuCloseToFp32) {
  mll::test::ScratchDir dir;
  const AuthoredModel m = write_authored_model(small_params("small-bf16"), dir.path());
  RunOptions bf16;
  bf16.precision = Precision::kBf16;
  const Model fast(load_sidecar(m.sidecar_path), bf16);
  const Model exact(load_sidecar(m.sidecar_path));
  EXPECT_EQ(fast.precision(), Precision::kBf16);
  EXPECT_EQ(exact.precision(), Precision::kFp32);
  const auto images = random_images(4, 32, 3);
  const Matrix a = fast.encode_images(images.data(), 4, 32, 32);
  const Matrix b = exact.encode_images(images.data(), 4, 32, 32);
  expect_unit_rows(a);
  ASSERT_EQ(a.cols, b.cols);
  bool differs = false;
  for (std::int64_t r = 0; r < a.rows; ++r) {
    double cosine = 0;
    for (std::int64_t c = 0; c < a.cols; ++c) {
      cosine += double(a.row(r)[c]) * b.row(r)[c];
      differs |= a.row(r)[c] != b.row(r)[c];
    }
    EXPECT_GT(cosine, 0.99) << "row " << r;
  }
  EXPECT_TRUE(differs);  // it really ran in bfloat16
  RunOptions fp16;
  fp16.precision = Precision::kFp16;
  EXPECT_THROW(Model(load_sidecar(m.sidecar_path), fp16), UsageError);
}

TEST(ZooDevice, ThreadsAreSetExplicitly) {
  EXPECT_THROW(set_threads(0), UsageError);
  set_threads(2);
  EXPECT_EQ(threads(), 2);
  set_threads(1);
  EXPECT_EQ(threads(), 1);
}

bool libtorch_is_loaded() {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find("libtorch_cpu") != std::string::npos) return true;
  }
  return false;
}

bool gpu_driver_files() {
  for (const char* path :
       {"/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg"}) {
    if (std::filesystem::exists(path)) return true;
  }
  return false;
}

// Labeling decodes while libtorch loads: setting the thread count (and, without a GPU driver,
// choosing the device) must not load it, and the count still reaches it when it loads.
// (Each test runs in a process of its own, so nothing loaded the engine before this one.)
TEST(ZooDevice, ThreadsSetBeforeTheEngineLoadsReachItWhenItLoads) {
  ASSERT_FALSE(libtorch_is_loaded()) << "the test binary itself links libtorch";
  set_threads(3);
  EXPECT_EQ(threads(), 3);
  EXPECT_EQ(parse_device("cpu").str(), "cpu");
  if (!gpu_driver_files()) {
    EXPECT_EQ(parse_device("auto").str(), "cpu");
  }
  EXPECT_FALSE(libtorch_is_loaded());

  mll::test::ScratchDir dir;
  write_authored_model(small_params("small-t"), dir.path());  // loads the engine
  EXPECT_TRUE(libtorch_is_loaded());
  EXPECT_EQ(threads(), 3);  // now libtorch's own count
  set_threads(1);
  EXPECT_EQ(threads(), 1);
}

// The last model of a batch runs on the caller's buffer itself: the same rows as with the copy.
TEST(ZooRunner, ConsumingTheInputGivesTheSameRows) {
  mll::test::ScratchDir dir;
  const AuthoredModel m = write_authored_model(small_params("small-c"), dir.path());
  const Model model(load_sidecar(m.sidecar_path));
  const auto images = random_images(4, 32, 7);
  const Matrix copied = model.encode_images(images.data(), 4, 32, 32);
  auto buffer = images;
  const Matrix consumed = model.encode_images_consuming(buffer.data(), 4, 32, 32);
  ASSERT_EQ(consumed.rows, 4);
  ASSERT_EQ(consumed.cols, copied.cols);
  EXPECT_EQ(consumed.values, copied.values);
  EXPECT_THROW(model.encode_images_consuming(buffer.data(), 4, 16, 16), DataError);
}

TEST(ZooRunner, SmallModelEncodesNormalisedRows) {
  mll::test::ScratchDir dir;
  const AuthoredModel m = write_authored_model(small_params("small-a"), dir.path());
  const Model model(load_sidecar(m.sidecar_path));
  EXPECT_EQ(model.id(), "small-a");
  EXPECT_EQ(model.parameter_count(), m.spec.params);
  EXPECT_EQ(model.parameter_count(), architecture_cost(small_params("x")).params);
  EXPECT_EQ(model.embed_dim(), 16);  // from the sidecar
  EXPECT_EQ(model.file_sha256(), sha256_file(m.model_path));

  const auto images = random_images(3, 32, 1);
  const Matrix e = model.encode_images(images.data(), 3, 32, 32);
  ASSERT_EQ(e.rows, 3);
  ASSERT_EQ(e.cols, 16);
  expect_unit_rows(e);
  EXPECT_NE(e.row(0)[0], e.row(1)[0]);

  const auto ids = token_rows(4, 77, 2);
  const Matrix t = model.encode_text(ids.data(), 4, 77);
  ASSERT_EQ(t.rows, 4);
  ASSERT_EQ(t.cols, 16);
  expect_unit_rows(t);

  // Batching does not change a row.
  const Matrix single = model.encode_images(images.data() + 3 * 32 * 32, 1, 32, 32);
  for (int c = 0; c < 16; ++c) EXPECT_NEAR(single.row(0)[c], e.row(1)[c], 1e-6);
}

TEST(ZooRunner, InputGeometryMustMatchTheSidecar) {
  mll::test::ScratchDir dir;
  const AuthoredModel m = write_authored_model(small_params("small-geom"), dir.path());
  const Model model(m.spec);
  const auto images = random_images(1, 64, 1);
  expect_throw_containing<DataError>([&] { model.encode_images(images.data(), 1, 64, 64); },
                                     {"small-geom", "expects 32x32"});
  const auto ids = token_rows(1, 50, 1);
  expect_throw_containing<DataError>([&] { model.encode_text(ids.data(), 1, 50); },
                                     {"small-geom", "length 77"});
  EXPECT_THROW(model.encode_images(images.data(), 0, 32, 32), UsageError);
}

TEST(ZooRunner, SameSeedSameBytesOtherSeedOtherBytes) {
  mll::test::ScratchDir dir;
  std::filesystem::create_directories(dir / "a");
  std::filesystem::create_directories(dir / "b");
  std::filesystem::create_directories(dir / "c");
  const auto a = write_authored_model(small_params("m", 7), dir / "a");
  const auto b = write_authored_model(small_params("m", 7), dir / "b");
  const auto c = write_authored_model(small_params("m", 8), dir / "c");
  EXPECT_EQ(sha256_file(a.model_path), sha256_file(b.model_path));
  EXPECT_EQ(sha256_file(a.sidecar_path), sha256_file(b.sidecar_path));
  EXPECT_NE(sha256_file(a.model_path), sha256_file(c.model_path));
}

TEST(ZooRunner, ExplicitSmallWeightsAreUsed) {
  mll::test::ScratchDir dir;
  AuthoredModelParams p = small_params("explicit");
  const int d = 16;
  const int h = p.small_hidden;
  const int e = p.small_text_width;
  // Zero output weights and one-hot biases make each tower's output a fixed axis.
  p.weights.image_w2 = std::vector<float>(static_cast<std::size_t>(d) * h, 0.0f);
  p.weights.image_b2 = std::vector<float>(d, 0.0f);
  (*p.weights.image_b2)[3] = 2.0f;
  p.weights.text_w = std::vector<float>(static_cast<std::size_t>(d) * e, 0.0f);
  p.weights.text_b = std::vector<float>(d, 0.0f);
  (*p.weights.text_b)[5] = -0.5f;
  const Model model(write_authored_model(p, dir.path()).spec);
  const auto images = random_images(2, 32, 3);
  const Matrix img = model.encode_images(images.data(), 2, 32, 32);
  const auto ids = token_rows(2, 77, 3);
  const Matrix txt = model.encode_text(ids.data(), 2, 77);
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < d; ++c) {
      EXPECT_FLOAT_EQ(img.row(r)[c], c == 3 ? 1.0f : 0.0f);
      EXPECT_FLOAT_EQ(txt.row(r)[c], c == 5 ? -1.0f : 0.0f);
    }
  }

  AuthoredModelParams bad = small_params("bad");
  bad.weights.image_b1 = std::vector<float>(3, 0.0f);
  expect_throw_containing<UsageError>([&] { write_authored_model(bad, dir.path()); },
                                      {"image_b1", "has 3 values"});
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.pt"));
}

TEST(ZooRunner, FilesThatAreNotTorchScript) {
  mll::test::ScratchDir dir;
  write_text(dir / "text.pt", "this is not a model\n");
  std::string bytes(4096, '\0');
  std::mt19937 rng(5);
  for (char& c : bytes) c = static_cast<char>(rng());
  write_text(dir / "random.pt", bytes);
  write_text(dir / "empty.pt", "");
  // A zip archive's magic followed by garbage: the reader gets further before failing.
  write_text(dir / "zip.pt", std::string("PK\x03\x04", 4) + bytes);
  for (const char* name : {"text.pt", "random.pt", "empty.pt", "zip.pt"}) {
    expect_throw_containing<DataError>([&] { Model::from_file(dir / name); },
                                       {dir / name, "TorchScript"});
  }
  expect_throw_containing<DataError>([&] { Model::from_file(dir / "missing.pt"); },
                                     {dir / "missing.pt", "not found"});
  // Through a sidecar as well: the message names the model file.
  ModelSpec spec;
  spec.id = "broken";
  spec.model_file = "random.pt";
  spec.base_dir = dir.path();
  spec.params = 1;
  spec.gflops_per_image = 1;
  expect_throw_containing<DataError>([&] { Model m(spec); }, {dir / "random.pt"});
}

TEST(ZooRunner, ModuleMissingAMethod) {
  mll::test::ScratchDir dir;
  write_scripted_module(dir / "half.pt", R"(
def encode_image(self, x: Tensor) -> Tensor:
    return x.flatten(1)
)");
  expect_throw_containing<DataError>([&] { Model::from_file(dir / "half.pt"); },
                                     {dir / "half.pt", "no method 'encode_text'"});
  write_scripted_module(dir / "none.pt", R"(
def forward(self, x: Tensor) -> Tensor:
    return x
)");
  expect_throw_containing<DataError>([&] { Model::from_file(dir / "none.pt"); },
                                     {dir / "none.pt", "no method 'encode_image'"});
}

// A model whose towers are the given TorchScript expressions of x (images) and t (ids).
ModelSpec scripted_model(const mll::test::ScratchDir& dir, const std::string& id,
                         const std::string& image_expr, const std::string& text_expr) {
  write_scripted_module(dir / (id + ".pt"), cat(R"(
def encode_image(self, x: Tensor):
    return )",
                                                image_expr, R"(

def encode_text(self, t: Tensor):
    return )",
                                                text_expr, "\n"));
  ModelSpec spec;
  spec.id = id;
  spec.model_file = id + ".pt";
  spec.base_dir = dir.path();
  spec.image_size = 8;
  spec.tokenizer.context_length = 6;
  spec.params = 1;
  spec.gflops_per_image = 1;
  return spec;
}

TEST(ZooRunner, OutputsOfTheWrongShapeOrKind) {
  mll::test::ScratchDir dir;
  const auto images = random_images(2, 8, 1);
  const auto ids = token_rows(2, 6, 1);
  const std::string good_image = "x.flatten(1)[:, :4] + 1.0";
  const std::string good_text = "t.float()[:, :4] + 1.0";
  struct Case {
    std::string id, image, text;
    bool image_fails;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"rank3", "x.mean(1)", good_text, true, "shape [2, 8, 8]"},
      {"rank1", "x.sum([1, 2, 3])", good_text, true, "shape [2]"},
      {"rows", "x.flatten(1)[:1] + 1.0", good_text, true, "for a batch of 2"},
      {"ints", "x.flatten(1).long()", good_text, true, "Long"},
      {"tuple", "(x, x)", good_text, true, "instead of a tensor"},
      {"text-rank3", good_image, "t.float().unsqueeze(2)", false, "shape [2, 6, 1]"},
      {"widths", good_image, "t.float()[:, :5] + 1.0", false, "returns width 5"},
      {"nan", "(x.flatten(1)[:, :4] * 0.0) / 0.0", good_text, true, "NaN or Inf"},
      {"inf", "x.flatten(1)[:, :4] / 0.0", good_text, true, "NaN or Inf"},
      {"zero", "x.flatten(1)[:, :4] * 0.0", good_text, true, "all-zero row"},
      {"throws", "torch.matmul(x, x.flatten(1))", good_text, true, "encode_image failed"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.id);
    const Model model(scripted_model(dir, c.id, c.image, c.text));
    auto run_image = [&] { model.encode_images(images.data(), 2, 8, 8); };
    auto run_text = [&] { model.encode_text(ids.data(), 2, 6); };
    if (c.image_fails) {
      expect_throw_containing<DataError>(run_image, {"model '" + c.id + "'", c.expect});
    } else {
      run_image();
      expect_throw_containing<DataError>(run_text, {"model '" + c.id + "'", c.expect});
    }
  }
}

TEST(ZooRunner, SidecarEmbedDimIsChecked) {
  mll::test::ScratchDir dir;
  ModelSpec spec = scripted_model(dir, "dim", "x.flatten(1)[:, :4] + 1.0", "t.float()[:, :4]");
  spec.embed_dim = 8;
  const Model model(spec);
  const auto images = random_images(1, 8, 1);
  expect_throw_containing<DataError>([&] { model.encode_images(images.data(), 1, 8, 8); },
                                     {"model 'dim'", "embed_dim is 8"});
}

}  // namespace
}  // namespace mll::zoo
