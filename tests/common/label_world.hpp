// A tiny labeling world built at test time: a real WordNet graph over a few seeds, PNG probe
// images per seed, small authored TorchScript models and a zoo manifest. Shared by the labeling
// tests (in-process and through the mll binary).
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mll/core/hash.hpp"
#include "mll/graph/graph.hpp"
#include "mll/image/image.hpp"
#include "mll/label/job.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/authored.hpp"
#include "mll/zoo/model_spec.hpp"
#include "run_command.hpp"
#include "test_paths.hpp"

namespace mll::test {

struct LabelWorld {
  std::string dir;
  std::string graph_path;  // graph.h5
  std::string images_dir;  // one folder per seed wnid
  std::string zoo_path;    // zoo.json
  std::vector<std::string> model_ids;
};

// Seeds under dog.n.01 and fish: close concepts share ancestors, so inner nodes get images.
inline const std::vector<std::string>& world_seeds() {
  static const std::vector<std::string> seeds = {
      "n02085620",  // Chihuahua
      "n02099601",  // golden retriever
      "n02110958",  // pug
      "n01440764",  // tench
      "n01443537",  // goldfish
      "n04037443",  // racer (car)
  };
  return seeds;
}

// Writes `per_seed` PNGs of `size` pixels per seed wnid. Each image is a smooth colour field
// whose hue depends on the seed and whose texture on the image index, so models see varied but
// class-dependent inputs.
inline void write_world_images(const std::string& dir, const std::vector<std::string>& wnids,
                               int per_seed, int size, int salt = 0) {
  for (std::size_t s = 0; s < wnids.size(); ++s) {
    const std::string folder = dir + "/" + wnids[s];
    std::filesystem::create_directories(folder);
    for (int k = 0; k < per_seed; ++k) {
      image::RgbImage img(size, size + (k % 3));
      for (int y = 0; y < img.height(); ++y) {
        for (int x = 0; x < img.width(); ++x) {
          std::uint8_t* p = img.row(y) + 3 * x;
          p[0] = static_cast<std::uint8_t>((40 * s + x * (k % 5 + 1) + salt) % 256);
          p[1] = static_cast<std::uint8_t>((90 * s + y * (k % 7 + 1)) % 256);
          p[2] = static_cast<std::uint8_t>((17 * s * s + (x + y) * 3 + k) % 256);
        }
      }
      image::write_png(folder + "/img_" + std::to_string(salt) + "_" + std::to_string(k) + ".png",
                       img);
    }
  }
}

// Writes `count` small authored models (image size 32, dim 16) and a zoo manifest listing them.
inline std::vector<std::string> write_world_models(const std::string& dir, const std::string& zoo,
                                                   int count, int first_seed = 0) {
  zoo::ZooManifest manifest =
      std::filesystem::exists(zoo) ? zoo::ZooManifest::load(zoo) : zoo::ZooManifest(zoo);
  std::vector<std::string> ids;
  std::filesystem::create_directories(dir);
  for (int i = 0; i < count; ++i) {
    zoo::AuthoredModelParams params;
    params.kind = "small";
    params.seed = static_cast<std::uint64_t>(first_seed + i);
    params.id = "small-" + std::to_string(first_seed + i);
    params.embed_dim = 16;
    params.image_size = 32;
    const auto model = zoo::write_authored_model(params, dir);
    manifest.add_sidecar(model.sidecar_path);
    ids.push_back(params.id);
  }
  manifest.save();
  return ids;
}

// `digests` (the text of a <store>.digests file) with its first file's SHA-256 changed in one
// digit under a checksum that matches the changed line: a well-formed line with a wrong digest.
inline std::string with_wrong_first_digest(const std::string& digests) {
  const auto line = digests.find('\n') + 1;  // after the header
  const auto end = digests.find('\n', line);
  std::string fields = digests.substr(line + 17, end - line - 17);  // after "checksum "
  fields[0] = fields[0] == '0' ? '1' : '0';
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(checksum64(fields.data(), fields.size())));
  return digests.substr(0, line) + hex + ' ' + fields + digests.substr(end);
}
// Copies a store (index and folder) to `to`, e.g. a fresh copy of an empty store per run.
inline void copy_store(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to);
  std::filesystem::copy(from + ".d", to + ".d", std::filesystem::copy_options::recursive);
}

// Byte for byte: the stored float16 values of two stores, as read back.
inline void expect_same_bytes(const Matrix& a, const Matrix& b, const std::string& id) {
  ASSERT_EQ(a.rows, b.rows) << id;
  ASSERT_EQ(a.cols, b.cols) << id;
  EXPECT_EQ(std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)), 0)
      << id;
}

// Two stores hold the same embeddings (byte for byte) and labels for every model of `ids`.
inline void expect_identical_stores(const std::string& a_path, const std::string& b_path,
                                    const std::vector<std::string>& ids) {
  const auto a = store::Store::open(a_path, store::Store::Mode::kRead);
  const auto b = store::Store::open(b_path, store::Store::Mode::kRead);
  const auto images = static_cast<std::int64_t>(a.probe().image_count());
  for (const auto& id : ids) {
    ASSERT_TRUE(b.find_model(id)) << id;
    expect_same_bytes(a.read_text_embeddings(id), b.read_text_embeddings(id), id);
    expect_same_bytes(a.read_image_embeddings(id, 0, images),
                      b.read_image_embeddings(id, 0, images), id);
    const auto la = a.read_labels(id), lb = b.read_labels(id);
    EXPECT_EQ(la.node_top1, lb.node_top1) << id;
    EXPECT_EQ(la.node_confusion, lb.node_confusion) << id;
    EXPECT_EQ(la.subtree_top1, lb.subtree_top1) << id;
  }
}

// The whole world under `scratch` through the mll binary: graph.h5 of world_seeds() (mll graph
// build), images/ with `per_seed` PNGs per seed, `models` authored models in models/ listed by
// zoo.json, and an empty label store at `store` (mll probe build, `per_node` images per node).
// Returns the model ids; an empty list after a failed step (reported as a test failure).
inline std::vector<std::string> build_world(const ScratchDir& scratch, const std::string& store,
                                            int per_seed, int models, int per_node) {
  const std::string d = scratch.path();
  std::ofstream seeds(d + "/seeds.txt");
  for (const auto& wnid : world_seeds()) seeds << wnid << "\n";
  seeds.close();
  auto r = run_mll("graph build --seeds " + d + "/seeds.txt -o " + d + "/graph.h5", scratch);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return {};
  write_world_images(d + "/images", world_seeds(), per_seed, 40);
  auto ids = write_world_models(d + "/models", d + "/zoo.json", models);
  r = run_mll("probe build --graph " + d + "/graph.h5 --images " + d + "/images --per-node " +
                  std::to_string(per_node) + " --store " + store,
              scratch);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return {};
  return ids;
}

// Plans, computes and commits every shard of `specs` in this process without finishing any
// model, as a run killed after its last commit leaves the store. Returns the models then
// complete (Committer::complete_models()).
inline std::vector<std::string> commit_without_finishing(store::Store& store,
                                                         const std::vector<zoo::ModelSpec>& specs,
                                                         const label::LabelOptions& options) {
  const auto plan = label::plan_work(store, specs, options);
  label::Executor executor(plan.groups, store.captions(), label::probe_image_paths(store), options);
  label::Committer committer(store, plan, options);
  const StopFlag never;
  for (const auto& shard : plan.shards) committer.commit(executor.run(shard, never));
  return committer.complete_models();
}

}  // namespace mll::test
