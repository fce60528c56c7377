// The synthetic world on a small WordNet graph: files and determinism, and that labeling (the
// real store, runner and decoder) sees the competence the generator built in.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "mll/core/error.hpp"
#include "mll/core/hash.hpp"
#include "mll/distributed/label.hpp"
#include "mll/feed/inputs.hpp"
#include "mll/graph/graph.hpp"
#include "mll/image/image.hpp"
#include "mll/image/preprocess.hpp"
#include "mll/label/job.hpp"
#include "mll/probe/sampling.hpp"
#include "mll/probe/sources.hpp"
#include "mll/store/store.hpp"
#include "mll/synth/world.hpp"
#include "mll/tokenize/tokenizer.hpp"
#include "mll/zoo/model_spec.hpp"
#include "mll/zoo/runner.hpp"
#include "test_paths.hpp"
#include "wordnet_fixture.hpp"

namespace mll::test {
namespace {

namespace sfs = std::filesystem;

// Every fifth ImageNet-1k class: 200 seeds over the whole hierarchy, so that models compete
// among many similar concepts as they do on the full graph.
const graph::Graph& small_graph() {
  static const graph::Graph g = [] {
    std::ifstream in(source_dir() + "/data/imagenet/imagenet1k_wnids.txt");
    std::vector<graph::Seed> seeds;
    std::string line;
    for (int i = 0; std::getline(in, line); ++i) {
      if (i % 5 != 0) continue;
      graph::Seed s;
      EXPECT_TRUE(graph::parse_wnid(line.substr(0, 9), &s.offset)) << line;
      seeds.push_back(s);
    }
    EXPECT_EQ(seeds.size(), 200u);
    return graph::build_graph(wordnet(), seeds, {});
  }();
  return g;
}

synth::WorldOptions small_options() {
  synth::WorldOptions o;
  o.models = 4;
  o.seed = 7;
  o.images_per_concept = 2;
  o.image_size = 32;
  o.tasks = 2;
  o.classes_per_task = 4;
  o.task_images_per_class = 6;
  o.domains = 3;
  return o;
}

std::map<std::string, std::string> file_hashes(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : sfs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[sfs::relative(e.path(), dir).string()] = sha256_file(e.path());
  }
  return out;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(SynthWorld, WritesEveryPartAndTheSameSeedGivesTheSameBytes) {
  ScratchDir dir;
  const auto report = synth::write_world(small_graph(), small_options(), dir / "a");
  ASSERT_EQ(report.models.size(), 4u);
  ASSERT_GE(report.tasks.size(), 1u);

  // Probe images: every seed, real PNGs of the requested size.
  std::size_t seeds = 0;
  for (const auto& node : small_graph().nodes()) {
    if (!node.seed) continue;
    ++seeds;
    const std::string folder = dir / ("a/images/" + node.wnid);
    ASSERT_TRUE(sfs::is_directory(folder)) << folder;
    std::size_t count = 0;
    for (const auto& e : sfs::directory_iterator(folder)) {
      const auto img = image::decode_file(e.path().string());
      EXPECT_EQ(img.width(), 32);
      EXPECT_EQ(img.height(), 32);
      ++count;
    }
    EXPECT_EQ(count, 2u);
  }
  EXPECT_EQ(report.probe_images, 2 * seeds);

  // The zoo: ids that say nothing about competence, an imagenet_top1 figure for INB.
  const auto manifest = zoo::ZooManifest::load(dir / "a/zoo.json");
  const auto specs = manifest.load_all();
  ASSERT_EQ(specs.size(), 4u);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(specs[i].id, "m0" + std::to_string(i));
    ASSERT_TRUE(specs[i].imagenet_top1.has_value());
    EXPECT_EQ(specs[i].image_size, 32);
  }

  // Tasks in the documented format, a folder of labeled images per class.
  for (const auto& t : report.tasks) {
    const auto j = read_json(dir / ("a/tasks/" + t.name + ".json"));
    EXPECT_EQ(j["name"], t.name);
    ASSERT_EQ(j["classes"].size(), t.classes.size());
    EXPECT_TRUE(j["labeled"].get<bool>());
    for (const auto& c : t.classes) {
      const std::string folder =
          dir / ("a/tasks/" + j["images"]["dir"].get<std::string>() + "/" + c);
      EXPECT_EQ(std::distance(sfs::directory_iterator(folder), sfs::directory_iterator{}), 6)
          << folder;
    }
  }
  EXPECT_TRUE(std::any_of(report.tasks.begin(), report.tasks.end(),
                          [](const synth::TaskTruth& t) { return t.style == "faded"; }));

  const auto truth = read_json(dir / "a/truth.json");
  EXPECT_EQ(truth["models"].size(), 4u);
  EXPECT_EQ(truth["tasks"].size(), report.tasks.size());

  // Same seed: byte-identical; another seed: another world.
  synth::write_world(small_graph(), small_options(), dir / "b");
  EXPECT_EQ(file_hashes(dir / "a"), file_hashes(dir / "b"));
  auto other = small_options();
  other.seed = 8;
  synth::write_world(small_graph(), other, dir / "c");
  EXPECT_NE(sha256_file(dir / "a/truth.json"), sha256_file(dir / "c/truth.json"));
}

TEST(SynthWorld, RefusesBadOptionsAndANonEmptyDirectoryWithoutForce) {
  ScratchDir dir;
  auto o = small_options();
  o.image_size = 40;
  EXPECT_THROW(synth::write_world(small_graph(), o, dir / "x"), UsageError);
  o = small_options();
  o.models = 0;
  EXPECT_THROW(synth::write_world(small_graph(), o, dir / "x"), UsageError);
  o = small_options();
  o.domains = 7;
  EXPECT_THROW(synth::write_world(small_graph(), o, dir / "x"), UsageError);

  o = small_options();
  o.tasks = 0;
  synth::write_world(small_graph(), o, dir / "w");
  EXPECT_THROW(synth::write_world(small_graph(), o, dir / "w"), UsageError);
  std::ofstream(dir / "w/keep.txt") << "mine";
  EXPECT_NO_THROW(synth::write_world(small_graph(), o, dir / "w", /*force=*/true));
  EXPECT_TRUE(sfs::exists(dir / "w/keep.txt"));  // --force replaces only the world's entries
}

double mean_over(const std::vector<float>& values, const std::vector<std::int32_t>& nodes) {
  double sum = 0;
  for (const auto v : nodes) sum += values.at(static_cast<std::size_t>(v));
  return nodes.empty() ? 0.0 : sum / static_cast<double>(nodes.size());
}

// Labeling runs the written models on the written PNGs through the real store, decoder and
// runner; its summary labels must show each specialist sharp on its domain and blurry elsewhere.
// The runner's zero-shot accuracy on task images must match the truth file.
TEST(SynthWorld, LabelingSeesCompetenceAndTheTruthMatchesTheRunner) {
  ScratchDir dir;
  auto options = small_options();
  options.images_per_concept = 4;
  const auto report = synth::write_world(small_graph(), options, dir / "w");

  const auto source = probe::scan_image_tree(dir / "w/images");
  probe::ProbeOptions probe_options;
  probe_options.per_node = 12;
  const auto probe_set = probe::build_probe_set(small_graph(), source, probe_options);
  store::Store::create(dir / "store.h5", small_graph(), probe_set, false);
  const auto specs = zoo::ZooManifest::load(dir / "w/zoo.json").load_all();
  label::LabelOptions label_options;
  label_options.batch = 16;
  label_options.decode_threads = 1;
  label_options.progress = false;
  const auto labeled = distributed::label_here(dir / "store.h5", specs, label_options);
  ASSERT_EQ(labeled.labeled.size(), specs.size());
  const auto store = store::Store::open(dir / "store.h5", store::Store::Mode::kRead);

  int specialists = 0;
  for (const auto& m : report.models) {
    if (m.kind != "specialist" || m.sharp_domains.size() != 1) continue;
    ++specialists;
    const auto labels = store.read_labels(m.id);
    const auto sharp = static_cast<std::size_t>(m.sharp_domains[0]);
    const double on = mean_over(labels.node_top1, report.domains[sharp].seeds);
    for (std::size_t d = 0; d < report.domains.size(); ++d) {
      if (d == sharp) continue;
      const double off = mean_over(labels.node_top1, report.domains[d].seeds);
      EXPECT_GT(on, off + 0.3) << m.id << " sharp on " << report.domains[sharp].name;
    }
    EXPECT_GT(on, 0.7) << m.id;
  }
  EXPECT_GE(specialists, 1);

  // Zero-shot through the runner on the first task's images.
  const auto& task = report.tasks.at(0);
  const auto tokenizer = tokenize::make_tokenizer(tokenize::TokenizerSpec{});
  std::vector<std::string> prompts;
  for (const auto& c : task.classes) prompts.push_back("a photo of a " + c + ".");
  const auto ids = tokenizer->encode_batch(prompts);
  std::vector<double> accuracy;
  for (std::size_t m = 0; m < specs.size(); ++m) {
    const zoo::Model model(specs[m]);
    const auto text = model.encode_text(ids.data(), static_cast<int>(prompts.size()), 77);
    const auto pre = feed::preprocess_spec(specs[m]);
    std::size_t hits = 0, total = 0;
    for (std::size_t c = 0; c < task.classes.size(); ++c) {
      for (const auto& e :
           sfs::directory_iterator(dir / ("w/tasks/" + task.name + "/" + task.classes[c]))) {
        const auto pixels = image::preprocess(image::decode_file(e.path().string()), pre);
        const auto emb = model.encode_images(pixels.data(), 1, pre.height, pre.width);
        std::size_t best = 0;
        double best_score = -2;
        for (std::size_t k = 0; k < task.classes.size(); ++k) {
          double s = 0;
          for (std::int64_t d = 0; d < emb.cols; ++d) s += emb.values[d] * text.row(k)[d];
          if (s > best_score) best_score = s, best = k;
        }
        hits += best == c ? 1 : 0;
        ++total;
      }
    }
    accuracy.push_back(static_cast<double>(hits) / static_cast<double>(total));
    EXPECT_NEAR(accuracy.back(), task.accuracy[m], 0.05) << specs[m].id;
  }
  const auto best =
      std::max_element(task.accuracy.begin(), task.accuracy.end()) - task.accuracy.begin();
  const auto worst =
      std::min_element(task.accuracy.begin(), task.accuracy.end()) - task.accuracy.begin();
  EXPECT_GT(accuracy[static_cast<std::size_t>(best)], accuracy[static_cast<std::size_t>(worst)]);
}

}  // namespace
}  // namespace mll::test
