// The synthetic world: planning (domains, concepts, models, tasks), rendering, truth, files.
// docs/synthetic-world.md explains the construction and why selection can only see competence
// through labeling.
#include "mll/synth/world.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "internal.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/log.hpp"
#include "mll/image/image.hpp"
#include "mll/tokenize/tokenizer.hpp"
#include "mll/zoo/authored.hpp"
#include "mll/zoo/model_spec.hpp"

namespace mll::synth {
namespace {

using detail::clip_bpe_spec;
using detail::Rng;
using detail::stream;
using Vec = std::vector<double>;

constexpr int kFeatures = 3 * kGrid * kGrid;  // pooled features the image tower reads
constexpr int kCells = kGrid * kGrid;
constexpr int kDim = 32;       // concept space = text width = hidden width = embedding width
constexpr int kVocab = 49408;  // CLIP BPE
constexpr int kMaxDomains = kFeatures / kDim;
// The models' input normalisation (the sidecar default, OpenAI CLIP's).
constexpr float kMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
constexpr float kStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
constexpr int kHeldOutPerSeed = 2;  // fresh renders per seed for imagenet_top1 and domain_top1

// The constants of the construction (docs/synthetic-world.md, "Constants").
struct Constants {
  double depth_decay = 0.95;  // concept step at depth d is depth_decay^d
  double amplitude = 3.0;     // feature amplitude of a unit concept vector in its block
  double image_noise = 0.05;  // per-feature noise of an image in its domain's block
  double clutter = 0.02;      // per-feature noise in the other blocks
  double tanh_scale = 0.25;   // keeps the image tower's tanh close to linear
  double generalist_best = 0.5;
  double generalist_worst = 1.2;
  double specialist_sharp = 0.1;
  double specialist_blurry = 1.4;
  double blur_jitter = 0.1;      // log-normal spread of a model's blur across domains
  double fade_desaturate = 0.3;  // "faded" style: share of each pixel replaced by its luminance
  double fade_contrast = 0.8;    // contrast around mid-grey
  double fade_grain = 6.0;       // pixel noise (uint8 units)
};

std::string lemma_text(const std::string& lemma) {
  std::string out = lemma;
  std::replace(out.begin(), out.end(), '_', ' ');
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// English plural of a phrase's last word, by the regular rules (WordNet's morphology undoes them).
std::string plural(const std::string& phrase) {
  auto ends = [&](const std::string& suffix) {
    return phrase.size() >= suffix.size() &&
           phrase.compare(phrase.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends("man") && !ends("human")) return phrase.substr(0, phrase.size() - 3) + "men";
  if (ends("s") || ends("x") || ends("z") || ends("ch") || ends("sh")) return phrase + "es";
  if (ends("y") && phrase.size() >= 2 &&
      std::string("aeiou").find(phrase[phrase.size() - 2]) == std::string::npos) {
    return phrase.substr(0, phrase.size() - 1) + "ies";
  }
  return phrase + "s";
}

std::string task_file_name(const std::string& lemma) {
  std::string out;
  for (const char c : lower(lemma_text(lemma))) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      out += c;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "task" : out;
}

struct ModelPlan {
  ModelTruth truth;
  MatrixD reading;   // kDim x kFeatures: what the image tower computes before tanh
  MatrixD rotation;  // kDim x kDim: the model's own embedding basis (both towers)
};

struct TaskPlan {
  std::string name;
  std::string style;
  std::int32_t root = 0;
  std::vector<std::int32_t> nodes;
  std::vector<std::string> classes;
};

class World {
 public:
  World(const graph::Graph& graph, const WorldOptions& options) : g_(graph), opt_(options) {}

  void plan() {
    collect_seeds();
    plan_domains();
    plan_concepts();
    plan_models();
    plan_tasks();
  }

  void fit_text() {
    std::vector<detail::TextExample> examples;
    for (std::size_t v = 0; v < g_.size(); ++v) {
      const auto& node = g_.node(v);
      const auto n = static_cast<std::int32_t>(v);
      examples.push_back({node.caption, n, 2.0});
      for (const auto& lemma : node.lemmas) {
        const std::string one = lemma_text(lemma), many = plural(one);
        for (const auto& text :
             {one, many, "a photo of a " + one + ".", "a photo of a " + many + "."}) {
          examples.push_back({text, n, 1.0});
        }
      }
    }
    tokens_ = detail::fit_token_rows(examples, concept_, kDim, kVocab);
    tokenizer_ = tokenize::make_tokenizer(clip_bpe_spec());
  }

  // The text tower's direction for `text` in concept space (the model's rotation aside, which
  // no cosine sees): the sum of its token rows, normalised.
  Vec embed_text(const std::string& text) const {
    Vec out(kDim, 0.0);
    for (const auto id : tokenizer_->encode_padded(text)) {
      if (id == tokenizer_->pad_id()) continue;
      const float* row = &tokens_[static_cast<std::size_t>(id) * kDim];
      for (int k = 0; k < kDim; ++k) out[k] += row[k];
    }
    return normalized(std::move(out));
  }

  // The image tower of `model` on pooled features, in concept space, normalised.
  Vec embed_image(const ModelPlan& model, const Vec& pooled) const {
    Vec out(kDim, 0.0);
    const double s = c_.tanh_scale;
    for (int k = 0; k < kDim; ++k) {
      double z = 0;
      for (int f = 0; f < kFeatures; ++f) z += model.reading.at(k, f) * pooled[f];
      out[k] = std::tanh(s * z) / s;
    }
    return normalized(std::move(out));
  }

  // Pooled features of seed `v`'s concept plus this image's noise.
  Vec features(std::int32_t v, Rng& rng) const {
    Vec x(kFeatures);
    for (auto& e : x) e = c_.clutter * rng.normal();
    const int d = domain_of_.at(static_cast<std::size_t>(v));
    const auto& block = blocks_[static_cast<std::size_t>(d)];
    const MatrixD& lift = lifts_[static_cast<std::size_t>(d)];
    const Vec& c = concept_[static_cast<std::size_t>(v)];
    for (int j = 0; j < lift.rows; ++j) {
      double value = 0;
      for (int k = 0; k < kDim; ++k) value += lift.at(j, k) * c[k];
      x[static_cast<std::size_t>(block[static_cast<std::size_t>(j)])] +=
          c_.amplitude * value + c_.image_noise * rng.normal();
    }
    return x;
  }

  // Renders pooled features as cells of flat colour with a zero-mean checker texture.
  image::RgbImage render(const Vec& x, const std::string& style, Rng& rng) const {
    const int size = opt_.image_size;
    const int cell = size / kGrid;
    image::RgbImage img(size, size);
    for (int cy = 0; cy < kGrid; ++cy) {
      for (int cx = 0; cx < kGrid; ++cx) {
        for (int ch = 0; ch < 3; ++ch) {
          const double norm = x[static_cast<std::size_t>(ch * kCells + cy * kGrid + cx)];
          double base = 255.0 * (kMean[ch] + kStd[ch] * norm);
          base = std::clamp(base, 16.0, 239.0);
          const double texture = 12.0 * rng.uniform();
          for (int i = 0; i < cell; ++i) {
            std::uint8_t* row = img.row(cy * cell + i);
            for (int j = 0; j < cell; ++j) {
              const double sign = ((i + j) % 2 == 0) ? 1.0 : -1.0;
              row[3 * (cx * cell + j) + ch] =
                  static_cast<std::uint8_t>(std::lround(base + sign * texture));
            }
          }
        }
      }
    }
    if (style == "faded") {
      // Washed-out colours, lower contrast and film grain, around the mean colour of the models'
      // normalisation (so that the style removes signal rather than adding a constant offset).
      const double mean[3] = {255.0 * kMean[0], 255.0 * kMean[1], 255.0 * kMean[2]};
      const double mean_gray = 0.299 * mean[0] + 0.587 * mean[1] + 0.114 * mean[2];
      std::uint8_t* p = img.data();
      for (int i = 0; i < size * size; ++i, p += 3) {
        const double gray = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] - mean_gray;
        for (int ch = 0; ch < 3; ++ch) {
          const double mixed =
              (1.0 - c_.fade_desaturate) * (p[ch] - mean[ch]) + c_.fade_desaturate * gray;
          const double v = mean[ch] + c_.fade_contrast * mixed + c_.fade_grain * rng.normal();
          p[ch] = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
        }
      }
    }
    return img;
  }

  // What the model's preprocessing and pooling compute from the pixels.
  Vec pooled(const image::RgbImage& img) const {
    const int cell = opt_.image_size / kGrid;
    Vec x(kFeatures, 0.0);
    for (int y = 0; y < img.height(); ++y) {
      const std::uint8_t* row = img.row(y);
      for (int xx = 0; xx < img.width(); ++xx) {
        const int f = (y / cell) * kGrid + xx / cell;
        for (int ch = 0; ch < 3; ++ch) {
          const double v = (row[3 * xx + ch] / 255.0 - kMean[ch]) / kStd[ch];
          x[static_cast<std::size_t>(ch * kCells + f)] += v;
        }
      }
    }
    for (auto& e : x) e /= static_cast<double>(cell * cell);
    return x;
  }

  void compute_truth() {
    std::vector<Vec> node_text(g_.size());
    for (std::size_t v = 0; v < g_.size(); ++v) node_text[v] = embed_text(g_.node(v).caption);
    std::vector<Vec> seed_prompt;
    for (const auto s : seeds_) {
      seed_prompt.push_back(embed_text(
          "a photo of a " + lemma_text(g_.node(static_cast<std::size_t>(s)).lemmas[0]) + "."));
    }
    // Held-out renders of every seed, clean style.
    std::vector<Vec> heldout;
    std::vector<std::size_t> heldout_seed;
    for (std::size_t i = 0; i < seeds_.size(); ++i) {
      const auto& wnid = g_.node(static_cast<std::size_t>(seeds_[i])).wnid;
      Rng rng(stream(opt_.seed, "heldout/" + wnid));
      for (int k = 0; k < kHeldOutPerSeed; ++k) {
        heldout.push_back(pooled(render(features(seeds_[i], rng), "clean", rng)));
        heldout_seed.push_back(i);
      }
    }
    for (auto& m : models_) {
      std::size_t correct_seed = 0;
      std::vector<double> dom_hits(domains_.size(), 0.0), dom_total(domains_.size(), 0.0);
      for (std::size_t h = 0; h < heldout.size(); ++h) {
        const Vec e = embed_image(m, heldout[h]);
        const std::size_t si = heldout_seed[h];
        const std::int32_t v = seeds_[si];
        if (argmax(e, seed_prompt) == si) ++correct_seed;
        const auto pred = static_cast<std::int32_t>(argmax(e, node_text));
        const bool hit = pred == v || below_[static_cast<std::size_t>(v)].count(pred) > 0;
        const auto d = static_cast<std::size_t>(domain_of_[static_cast<std::size_t>(v)]);
        dom_hits[d] += hit ? 1.0 : 0.0;
        dom_total[d] += 1.0;
      }
      m.truth.imagenet_top1 =
          static_cast<double>(correct_seed) / static_cast<double>(heldout.size());
      m.truth.domain_top1.clear();
      for (std::size_t d = 0; d < domains_.size(); ++d) {
        m.truth.domain_top1.push_back(dom_total[d] > 0 ? dom_hits[d] / dom_total[d] : 0.0);
      }
    }
  }

  // Renders the task images (kept for writing) and scores every model on them.
  void render_tasks() {
    task_images_.assign(tasks_.size(), {});
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      const auto& task = tasks_[t];
      TaskTruth truth;
      truth.name = task.name;
      truth.style = task.style;
      truth.root = g_.node(static_cast<std::size_t>(task.root)).wnid;
      truth.classes = task.classes;
      std::vector<Vec> prompts;
      for (std::size_t c = 0; c < task.classes.size(); ++c) {
        truth.wnids.push_back(g_.node(static_cast<std::size_t>(task.nodes[c])).wnid);
        prompts.push_back(embed_text("a photo of a " + task.classes[c] + "."));
      }
      std::vector<Vec> inputs;
      std::vector<std::size_t> labels;
      task_images_[t].resize(task.classes.size());
      for (std::size_t c = 0; c < task.classes.size(); ++c) {
        Rng rng(stream(opt_.seed, "task/" + task.name + "/" + truth.wnids[c]));
        for (int k = 0; k < opt_.task_images_per_class; ++k) {
          auto img = render(features(task.nodes[c], rng), task.style, rng);
          inputs.push_back(pooled(img));
          labels.push_back(c);
          task_images_[t][c].push_back(std::move(img));
        }
      }
      for (const auto& m : models_) {
        std::vector<double> hits(task.classes.size(), 0.0);
        for (std::size_t i = 0; i < inputs.size(); ++i) {
          if (argmax(embed_image(m, inputs[i]), prompts) == labels[i]) hits[labels[i]] += 1.0;
        }
        double sum = 0;
        for (auto& h : hits) {
          h /= opt_.task_images_per_class;
          sum += h;
        }
        truth.class_recall.push_back(hits);
        truth.accuracy.push_back(sum / static_cast<double>(hits.size()));
      }
      const auto best = std::max_element(truth.accuracy.begin(), truth.accuracy.end());
      truth.best_model = models_[static_cast<std::size_t>(best - truth.accuracy.begin())].truth.id;
      std::size_t inb = 0;
      for (std::size_t m = 1; m < models_.size(); ++m) {
        if (models_[m].truth.imagenet_top1 > models_[inb].truth.imagenet_top1) inb = m;
      }
      truth.inb_model = models_[inb].truth.id;
      task_truth_.push_back(std::move(truth));
    }
  }

  void write(const std::string& out) {
    namespace sfs = std::filesystem;
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto s : seeds_)
      sfs::create_directories(out + "/images/" + g_.node(static_cast<std::size_t>(s)).wnid);
    // Each PNG is written durably (fsync, rename), so writing is latency-bound: several writers
    // overlap the waits. Every seed has its own random stream, so the files do not depend on
    // which thread writes them.
    parallel_for(seeds_.size(), [&](std::size_t i) {
      const auto& wnid = g_.node(static_cast<std::size_t>(seeds_[i])).wnid;
      Rng rng(stream(opt_.seed, "probe/" + wnid));
      for (int k = 0; k < opt_.images_per_concept; ++k) {
        image::write_png(out + "/images/" + wnid + "/" + wnid + "_" + std::to_string(k) + ".png",
                         render(features(seeds_[i], rng), "clean", rng));
      }
    });
    report_.probe_images = seeds_.size() * static_cast<std::size_t>(opt_.images_per_concept);
    log::info("wrote ", report_.probe_images, " probe images in ", seconds_since(t0), " s");

    const auto t1 = std::chrono::steady_clock::now();
    sfs::create_directories(out + "/models");
    zoo::ZooManifest manifest(out + "/zoo.json");
    for (const auto& m : models_) {
      const auto model = zoo::write_authored_model(authored_params(m), out + "/models");
      manifest.add_sidecar(model.sidecar_path);
    }
    manifest.save();
    log::info("wrote ", models_.size(), " models in ", seconds_since(t1), " s");

    const auto t2 = std::chrono::steady_clock::now();
    std::vector<std::pair<std::string, const image::RgbImage*>> files;
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      const auto& task = tasks_[t];
      const std::string dir = out + "/tasks/" + task.name;
      for (std::size_t c = 0; c < task.classes.size(); ++c) {
        const std::string class_dir = dir + "/" + task.classes[c];
        sfs::create_directories(class_dir);
        for (std::size_t k = 0; k < task_images_[t][c].size(); ++k) {
          files.emplace_back(class_dir + "/" + std::to_string(k) + ".png", &task_images_[t][c][k]);
        }
      }
      write_json(out + "/tasks/" + task.name + ".json", task_json(task).dump(2) + "\n");
    }
    parallel_for(files.size(),
                 [&](std::size_t i) { image::write_png(files[i].first, *files[i].second); });
    report_.task_images = files.size();
    log::info("wrote ", tasks_.size(), " tasks (", report_.task_images, " images) in ",
              seconds_since(t2), " s");
    write_json(out + "/truth.json", truth_json().dump(2) + "\n");
  }

  WorldReport report(const std::string& out) {
    report_.out_dir = out;
    report_.domains = domains_;
    report_.models.clear();
    for (const auto& m : models_) report_.models.push_back(m.truth);
    report_.tasks = task_truth_;
    return report_;
  }

 private:
  // Runs fn(0 .. n-1) on a few threads; the first exception is rethrown after all have stopped.
  static void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn) {
    constexpr std::size_t kThreads = 8;
    std::atomic<std::size_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto worker = [&] {
      for (std::size_t i = next++; i < n; i = next++) {
        try {
          fn(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
          next = n;
        }
      }
    };
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < std::min(kThreads, n); ++t) threads.emplace_back(worker);
    for (auto& th : threads) th.join();
    if (error) std::rethrow_exception(error);
  }

  static double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::round(
               10.0 *
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) /
           10.0;
  }

  static Vec normalized(Vec v) {
    double n = 0;
    for (const double e : v) n += e * e;
    n = std::sqrt(n);
    if (n > 0) {
      for (auto& e : v) e /= n;
    }
    return v;
  }

  static std::size_t argmax(const Vec& e, const std::vector<Vec>& candidates) {
    std::size_t best = 0;
    double best_score = -1e300;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      double s = 0;
      for (int k = 0; k < kDim; ++k) s += e[k] * candidates[i][k];
      if (s > best_score) {
        best_score = s;
        best = i;
      }
    }
    return best;
  }

  void collect_seeds() {
    for (std::size_t v = 0; v < g_.size(); ++v) {
      if (g_.node(v).seed) seeds_.push_back(static_cast<std::int32_t>(v));
    }
    if (seeds_.empty()) MLL_THROW(UsageError, "the graph has no seed nodes to render");
    // Seed sets below every node, children before parents.
    seeds_below_.assign(g_.size(), {});
    below_.assign(g_.size(), {});
    const auto& topo = g_.topological_order();
    for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
      const auto v = static_cast<std::size_t>(*it);
      std::set<std::int32_t> seeds;
      if (g_.node(v).seed) seeds.insert(*it);
      for (const auto c : g_.children(v)) {
        const auto& cs = seeds_below_[static_cast<std::size_t>(c)];
        seeds.insert(cs.begin(), cs.end());
        below_[v].insert(c);
        const auto& cb = below_[static_cast<std::size_t>(c)];
        below_[v].insert(cb.begin(), cb.end());
      }
      seeds_below_[v].assign(seeds.begin(), seeds.end());
    }
  }

  // Splits the seeds into subtrees of at most ~1.25x the domain size, then packs subtrees that
  // are neighbours in depth-first order into `domains` groups of similar size.
  void plan_domains() {
    const int wanted = std::clamp(opt_.domains, 1, kMaxDomains);
    const double target = static_cast<double>(seeds_.size()) / wanted;
    std::vector<char> assigned(g_.size(), 0);
    struct Piece {
      std::int32_t root;
      std::vector<std::int32_t> seeds;
    };
    std::vector<Piece> pieces;
    std::vector<char> visited(g_.size(), 0);
    std::function<void(std::int32_t)> visit = [&](std::int32_t u) {
      const auto ui = static_cast<std::size_t>(u);
      if (visited[ui]) return;
      visited[ui] = 1;
      std::vector<std::int32_t> free;
      for (const auto s : seeds_below_[ui]) {
        if (!assigned[static_cast<std::size_t>(s)]) free.push_back(s);
      }
      if (free.empty()) return;
      if (static_cast<double>(free.size()) <= 1.25 * target || g_.children(ui).empty()) {
        for (const auto s : free) assigned[static_cast<std::size_t>(s)] = 1;
        pieces.push_back({u, std::move(free)});
        return;
      }
      if (g_.node(ui).seed && !assigned[ui]) {
        assigned[ui] = 1;
        pieces.push_back({u, {u}});
      }
      for (const auto c : g_.children(ui)) visit(c);
    };
    for (const auto r : g_.roots()) visit(r);

    const int count = std::min<int>(wanted, static_cast<int>(pieces.size()));
    domains_.assign(static_cast<std::size_t>(count), {});
    std::vector<std::vector<std::size_t>> members(static_cast<std::size_t>(count));
    const double per = static_cast<double>(seeds_.size()) / count;
    double cumulative = 0;
    int d = 0;
    for (std::size_t p = 0; p < pieces.size(); ++p) {
      const double n = static_cast<double>(pieces[p].seeds.size());
      auto& dom = domains_[static_cast<std::size_t>(d)];
      const int remaining_pieces = static_cast<int>(pieces.size() - p);
      if (!dom.seeds.empty() && d < count - 1 &&
          (cumulative + n / 2 > (d + 1) * per || remaining_pieces <= count - 1 - d)) {
        ++d;
      }
      auto& target_dom = domains_[static_cast<std::size_t>(d)];
      target_dom.roots.push_back(g_.node(static_cast<std::size_t>(pieces[p].root)).wnid);
      target_dom.seeds.insert(target_dom.seeds.end(), pieces[p].seeds.begin(),
                              pieces[p].seeds.end());
      members[static_cast<std::size_t>(d)].push_back(p);
      cumulative += n;
    }
    domain_of_.assign(g_.size(), -1);
    for (std::size_t i = 0; i < domains_.size(); ++i) {
      auto& dom = domains_[i];
      // Named after its two largest subtrees.
      auto by_size = members[i];
      std::stable_sort(by_size.begin(), by_size.end(), [&](std::size_t a, std::size_t b) {
        return pieces[a].seeds.size() > pieces[b].seeds.size();
      });
      for (std::size_t k = 0; k < std::min<std::size_t>(2, by_size.size()); ++k) {
        if (k > 0) dom.name += " + ";
        dom.name +=
            lemma_text(g_.node(static_cast<std::size_t>(pieces[by_size[k]].root)).lemmas.at(0));
      }
      std::sort(dom.seeds.begin(), dom.seeds.end());
      for (const auto s : dom.seeds) domain_of_[static_cast<std::size_t>(s)] = static_cast<int>(i);
    }
    // Feature blocks: feature f belongs to block f mod count, so every block spans all cells and
    // channels; each block gets a random orthonormal lift of the concept space.
    blocks_.assign(domains_.size(), {});
    for (int f = 0; f < kFeatures; ++f) {
      blocks_[static_cast<std::size_t>(f % count)].push_back(f);
    }
    Rng rng(stream(opt_.seed, "lifts"));
    for (const auto& block : blocks_) {
      lifts_.push_back(detail::random_orthonormal(static_cast<int>(block.size()), kDim, rng));
    }
  }

  // Top down: a node's concept is the mean of its parents' plus a step that shrinks with depth,
  // so concepts close in the graph are close in space. Scaled so that seeds have mean norm 1.
  void plan_concepts() {
    concept_.assign(g_.size(), Vec(kDim, 0.0));
    const bool single_root = g_.roots().size() == 1;
    for (const auto v : g_.topological_order()) {
      const auto vi = static_cast<std::size_t>(v);
      Rng rng(stream(opt_.seed, "concept/" + g_.node(vi).wnid));
      Vec c(kDim, 0.0);
      const auto& parents = g_.parents(vi);
      for (const auto p : parents) {
        for (int k = 0; k < kDim; ++k) c[k] += concept_[static_cast<std::size_t>(p)][k];
      }
      if (!parents.empty()) {
        for (auto& e : c) e /= static_cast<double>(parents.size());
      }
      const int depth = g_.max_depth()[vi];
      const double step = (parents.empty() && single_root) ? 0.0 : std::pow(c_.depth_decay, depth);
      for (int k = 0; k < kDim; ++k) c[k] += step * rng.normal();
      concept_[vi] = std::move(c);
    }
    double mean_norm = 0;
    for (const auto s : seeds_) {
      double n = 0;
      for (const double e : concept_[static_cast<std::size_t>(s)]) n += e * e;
      mean_norm += std::sqrt(n);
    }
    mean_norm /= static_cast<double>(seeds_.size());
    if (mean_norm > 0) {
      for (auto& c : concept_) {
        for (auto& e : c) e /= mean_norm;
      }
    }
  }

  void plan_models() {
    if (opt_.models < 1) MLL_THROW(UsageError, "--models must be at least 1");
    const int count = opt_.models;
    const int domains = static_cast<int>(domains_.size());
    const int generalists = count == 1 ? 1 : std::max(1, (count + 1) / 3);
    const int specialists = count - generalists;
    Rng rng(stream(opt_.seed, "models"));
    std::vector<int> order(static_cast<std::size_t>(domains));
    for (int d = 0; d < domains; ++d) order[static_cast<std::size_t>(d)] = d;
    rng.shuffle(order);

    std::vector<ModelPlan> plans;
    for (int i = 0; i < specialists; ++i) {
      ModelPlan m;
      m.truth.kind = "specialist";
      if (i < domains || domains < 2) {
        m.truth.sharp_domains = {order[static_cast<std::size_t>(i % domains)]};
      } else {
        const int a = static_cast<int>(rng.below(static_cast<std::uint64_t>(domains)));
        int b = static_cast<int>(rng.below(static_cast<std::uint64_t>(domains - 1)));
        if (b >= a) ++b;
        m.truth.sharp_domains = {std::min(a, b), std::max(a, b)};
      }
      for (int d = 0; d < domains; ++d) {
        const bool sharp = std::find(m.truth.sharp_domains.begin(), m.truth.sharp_domains.end(),
                                     d) != m.truth.sharp_domains.end();
        // Two-domain specialists are a little less sharp than single-domain ones.
        const double base =
            sharp ? c_.specialist_sharp * (m.truth.sharp_domains.size() > 1 ? 1.5 : 1.0)
                  : c_.specialist_blurry;
        m.truth.blur.push_back(base * std::exp(c_.blur_jitter * rng.normal()));
      }
      plans.push_back(std::move(m));
    }
    for (int i = 0; i < generalists; ++i) {
      ModelPlan m;
      m.truth.kind = "generalist";
      const double t = generalists == 1 ? 0.0 : static_cast<double>(i) / (generalists - 1);
      const double level = c_.generalist_best + t * (c_.generalist_worst - c_.generalist_best);
      for (int d = 0; d < domains; ++d) {
        m.truth.blur.push_back(level * std::exp(c_.blur_jitter * rng.normal()));
      }
      plans.push_back(std::move(m));
    }
    // Zoo order and ids carry no hint of the kind.
    rng.shuffle(plans);
    for (std::size_t i = 0; i < plans.size(); ++i) {
      auto& m = plans[i];
      m.truth.id = (i < 10 ? "m0" : "m") + std::to_string(i);
      Rng mr(stream(opt_.seed, "model/" + m.truth.id));
      m.rotation = detail::random_orthonormal(kDim, kDim, mr);
      m.reading = MatrixD::zeros(kDim, kFeatures);
      // reading = lift^T + blur * noise on each block: the noise term is a fixed random map, so
      // a blurry model confuses concepts whose fine differences are smaller than its error.
      for (std::size_t b = 0; b < blocks_.size(); ++b) {
        const double blur = m.truth.blur[b];
        // Scaled so that the noise map's image of a concept has the concept's norm times blur,
        // whatever the block size.
        const double noise_std = 1.0 / std::sqrt(static_cast<double>(kDim));
        for (std::size_t j = 0; j < blocks_[b].size(); ++j) {
          const int f = blocks_[b][j];
          for (int k = 0; k < kDim; ++k) {
            m.reading.at(k, f) =
                lifts_[b].at(static_cast<int>(j), k) + blur * noise_std * mr.normal();
          }
        }
      }
    }
    models_ = std::move(plans);
  }

  // Tasks: disjoint subtrees holding enough seeds, preferring large ones and new domains.
  void plan_tasks() {
    const int want_classes = std::max(2, opt_.classes_per_task);
    const std::size_t lo = static_cast<std::size_t>(std::max(3, want_classes / 2));
    const std::size_t hi = static_cast<std::size_t>(12 * want_classes);
    Rng rng(stream(opt_.seed, "tasks"));
    std::vector<std::pair<double, std::int32_t>> candidates;
    for (std::size_t u = 0; u < g_.size(); ++u) {
      const auto n = seeds_below_[u].size();
      if (g_.children(u).empty() || n < lo || n > hi) continue;
      // Exponential race: larger subtrees tend to come first.
      const double key = -std::log(1.0 - rng.uniform()) / static_cast<double>(n);
      candidates.push_back({key, static_cast<std::int32_t>(u)});
    }
    std::sort(candidates.begin(), candidates.end());

    std::map<std::string, int> lemma_count;
    for (const auto& node : g_.nodes()) {
      for (const auto& l : node.lemmas) ++lemma_count[lower(lemma_text(l))];
    }
    std::set<std::int32_t> used_seeds;
    std::set<int> used_domains;
    std::set<std::string> names;
    std::vector<std::int32_t> roots;
    for (int pass = 0; pass < 2 && static_cast<int>(tasks_.size()) < opt_.tasks; ++pass) {
      for (const auto& [key, u] : candidates) {
        if (static_cast<int>(tasks_.size()) >= opt_.tasks) break;
        const auto& seeds = seeds_below_[static_cast<std::size_t>(u)];
        bool overlap = std::find(roots.begin(), roots.end(), u) != roots.end();
        for (const auto s : seeds) overlap = overlap || used_seeds.count(s) > 0;
        for (const auto r : roots) {
          overlap = overlap || below_[static_cast<std::size_t>(r)].count(u) > 0 ||
                    below_[static_cast<std::size_t>(u)].count(r) > 0;
        }
        if (overlap) continue;
        std::map<int, int> votes;
        for (const auto s : seeds) ++votes[domain_of_[static_cast<std::size_t>(s)]];
        const int domain = std::max_element(votes.begin(), votes.end(), [](auto& a, auto& b) {
                             return a.second < b.second;
                           })->first;
        if (pass == 0 && used_domains.count(domain)) continue;
        TaskPlan task;
        task.root = u;
        task.style = tasks_.size() % 3 == 1 ? "faded" : "clean";
        std::string name = task_file_name(g_.node(static_cast<std::size_t>(u)).lemmas.at(0));
        if (task.style == "faded") name += "-faded";
        while (names.count(name)) name += "-b";
        task.name = name;
        pick_classes(task, seeds, want_classes, lemma_count, rng);
        if (task.classes.size() < 2) continue;
        names.insert(task.name);
        roots.push_back(u);
        used_domains.insert(domain);
        used_seeds.insert(seeds.begin(), seeds.end());
        tasks_.push_back(std::move(task));
      }
    }
    if (tasks_.empty() && opt_.tasks > 0)
      log::warn("the graph offers no subtree with enough seeds for a task");
  }

  // Human class names: the first lemma, sometimes a synonym or a plural; never a lemma that
  // names another node of the graph; unique within the task.
  void pick_classes(TaskPlan& task, std::vector<std::int32_t> pool, int want,
                    const std::map<std::string, int>& lemma_count, Rng& rng) const {
    rng.shuffle(pool);
    std::set<std::string> taken;
    for (const auto v : pool) {
      if (static_cast<int>(task.classes.size()) >= want) break;
      const auto& lemmas = g_.node(static_cast<std::size_t>(v)).lemmas;
      std::vector<std::string> unique;
      for (const auto& l : lemmas) {
        if (lemma_count.at(lower(lemma_text(l))) == 1) unique.push_back(lemma_text(l));
      }
      if (unique.empty()) unique.push_back(lemma_text(lemmas.at(0)));
      const double r = rng.uniform();
      std::string name = unique[0];
      if (r >= 0.55 && r < 0.8 && unique.size() > 1) {
        name = unique[1 + rng.below(unique.size() - 1)];
      } else if (r >= 0.8) {
        name = plural(name);
      }
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
          taken.count(lower(name))) {
        continue;
      }
      taken.insert(lower(name));
      task.classes.push_back(name);
      task.nodes.push_back(v);
    }
  }

  zoo::AuthoredModelParams authored_params(const ModelPlan& m) const {
    zoo::AuthoredModelParams p;
    p.kind = "small";
    p.id = m.truth.id;
    p.seed = opt_.seed;
    p.embed_dim = kDim;
    p.image_size = opt_.image_size;
    p.imagenet_top1 = std::round(m.truth.imagenet_top1 * 1e4) / 1e4;
    p.small_grid = kGrid;
    p.small_hidden = kDim;
    p.small_text_width = kDim;
    const double s = c_.tanh_scale;
    std::vector<float> w1(static_cast<std::size_t>(kDim) * kFeatures);
    for (int k = 0; k < kDim; ++k) {
      for (int f = 0; f < kFeatures; ++f) {
        w1[static_cast<std::size_t>(k) * kFeatures + f] =
            static_cast<float>(s * m.reading.at(k, f));
      }
    }
    std::vector<float> w2(static_cast<std::size_t>(kDim) * kDim), tw(w2.size());
    for (int r = 0; r < kDim; ++r) {
      for (int k = 0; k < kDim; ++k) {
        w2[static_cast<std::size_t>(r) * kDim + k] = static_cast<float>(m.rotation.at(r, k) / s);
        tw[static_cast<std::size_t>(r) * kDim + k] = static_cast<float>(m.rotation.at(r, k));
      }
    }
    p.weights.image_w1 = std::move(w1);
    p.weights.image_b1 = std::vector<float>(kDim, 0.0f);
    p.weights.image_w2 = std::move(w2);
    p.weights.image_b2 = std::vector<float>(kDim, 0.0f);
    p.weights.token_embedding = tokens_;
    p.weights.text_w = std::move(tw);
    p.weights.text_b = std::vector<float>(kDim, 0.0f);
    return p;
  }

  nlohmann::ordered_json task_json(const TaskPlan& task) const {
    const std::string what =
        plural(lemma_text(g_.node(static_cast<std::size_t>(task.root)).lemmas.at(0)));
    nlohmann::ordered_json j;
    j["name"] = task.name;
    j["classes"] = task.classes;
    j["domain"] = (task.style == "faded" ? "faded, grainy photos of " : "photos of ") + what;
    j["task"] = "classification of " + what;
    j["images"] = {{"dir", task.name}};
    j["labeled"] = true;
    return j;
  }

  nlohmann::ordered_json truth_json() const {
    using nlohmann::ordered_json;
    ordered_json j;
    j["note"] =
        "Ground truth of the synthetic world. Selection never reads this file; see "
        "docs/synthetic-world.md.";
    j["seed"] = opt_.seed;
    j["options"] = {{"models", opt_.models},
                    {"images_per_concept", opt_.images_per_concept},
                    {"image_size", opt_.image_size},
                    {"tasks", opt_.tasks},
                    {"classes_per_task", opt_.classes_per_task},
                    {"task_images_per_class", opt_.task_images_per_class},
                    {"domains", opt_.domains}};
    ordered_json doms = ordered_json::array();
    for (const auto& d : domains_) {
      doms.push_back({{"name", d.name}, {"roots", d.roots}, {"seeds", d.seeds.size()}});
    }
    j["domains"] = doms;
    ordered_json models = ordered_json::array();
    for (const auto& m : models_) {
      ordered_json mj;
      mj["id"] = m.truth.id;
      mj["kind"] = m.truth.kind;
      std::vector<std::string> sharp;
      for (const int d : m.truth.sharp_domains)
        sharp.push_back(domains_[static_cast<std::size_t>(d)].name);
      mj["sharp_on"] = sharp;
      mj["imagenet_top1"] = rounded(m.truth.imagenet_top1);
      ordered_json per = ordered_json::object();
      ordered_json blur = ordered_json::object();
      for (std::size_t d = 0; d < domains_.size(); ++d) {
        per[domains_[d].name] = rounded(m.truth.domain_top1[d]);
        blur[domains_[d].name] = rounded(m.truth.blur[d]);
      }
      mj["domain_top1"] = per;
      mj["blur"] = blur;
      models.push_back(mj);
    }
    j["models"] = models;
    ordered_json tasks = ordered_json::array();
    for (const auto& t : task_truth_) {
      ordered_json tj;
      tj["name"] = t.name;
      tj["style"] = t.style;
      tj["root"] = t.root;
      tj["classes"] = t.classes;
      tj["wnids"] = t.wnids;
      tj["best_model"] = t.best_model;
      tj["inb_model"] = t.inb_model;
      ordered_json acc = ordered_json::object();
      ordered_json recall = ordered_json::object();
      for (std::size_t m = 0; m < models_.size(); ++m) {
        acc[models_[m].truth.id] = rounded(t.accuracy[m]);
        std::vector<double> r;
        for (const double x : t.class_recall[m]) r.push_back(rounded(x));
        recall[models_[m].truth.id] = r;
      }
      tj["accuracy"] = acc;
      tj["class_recall"] = recall;
      tasks.push_back(tj);
    }
    j["tasks"] = tasks;
    return j;
  }

  static double rounded(double x) { return std::round(x * 1e4) / 1e4; }

  static void write_json(const std::string& path, const std::string& text) {
    fs::AtomicOutput out(path);
    {
      std::ofstream file(out.temp_path(), std::ios::binary | std::ios::trunc);
      file << text;
      file.flush();
      if (!file) MLL_THROW(IoError, path, ": write failed");
    }
    out.commit();
  }

  const graph::Graph& g_;
  WorldOptions opt_;
  Constants c_;
  std::vector<std::int32_t> seeds_;
  std::vector<std::vector<std::int32_t>> seeds_below_;
  std::vector<std::set<std::int32_t>> below_;  // strict descendants
  std::vector<Domain> domains_;
  std::vector<int> domain_of_;
  std::vector<std::vector<int>> blocks_;
  std::vector<MatrixD> lifts_;
  std::vector<Vec> concept_;
  std::vector<ModelPlan> models_;
  std::vector<TaskPlan> tasks_;
  std::vector<float> tokens_;
  std::unique_ptr<tokenize::Tokenizer> tokenizer_;
  std::vector<std::vector<std::vector<image::RgbImage>>> task_images_;
  std::vector<TaskTruth> task_truth_;
  WorldReport report_;
};

void check_options(const WorldOptions& o) {
  if (o.models < 1) MLL_THROW(UsageError, "--models must be at least 1");
  if (o.images_per_concept < 1) MLL_THROW(UsageError, "--images-per-concept must be at least 1");
  if (o.image_size < 16 || o.image_size % 16 != 0 || o.image_size > 1024) {
    MLL_THROW(UsageError, "--size must be a multiple of 16 in [16, 1024], got ", o.image_size);
  }
  if (o.tasks < 0) MLL_THROW(UsageError, "--tasks must be >= 0");
  if (o.classes_per_task < 2) MLL_THROW(UsageError, "--classes must be at least 2");
  if (o.task_images_per_class < 1) MLL_THROW(UsageError, "--task-images must be at least 1");
  if (o.domains < 1 || o.domains > kMaxDomains) {
    MLL_THROW(UsageError, "--domains must be in [1, ", kMaxDomains, "], got ", o.domains);
  }
}

// The entries write_world creates; --force removes exactly these.
const char* const kEntries[] = {"images", "models", "tasks", "zoo.json", "truth.json"};

void prepare_out_dir(const std::string& out, bool force) {
  namespace sfs = std::filesystem;
  std::error_code ec;
  if (sfs::exists(out, ec)) {
    if (!sfs::is_directory(out, ec)) MLL_THROW(UsageError, out, ": exists and is not a directory");
    if (!sfs::is_empty(out, ec)) {
      if (!force) {
        MLL_THROW(UsageError, out, ": exists and is not empty (use --force to replace the world)");
      }
      for (const char* entry : kEntries) sfs::remove_all(sfs::path(out) / entry, ec);
    }
  }
  sfs::create_directories(out, ec);
  if (ec) MLL_THROW(IoError, out, ": cannot create directory: ", ec.message());
}

}  // namespace

WorldReport write_world(const graph::Graph& graph, const WorldOptions& options,
                        const std::string& out_dir, bool force) {
  check_options(options);
  const auto t0 = std::chrono::steady_clock::now();
  World world(graph, options);
  world.plan();
  world.fit_text();
  const auto t1 = std::chrono::steady_clock::now();
  log::info("planned the world and fitted the text towers in ",
            std::chrono::duration<double>(t1 - t0).count(), " s");
  world.compute_truth();
  world.render_tasks();
  log::info("measured the ground truth in ",
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count(), " s");
  prepare_out_dir(out_dir, force);
  world.write(out_dir);
  return world.report(out_dir);
}

}  // namespace mll::synth
