// Writes a synthetic label store for the selection benchmarks (bench/selection_time.sh,
// bench/select_end_to_end.sh): N nodes (one root, the rest its children), P probe images shared
// by the nodes (per_node memberships each), M models of random unit vectors (dim d), a C-class
// task and a matches file (5 random nodes per class with softmax-like weights). Usage:
//   selection_time DIR [nodes 2000] [images 37500] [per_node 75] [models 49] [dim 512]
//                  [classes 100] [SIDECAR MODEL_ID [DIGESTS]]
// With SIDECAR, model MODEL_ID's caption rows are that text tower's embeddings of the captions
// (the rest stays random): matching with that tower then finds text neighbours as it would in a
// labeled store, so a task's node set has a realistic size. DIGESTS: a file with one SHA-256 per
// model, in order (model-100 first), recorded as the file each model was labeled from; `mll
// select` checks a tower's file against it before it embeds texts. Without it the models get
// stand-in digests, and only selections that load no tower (--matches) run on the store.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include "mll/feed/inputs.hpp"
#include "mll/graph/graph.hpp"
#include "mll/probe/probe_set.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/model_spec.hpp"
#include "mll/zoo/runner.hpp"

using namespace mll;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: selection_time DIR [nodes images per_node models dim classes]\n";
    return 64;
  }
  const std::string dir = argv[1];
  const auto arg = [&](int i, long fallback) { return argc > i ? std::stol(argv[i]) : fallback; };
  const long n = arg(2, 2000), p = arg(3, 37500), per_node = arg(4, 75), models = arg(5, 49),
             d = arg(6, 512), classes = arg(7, 100);
  std::filesystem::create_directories(dir);
  std::mt19937_64 rng(7);

  std::vector<graph::Node> nodes(static_cast<std::size_t>(n));
  std::vector<graph::Edge> edges;
  for (long v = 0; v < n; ++v) {
    char wnid[32];
    std::snprintf(wnid, sizeof wnid, "n%08ld", v + 1);
    auto& node = nodes[static_cast<std::size_t>(v)];
    node.wnid = wnid;
    node.name = "concept" + std::to_string(v) + ".n.01";
    node.lemmas = {"concept" + std::to_string(v)};
    node.definition = "synthetic concept " + std::to_string(v);
    node.caption = node.lemmas[0] + " which is " + node.definition;
    node.seed = v > 0;
    if (v > 0) edges.push_back({static_cast<std::int32_t>(v), 0});
  }
  const graph::Graph g(nodes, edges, {}, "synthetic");

  probe::ProbeSet probe;
  probe.root = dir + "/images";
  probe.per_node = static_cast<std::int32_t>(per_node);
  probe.graph_hash = g.content_hash();
  for (long i = 0; i < p; ++i) {
    probe.image_paths.push_back("img" + std::to_string(i) + ".jpg");
    probe.image_sizes.push_back(1000);
  }
  probe.node_offsets.push_back(0);
  std::uniform_int_distribution<long> pick_image(0, p - 1);
  for (long v = 0; v < n; ++v) {
    std::vector<std::int32_t> list;
    while (static_cast<long>(list.size()) < std::min(per_node, p)) {
      const auto i = static_cast<std::int32_t>(pick_image(rng));
      if (std::find(list.begin(), list.end(), i) == list.end()) list.push_back(i);
    }
    std::sort(list.begin(), list.end());
    probe.node_images.insert(probe.node_images.end(), list.begin(), list.end());
    probe.node_offsets.push_back(static_cast<std::int64_t>(probe.node_images.size()));
  }

  const std::string path = dir + "/store.h5";
  auto store = store::Store::create(path, g, probe, true);
  std::normal_distribution<float> normal;
  const auto random_rows = [&](long rows) {
    std::vector<float> out(static_cast<std::size_t>(rows * d));
    for (long r = 0; r < rows; ++r) {
      double norm = 0;
      for (long t = 0; t < d; ++t) {
        const float x = normal(rng);
        out[static_cast<std::size_t>(r * d + t)] = x;
        norm += static_cast<double>(x) * x;
      }
      const auto inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (long t = 0; t < d; ++t) out[static_cast<std::size_t>(r * d + t)] *= inv;
    }
    return out;
  };
  const auto captions = static_cast<long>(store.captions().size());
  const std::string tower_sidecar = argc > 9 ? argv[8] : "", tower_id = argc > 9 ? argv[9] : "";
  // The tower's caption embeddings, batch by batch.
  const auto tower_rows = [&]() {
    const auto spec = zoo::load_sidecar(tower_sidecar);
    zoo::set_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    const zoo::Model model(spec);
    const auto tokenizer = feed::make_tokenizer(spec);
    std::vector<float> out;
    for (long first = 0; first < captions; first += 32) {
      const std::vector<std::string> texts(
          store.captions().begin() + first,
          store.captions().begin() + std::min(captions, first + 32));
      const auto ids = tokenizer->encode_batch(texts);
      const auto e = model.encode_text(ids.data(), static_cast<int>(texts.size()),
                                       tokenizer->context_length());
      if (e.cols != d) {
        std::cerr << tower_sidecar << ": width " << e.cols << ", not " << d << "\n";
        std::exit(65);
      }
      out.insert(out.end(), e.values.begin(), e.values.end());
      std::cerr << "tower: " << first + static_cast<long>(texts.size()) << "/" << captions
                << " captions\r";
    }
    std::cerr << "\n";
    return out;
  };
  std::vector<std::string> digests;
  if (argc > 10) {
    std::ifstream in(argv[10]);
    for (std::string line; std::getline(in, line);) digests.push_back(line.substr(0, 64));
    if (static_cast<long>(digests.size()) != models) {
      std::cerr << argv[10] << ": " << digests.size() << " digests for " << models << " models\n";
      return 65;
    }
  }
  for (long m = 0; m < models; ++m) {
    store::ModelRecord record;
    record.id = "model-" + std::to_string(100 + m);
    // The file's digest, or a distinct stand-in per model (the text cache is keyed by it).
    char digest[65];
    std::snprintf(digest, sizeof digest, "%064ld", m + 1);
    record.model_sha256 = digests.empty() ? digest : digests[static_cast<std::size_t>(m)];
    record.sidecar_json = "{}";
    store.register_model(record);
    const auto text = record.id == tower_id ? tower_rows() : random_rows(captions);
    store.commit_unit(record.id, {store::UnitKind::kText, 0, captions}, text.data(), d);
    for (long begin = 0; begin < p; begin += 8192) {
      const long end = std::min(p, begin + 8192);
      const auto rows = random_rows(end - begin);
      store.commit_unit(record.id, {store::UnitKind::kImage, begin, end}, rows.data(), d);
    }
    store::ModelLabels labels;
    labels.node_top1.assign(static_cast<std::size_t>(n), 0.5f);
    labels.node_confusion.assign(static_cast<std::size_t>(n * 3), -1);
    labels.subtree_top1.assign(static_cast<std::size_t>(n), 0.5f);
    store.finish_model(record.id, labels, {});
    std::cerr << "model " << m + 1 << "/" << models << "\r";
  }
  std::cerr << "\n";

  // The task and its matches: 5 random nodes per class. A class is named after its first node's
  // lemma, so that matching (without --matches) finds it by WordNet-style lemma evidence too.
  std::ofstream task(dir + "/task.json");
  std::ofstream matches(dir + "/matches.json");
  task << "{\"name\": \"bench\", \"classes\": [";
  matches << "{\"classes\": [";
  std::uniform_int_distribution<long> pick_node(1, n - 1);
  std::vector<long> named;
  for (long y = 0; y < classes; ++y) {
    const double w[5] = {0.5, 0.2, 0.15, 0.1, 0.05};
    std::vector<long> picked;
    while (picked.size() < 5) {
      const long v = pick_node(rng);
      if (std::find(picked.begin(), picked.end(), v) == picked.end() &&
          (picked.size() > 0 || std::find(named.begin(), named.end(), v) == named.end())) {
        picked.push_back(v);
      }
    }
    named.push_back(picked[0]);
    const std::string name = "concept" + std::to_string(picked[0]);
    task << (y ? ", " : "") << "\"" << name << "\"";
    matches << (y ? ",\n" : "") << "{\"name\": \"" << name << "\", \"matched_nodes\": [";
    for (int j = 0; j < 5; ++j) {
      matches << (j ? ", " : "") << "{\"wnid\": \""
              << g.node(static_cast<std::size_t>(picked[static_cast<std::size_t>(j)])).wnid
              << "\", \"weight\": " << w[j] << "}";
    }
    matches << "]}";
  }
  task << "]}\n";
  matches << "]}\n";
  std::cout << "wrote " << path << ": " << n << " nodes, " << p << " images, "
            << probe.node_images.size() << " memberships, " << models << " models, d=" << d << "\n";
  return 0;
}
