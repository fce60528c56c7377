// The C++ runner and PyTorch agree on the same archives: a model scripted in Python loads here,
// a model authored here loads in Python, and tools/export_openclip.py's output loads here.
// Python is Debian's /usr/bin/python3 with python3-torch (MLL_PYTHON overrides); without torch
// these tests are skipped.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/zoo/authored.hpp"
#include "mll/zoo/check.hpp"
#include "mll/zoo/runner.hpp"
#include "test_paths.hpp"

namespace mll::zoo {
namespace {

std::string python() {
  const char* p = std::getenv("MLL_PYTHON");
  return p ? p : "/usr/bin/python3";
}

bool python_has_torch() {
  static const bool has =
      std::system((python() + " -c 'import torch, numpy' >/dev/null 2>&1").c_str()) == 0;
  return has;
}

#define SKIP_WITHOUT_PYTHON_TORCH()                 \
  if (!python_has_torch())                          \
  GTEST_SKIP() << python()                          \
               << " cannot import torch and numpy " \
                  "(install python3-torch)"

void run_python(const std::string& args) {
  const std::string command = python() + " " + args;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

std::string tool(const std::string& name) { return mll::test::source_dir() + "/tools/" + name; }

template <typename T>
std::vector<T> read_raw(const std::string& path) {
  const std::string bytes = fs::read_file(path);
  std::vector<T> v(bytes.size() / sizeof(T));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
  return v;
}

template <typename T>
void write_raw(const std::string& path, const std::vector<T>& v) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(v.data()),
            static_cast<std::streamsize>(v.size() * sizeof(T)));
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    m = std::max(m, std::abs(double(a[i]) - b[i]));
  }
  return m;
}

// Compares the runner's embeddings with reference.json's (tools/make_python_stand_in.py format).
void compare_with_reference(const Model& model, const std::string& dir) {
  const auto ref = nlohmann::json::parse(fs::read_file(dir + "/reference.json"));
  const auto image_shape = ref["images"]["shape"].get<std::vector<int>>();
  const auto ids_shape = ref["ids"]["shape"].get<std::vector<int>>();
  const auto images = read_raw<float>(dir + "/" + ref["images"]["file"].get<std::string>());
  const auto ids = read_raw<std::int64_t>(dir + "/" + ref["ids"]["file"].get<std::string>());
  const Matrix e =
      model.encode_images(images.data(), image_shape[0], image_shape[2], image_shape[3]);
  const Matrix t = model.encode_text(ids.data(), ids_shape[0], ids_shape[1]);
  const auto ref_e =
      read_raw<float>(dir + "/" + ref["image_embeddings"]["file"].get<std::string>());
  const auto ref_t = read_raw<float>(dir + "/" + ref["text_embeddings"]["file"].get<std::string>());
  EXPECT_EQ(e.rows * e.cols, static_cast<std::int64_t>(ref_e.size()));
  EXPECT_LE(max_abs_diff(e.values, ref_e), 1e-5);
  EXPECT_LE(max_abs_diff(t.values, ref_t), 1e-5);
}

TEST(ZooPython, ScriptedInPythonMatchesInCpp) {
  SKIP_WITHOUT_PYTHON_TORCH();
  mll::test::ScratchDir dir;
  run_python(tool("make_python_stand_in.py") + " --out " + dir.path() + " --id py-model");
  const Model model(load_sidecar(dir / "py-model.json"));
  compare_with_reference(model, dir.path());
  const CheckReport r = check_model(load_sidecar(dir / "py-model.json"));
  EXPECT_TRUE(r.ok) << r.message;
}

// Writes inputs, runs tools/torchscript_embed.py on `m`, and compares with the runner.
void compare_authored_in_python(const AuthoredModel& m, const mll::test::ScratchDir& dir,
                                int batch) {
  const int s = m.spec.image_size;
  const int len = m.spec.tokenizer.context_length;
  std::mt19937 rng(11);
  std::normal_distribution<float> pixel;
  std::vector<float> images(static_cast<std::size_t>(batch) * 3 * s * s);
  for (float& v : images) v = pixel(rng);
  std::uniform_int_distribution<std::int64_t> token(1, 49405);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(batch) * len, 0);
  for (int b = 0; b < batch; ++b) {
    ids[b * len] = 49406;
    for (int i = 1; i <= 3 + b; ++i) ids[b * len + i] = token(rng);
    ids[b * len + 4 + b] = 49407;
  }
  write_raw(dir / "images.f32", images);
  write_raw(dir / "ids.i64", ids);
  run_python(cat(tool("torchscript_embed.py"), " --model ", m.model_path, " --images ",
                 dir / "images.f32", " --image-shape ", batch, ",3,", s, ",", s, " --ids ",
                 dir / "ids.i64", " --ids-shape ", batch, ",", len, " --out ", dir.path()));
  const Model model(m.spec);
  const Matrix e = model.encode_images(images.data(), batch, s, s);
  const Matrix t = model.encode_text(ids.data(), batch, len);
  EXPECT_LE(max_abs_diff(e.values, read_raw<float>(dir / "image_embeddings.f32")), 1e-5);
  EXPECT_LE(max_abs_diff(t.values, read_raw<float>(dir / "text_embeddings.f32")), 1e-5);
}

TEST(ZooPython, SmallAuthoredInCppMatchesInPython) {
  SKIP_WITHOUT_PYTHON_TORCH();
  mll::test::ScratchDir dir;
  AuthoredModelParams p;
  p.id = "cpp-small";
  p.seed = 5;
  compare_authored_in_python(write_authored_model(p, dir.path()), dir, 3);
}

TEST(ZooPython, VitB32AuthoredInCppMatchesInPython) {
  SKIP_WITHOUT_PYTHON_TORCH();
  mll::test::ScratchDir dir;
  AuthoredModelParams p;
  p.kind = "vit-b32";
  p.id = "cpp-vit";
  set_threads(2);
  compare_authored_in_python(write_authored_model(p, dir.path()), dir, 2);
  set_threads(1);
}

TEST(ZooPython, ExportToolStandInLoadsInTheRunner) {
  SKIP_WITHOUT_PYTHON_TORCH();
  mll::test::ScratchDir dir;
  run_python(tool("export_openclip.py") + " --stand-in --no-verify --out " + dir.path() +
             " --write-test-vectors");
  const ModelSpec spec = load_sidecar(dir / "stand-in-openclip.json");
  EXPECT_EQ(spec.image_size, 32);
  EXPECT_EQ(spec.interpolation, "bicubic");
  EXPECT_EQ(spec.tokenizer.kind, "clip-bpe");
  EXPECT_NEAR(spec.logit_scale, 1.0 / 0.07, 1e-3);
  const Model model(spec);
  compare_with_reference(model, dir.path());
  const CheckReport r = check_model(spec);
  EXPECT_TRUE(r.ok) << r.message;
}

}  // namespace
}  // namespace mll::zoo
