// Labeling through the mll binary, as users run it: probe build, label, resume after kill -9
// and signals, incremental models, growth, failures, the writer lock.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "label_world.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/hash.hpp"
#include "mll/distributed/label.hpp"
#include "mll/feed/inputs.hpp"
#include "mll/feed/parity.hpp"
#include "mll/image/image.hpp"
#include "mll/image/preprocess.hpp"
#include "mll/label/job.hpp"
#include "mll/label/labels.hpp"
#include "mll/store/half.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/runner.hpp"
#include "run_command.hpp"
#include "signal_sweep.hpp"

namespace mll::test {
namespace {

const char* kLabelFlags =
    " --batch 8 --unit 16 --device cpu --threads 1 --decode-threads 1 --no-progress";

class LabelWorldTest : public ::testing::Test {
 protected:
  // Builds graph, images, `models` authored models and an empty store under `dir_`.
  void build(int per_seed, int models, int per_node = 40) {
    ids_ = build_world(dir_, store_path(), per_seed, models, per_node);
    ASSERT_EQ(ids_.size(), static_cast<std::size_t>(models));
    ASSERT_TRUE(std::filesystem::exists(store_path()));
  }
  std::string store_path() const { return dir_ / "store.h5"; }
  std::string zoo() const { return dir_ / "zoo.json"; }
  // Another empty store at `path` over the same graph and images.
  CommandResult probe_store(const std::string& path, int per_node = 40) {
    return run_mll("probe build --graph " + (dir_ / "graph.h5") + " --images " + (dir_ / "images") +
                       " --per-node " + std::to_string(per_node) + " --store " + path,
                   dir_);
  }
  CommandResult label(const std::string& extra = "") {
    return run_mll("label --store " + store_path() + " --zoo " + zoo() + kLabelFlags + extra, dir_);
  }
  void expect_verified() {
    const auto r = run_mll("store verify " + store_path(), dir_);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  ScratchDir dir_;
  std::vector<std::string> ids_;
};

// Every stored row of every model of two stores is bit-identical (float16 values compared).
void expect_same_embeddings(const std::string& a_path, const std::string& b_path,
                            const std::vector<std::string>& ids) {
  const auto a = store::Store::open(a_path, store::Store::Mode::kRead);
  const auto b = store::Store::open(b_path, store::Store::Mode::kRead);
  const auto images = static_cast<std::int64_t>(a.probe().image_count());
  for (const auto& id : ids) {
    const auto ta = a.read_text_embeddings(id), tb = b.read_text_embeddings(id);
    EXPECT_EQ(ta.values, tb.values) << id;
    const auto ea = a.read_image_embeddings(id, 0, images),
               eb = b.read_image_embeddings(id, 0, images);
    EXPECT_EQ(ea.values, eb.values) << id;
    const auto la = a.read_labels(id), lb = b.read_labels(id);
    EXPECT_EQ(la.node_top1, lb.node_top1) << id;
    EXPECT_EQ(la.node_confusion, lb.node_confusion) << id;
  }
}

TEST_F(LabelWorldTest, LabelsEveryModelAndH5pyReadsWhatTheRunnerComputes) {
  build(12, 2);
  auto r = label();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("labeled 2"), std::string::npos) << r.out;
  expect_verified();
  r = run_mll("inspect " + store_path(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("small-0"), std::string::npos);
  EXPECT_NE(r.out.find("done"), std::string::npos);
  r = run_mll("zoo show small-1 --store " + store_path() + " --min-images 1", dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("best subtrees"), std::string::npos);

  // The runner's embedding of probe image 0, rounded to float16, is what h5py reads.
  const auto store = store::Store::open(store_path(), store::Store::Mode::kRead);
  const auto spec = zoo::ZooManifest::load(zoo()).load_spec("small-0");
  zoo::Model model(spec);
  const auto pre = feed::preprocess_spec(spec);
  const auto pixels = image::preprocess(image::decode_file(store.probe().path_of(0)), pre);
  const auto e = model.encode_images(pixels.data(), 1, pre.height, pre.width);
  if (std::system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-h5py is not installed";
  }
  std::ofstream(dir_ / "read.py") << "import h5py, sys\n"
                                     "f = h5py.File(sys.argv[1], 'r')\n"
                                     "row = f['models/small-0/image_embeddings'][0]\n"
                                     "print(' '.join(repr(float(x)) for x in row))\n";
  r = run_command("/usr/bin/python3 " + (dir_ / "read.py") + " " + store_path(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream values(r.out);
  for (std::int64_t k = 0; k < e.cols; ++k) {
    double v = 0;
    ASSERT_TRUE(values >> v);
    EXPECT_EQ(static_cast<float>(v), store::half_to_float(store::float_to_half(e.values[k]))) << k;
  }
}

// Starts mll in the background; returns its pid.
pid_t spawn_mll(const std::string& args, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string command = mll_exe() + " " + args + " >" + log + " 2>&1";
    execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST_F(LabelWorldTest, KillNineAtRandomMomentsThenResumeGivesTheUninterruptedStore) {
  // Enough shards that a dozen kills land before a run gets to finish the work (the compute
  // thread overlaps the commits, so each run gets further before its kill).
  build(100, 3, 100);
  // The reference: the same world labeled without interruption, in a copy of the empty store.
  const std::string reference = dir_ / "reference.h5";
  copy_store(store_path(), reference);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_mll("label --store " + reference + " --zoo " + zoo() + kLabelFlags, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const double full_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  // Each round: start labeling, wait until the store changes (the run is past start-up and
  // writing), then kill -9 after a random delay, so kills land anywhere in the write cycle.
  std::mt19937 rng(20261129);
  std::uniform_int_distribution<int> delay_us(0, 40000);
  const auto entries = [&] {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(store_path() + ".d")) {
      n += e.path().filename().string().size() > 0 ? 1 : 0;
    }
    return n;
  };
  int kills = 0, runs = 0;
  const std::string args = "label --store " + store_path() + " --zoo " + zoo() + kLabelFlags;
  while (kills < 12 && runs < 60) {
    ++runs;
    const std::size_t before = entries();
    const pid_t pid = spawn_mll(args, dir_ / "run.log");
    int status = 0;
    bool exited = false;
    for (int i = 0; i < 20000 && !exited; ++i) {
      if (entries() != before) break;
      exited = waitpid(pid, &status, WNOHANG) == pid;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    if (!exited) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
      ::kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      ++kills;
      expect_verified();  // a killed writer leaves a valid store
    } else {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(dir_ / "run.log");
      break;  // finished before the kill
    }
  }
  (void)full_ms;
  EXPECT_GE(kills, 10);
  r = label();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_verified();
  expect_same_embeddings(store_path(), reference, ids_);
}

TEST_F(LabelWorldTest, TermAndUsr1CommitAndExit75ThenTheRerunFinishes) {
  build(60, 2);
  for (int signal_number : {SIGTERM, SIGUSR1}) {
    const pid_t pid = spawn_mll("label --store " + store_path() + " --zoo " + zoo() + kLabelFlags,
                                dir_ / "run.log");
    // Wait until this run has written something (it is past start-up), then ask it to stop.
    std::size_t before = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(store_path() + ".d")) {
      before += e.is_regular_file() ? 1 : 0;
    }
    for (int i = 0; i < 2000; ++i) {
      std::size_t now = 0;
      for (const auto& e : std::filesystem::recursive_directory_iterator(store_path() + ".d")) {
        now += e.is_regular_file() ? 1 : 0;
      }
      if (now != before) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ::kill(pid, signal_number);
    const int code = wait_exit(pid);
    if (code == 0) break;  // it finished first; the rerun below still has to pass
    EXPECT_EQ(code, 75) << slurp(dir_ / "run.log");
    EXPECT_NE(slurp(dir_ / "run.log").find("rerun"), std::string::npos);
    expect_verified();
  }
  const auto r = label();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_verified();
}

struct FileIdentity {
  std::string sha256;
  ino_t inode = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileIdentity& o) const {
    return sha256 == o.sha256 && inode == o.inode && mtime_ns == o.mtime_ns;
  }
};

FileIdentity identity(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return {sha256_file(path), st.st_ino,
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

TEST_F(LabelWorldTest, AddingAModelLeavesOtherModelsUntouched) {
  build(10, 2);
  ASSERT_EQ(label().exit_code, 0);
  const auto before0 = identity(store_path() + ".d/small-0.h5");
  const auto before1 = identity(store_path() + ".d/small-1.h5");
  write_world_models(dir_ / "models", zoo(), 1, 7);
  const auto r = label();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("labeled 1, already done 2"), std::string::npos) << r.out;
  EXPECT_TRUE(identity(store_path() + ".d/small-0.h5") == before0);
  EXPECT_TRUE(identity(store_path() + ".d/small-1.h5") == before1);
  expect_verified();
  // Removing one model keeps the others.
  EXPECT_EQ(run_mll("store rm-model small-7 --store " + store_path(), dir_).exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(store_path() + ".d/small-7.h5"));
  EXPECT_TRUE(identity(store_path() + ".d/small-0.h5") == before0);
  expect_verified();
}

// Store integrity, case 1: the index saved right after `mll probe build` (a restored backup) put
// back over a labeled store. Labeling one model must not delete the others' finished files: they
// fit the index, so they are adopted, byte for byte. The index of another probe set over the
// same folder is refused (65, naming both probe hashes) and leaves every file as it was.
TEST_F(LabelWorldTest, ARestoredIndexNeverDeletesFinishedModels) {
  build(10, 3);
  std::filesystem::copy_file(store_path(), dir_ / "index-after-probe-build.h5");
  ASSERT_EQ(label().exit_code, 0);
  std::map<std::string, FileIdentity> before;
  for (const auto& id : ids_) before[id] = identity(store_path() + ".d/" + id + ".h5");
  std::filesystem::copy_file(dir_ / "index-after-probe-build.h5", store_path(),
                             std::filesystem::copy_options::overwrite_existing);
  const auto r = label(" --models small-1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("already done 1"), std::string::npos) << r.out;
  for (const auto& id : ids_) {
    EXPECT_TRUE(identity(store_path() + ".d/" + id + ".h5") == before[id]) << id;
  }
  EXPECT_NE(r.err.find("adopted"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("removing"), std::string::npos) << r.err;
  expect_verified();

  // Another probe set's index (fewer images per node) over the same model files.
  const auto other = probe_store(dir_ / "other.h5", 5);
  ASSERT_EQ(other.exit_code, 0) << other.err;
  std::filesystem::copy_file(dir_ / "other.h5", store_path(),
                             std::filesystem::copy_options::overwrite_existing);
  const auto refused = label();
  EXPECT_EQ(refused.exit_code, 65) << refused.err;
  EXPECT_NE(refused.err.find("was labeled for graph"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--quarantine-foreign"), std::string::npos) << refused.err;
  // One line: the error (log lines may precede it).
  const std::string error = refused.err.substr(refused.err.find("mll: error: "));
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 1) << refused.err;
  for (const auto& id : ids_) {
    EXPECT_TRUE(identity(store_path() + ".d/" + id + ".h5") == before[id]) << id;
  }
  const auto moved = label(" --quarantine-foreign");
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  for (const auto& id : ids_) {
    EXPECT_EQ(sha256_file(store_path() + ".quarantine/" + id + ".h5"), before[id].sha256) << id;
  }
  expect_verified();
}

TEST_F(LabelWorldTest, GrowingTheGraphEncodesOnlyNewCaptionsAndImages) {
  build(10, 2);
  ASSERT_EQ(label().exit_code, 0);
  const std::string copy = dir_ / "before.h5";
  copy_store(store_path(), copy);
  const auto old_store = store::Store::open(copy, store::Store::Mode::kRead);
  const auto old_images = static_cast<std::int64_t>(old_store.probe().image_count());
  const auto old_captions = static_cast<std::int64_t>(old_store.captions().size());

  // A new seed (hammerhead shark) with its own images, and more images for tench.
  const std::string d = dir_.path();
  std::ofstream(d + "/seeds.txt", std::ios::app) << "n01494475\n";
  ASSERT_EQ(run_mll("graph build --force --seeds " + d + "/seeds.txt -o " + d + "/graph.h5", dir_)
                .exit_code,
            0);
  write_world_images(d + "/images", {"n01494475"}, 10, 40);
  write_world_images(d + "/images", {"n01440764"}, 5, 40, /*salt=*/1);
  auto r = run_mll("probe build --grow --graph " + d + "/graph.h5 --images " + d +
                       "/images --per-node 40 --store " + store_path(),
                   dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = label();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto grown = store::Store::open(store_path(), store::Store::Mode::kRead);
  const auto new_images = static_cast<std::int64_t>(grown.probe().image_count());
  ASSERT_GT(new_images, old_images);
  // Only the new rows were computed: the report counts image embeddings over all models.
  EXPECT_NE(r.out.find(std::to_string(2 * (new_images - old_images)) + " image embeddings"),
            std::string::npos)
      << r.out;
  for (const auto& id : ids_) {
    EXPECT_EQ(grown.read_image_embeddings(id, 0, old_images).values,
              old_store.read_image_embeddings(id, 0, old_images).values);
    const auto t_old = old_store.read_text_embeddings(id), t_new = grown.read_text_embeddings(id);
    ASSERT_GT(t_new.rows, old_captions);
    EXPECT_TRUE(std::equal(t_old.values.begin(), t_old.values.end(), t_new.values.begin()));
  }
  expect_verified();
}

TEST_F(LabelWorldTest, AFailingModelIsRecordedAndTheOthersFinish) {
  build(6, 2);
  // A model whose TorchScript file is not TorchScript.
  auto spec = zoo::ZooManifest::load(zoo()).load_spec("small-0");
  spec.id = "broken";
  spec.model_file = "broken.pt";
  std::ofstream(dir_ / "models/broken.pt") << "this is not a TorchScript archive";
  zoo::save_sidecar(spec, dir_ / "models/broken.json");
  auto manifest = zoo::ZooManifest::load(zoo());
  manifest.add_sidecar(dir_ / "models/broken.json");
  manifest.save();

  auto r = label(" --fail-fast");
  EXPECT_EQ(r.exit_code, 65) << r.err;
  r = label();
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.out.find("labeled 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("failed: broken"), std::string::npos) << r.out;
  r = run_mll("inspect " + store_path(), dir_);
  EXPECT_NE(r.out.find("failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("broken.pt"), std::string::npos) << r.out;
  expect_verified();
}

// Tokenizer kinds beyond clip-bpe: a gpt2-bpe sidecar (RoBERTa's towers) passes zoo check and
// labels; a sentencepiece sidecar without its model file fails zoo check with the one-line
// error that label gives.
TEST_F(LabelWorldTest, TokenizerKindsFailInZooCheckExactlyWhereLabelDoes) {
  build(6, 1);
  auto add_model = [&](const std::string& id, const std::string& kind) {
    zoo::AuthoredModelParams p;
    p.id = id;
    p.embed_dim = 16;
    p.image_size = 32;
    p.vocab_size = 50265;  // RoBERTa's; GPT-2's ids reach 50256
    auto model = zoo::write_authored_model(p, dir_ / "models");
    model.spec.tokenizer.kind = kind;
    zoo::save_sidecar(model.spec, model.sidecar_path);
    const auto r = run_mll("zoo add " + model.sidecar_path + " --zoo " + zoo(), dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  add_model("roberta-like", "gpt2-bpe");
  auto r = run_mll("zoo check --device cpu --threads 1 --models roberta-like --zoo " + zoo(), dir_);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = label(" --models roberta-like");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("labeled 1"), std::string::npos) << r.out;

  add_model("xlmr-like", "sentencepiece");
  const std::string error = "model 'xlmr-like': tokenizer: kind 'sentencepiece' needs";
  r = run_mll("zoo check --device cpu --threads 1 --models xlmr-like --zoo " + zoo(), dir_);
  EXPECT_EQ(r.exit_code, 65) << r.out << r.err;
  EXPECT_NE(r.out.find(error), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokenizer.vocab"), std::string::npos) << r.out;
  r = label(" --models xlmr-like");
  EXPECT_EQ(r.exit_code, 65) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find(error), std::string::npos) << r.out << r.err;
  expect_verified();
}

// Ids in open_clip's MODEL:PRETRAINED form, which exporters write by default: zoo add, list,
// check and label take them, the store keeps them in an escaped file name, and an id the rule
// refuses stops zoo add with one line naming the sidecar.
TEST_F(LabelWorldTest, OpenClipStyleIdsLabelAndLiveInEscapedFiles) {
  build(6, 0);
  const std::string id = "ViT-B-32:laion2b_s34b_b79k";
  zoo::AuthoredModelParams p;
  p.id = id;
  p.embed_dim = 16;
  p.image_size = 32;
  const auto model = zoo::write_authored_model(p, dir_ / "models");
  EXPECT_EQ(std::filesystem::path(model.sidecar_path).filename(),
            "ViT-B-32%3Alaion2b_s34b_b79k.json");
  auto r = run_mll("zoo add " + model.sidecar_path + " --zoo " + zoo(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_mll("zoo list --zoo " + zoo(), dir_);
  EXPECT_NE(r.out.find(id), std::string::npos) << r.out;
  r = run_mll("zoo check --device cpu --threads 1 --zoo " + zoo(), dir_);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = label();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("labeled 1"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(store_path() + ".d/ViT-B-32%3Alaion2b_s34b_b79k.h5"));
  expect_verified();
  r = run_mll("store export --format npy --out " + (dir_ / "npy") + " --store " + store_path(),
              dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "npy/ViT-B-32%3Alaion2b_s34b_b79k/images.npy"));
  r = label(" --models " + id);  // a rerun names it on the command line and skips it
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  nlohmann::json comma = nlohmann::json::parse(zoo::sidecar_json(model.spec));
  comma["id"] = "ViT-B-32,laion2b";
  std::ofstream(dir_ / "models/comma.json") << comma.dump();
  r = run_mll("zoo add " + (dir_ / "models/comma.json") + " --zoo " + zoo(), dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("comma.json: field 'id': contains ','"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// The reference rows of `spec` for the parity set, computed through mll's own pipeline with
// optional faults: normalisation constants other than the sidecar's, a crop shifted by `shift`
// pixels to the right. What an exporter whose framework preprocesses that way would write.
zoo::ParityReference reference_of(const zoo::ModelSpec& spec, const std::array<float, 3>* mean,
                                  int shift) {
  const feed::ParitySet set = feed::load_parity_set("parity-1");
  const zoo::Model model(spec, {});
  image::PreprocessSpec pre = feed::preprocess_spec(spec);
  if (mean != nullptr) pre.mean = *mean;
  const int s = pre.height;
  std::vector<float> pixels;
  for (const auto& path : set.image_paths) {
    const image::RgbImage photo = image::decode_file(path);
    const image::CropPlan plan = image::plan_crop(photo.width(), photo.height(), pre);
    const image::RgbImage resized =
        image::resize(photo, plan.resized_width, plan.resized_height, pre.interpolation);
    image::RgbImage crop(s, s);
    for (int y = 0; y < s; ++y) {
      std::memcpy(crop.row(y), resized.row(y + plan.crop_top) + 3 * (plan.crop_left + shift),
                  3 * static_cast<std::size_t>(s));
    }
    const auto chw = image::to_normalized_chw(crop, pre.mean, pre.std);
    pixels.insert(pixels.end(), chw.begin(), chw.end());
  }
  const auto tokenizer = feed::make_tokenizer(spec);
  const auto ids = tokenizer->encode_batch(set.captions);
  const Matrix image =
      model.encode_images(pixels.data(), static_cast<int>(set.image_paths.size()), s, s);
  const Matrix text = model.encode_text(ids.data(), static_cast<int>(set.captions.size()),
                                        tokenizer->context_length());
  zoo::ParityReference ref;
  ref.set = set.name;
  ref.made_with = "mll itself (test)";
  for (std::int64_t r = 0; r < image.rows; ++r)
    ref.image_embeddings.emplace_back(image.row(r), image.row(r) + image.cols);
  for (std::int64_t r = 0; r < text.rows; ++r)
    ref.text_embeddings.emplace_back(text.row(r), text.row(r) + text.cols);
  return ref;
}

// A parity set whose files changed is refused (a reference holds only for the exact inputs), as
// is an unknown set; nothing is measured against the wrong pixels.
TEST(ParitySet, ChangedFilesAndUnknownSetsAreRefused) {
  ScratchDir dir;
  const feed::ParitySet set = feed::load_parity_set("parity-1");
  EXPECT_EQ(set.image_paths.size(), 3u);
  EXPECT_EQ(set.captions.size(), 5u);
  EXPECT_NE(set.captions[1].find("\u2019"), std::string::npos);  // a curly quote
  std::filesystem::create_directories(dir / "data/reference");
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(set.manifest).parent_path())) {
    std::filesystem::copy_file(entry.path(),
                               dir / ("data/reference/" + entry.path().filename().string()));
  }
  {
    std::fstream photo(dir / "data/reference/chelsea.jpg",
                       std::ios::in | std::ios::out | std::ios::binary);
    photo.seekg(1000);
    const char byte = static_cast<char>(photo.get() ^ 0xff);  // surely another value
    photo.seekp(1000);
    photo.put(byte);
  }
  ::setenv("MLL_DATA_DIR", (dir / "data").c_str(), 1);
  try {
    feed::load_parity_set("parity-1");
    ADD_FAILURE() << "a changed image was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("chelsea.jpg: SHA-256 "), std::string::npos) << e.what();
  }
  EXPECT_THROW(feed::load_parity_set("parity-0"), DataError);
  EXPECT_THROW(feed::load_parity_set("../reference/parity-1"), DataError);
  ::unsetenv("MLL_DATA_DIR");
}

// The parity guard: a model whose reference mll reproduces passes zoo check and labels, with the
// cosines in its provenance; a mis-exported one (normalisation other than the sidecar says, a
// one-pixel crop shift, a module that is not the one the reference was made with) is refused by
// zoo check and by label (recorded as failed, exit 65), with the cosine in the message.
TEST_F(LabelWorldTest, TheParityGuardRefusesModelsThatDifferFromTheirReference) {
  build(6, 0);
  auto add = [&](const std::string& id, std::uint64_t seed,
                 const std::function<void(zoo::ModelSpec&)>& mis_export) {
    zoo::AuthoredModelParams p;
    p.id = id;
    p.seed = seed;
    p.embed_dim = 16;
    p.image_size = 64;
    auto model = zoo::write_authored_model(p, dir_ / "models");
    mis_export(model.spec);
    zoo::save_sidecar(model.spec, model.sidecar_path);
    const auto r = run_mll("zoo add " + model.sidecar_path + " --zoo " + zoo(), dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return model.spec;
  };
  add("faithful", 1, [](zoo::ModelSpec& spec) { spec.reference = reference_of(spec, nullptr, 0); });
  add("other-mean", 2, [](zoo::ModelSpec& spec) {
    const std::array<float, 3> half = {0.5f, 0.5f,
                                       0.5f};  // SigLIP's, where the sidecar says CLIP's
    spec.reference = reference_of(spec, &half, 0);
  });
  add("shifted-crop", 3,
      [](zoo::ModelSpec& spec) { spec.reference = reference_of(spec, nullptr, 1); });
  const zoo::ModelSpec other = add("other-module", 4, [](zoo::ModelSpec&) {});
  {  // its reference comes from the module with other weights (an activation swapped in export)
    zoo::AuthoredModelParams p;
    p.id = "other-module-weights";
    p.seed = 40;
    p.embed_dim = 16;
    p.image_size = 64;
    std::filesystem::create_directories(dir_ / "twin");
    const auto twin = zoo::write_authored_model(p, dir_ / "twin");
    zoo::ModelSpec spec = other;
    spec.reference = reference_of(twin.spec, nullptr, 0);
    zoo::save_sidecar(spec, dir_ / "models/other-module.json");
  }

  auto r = run_mll("zoo check --device cpu --threads 1 --models faithful --zoo " + zoo(), dir_);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find(" 1.0000000"), std::string::npos) << r.out;  // the worst cosine
  for (const char* bad : {"other-mean", "shifted-crop", "other-module"}) {
    r = run_mll(cat("zoo check --device cpu --threads 1 --models ", bad, " --zoo ", zoo()), dir_);
    EXPECT_EQ(r.exit_code, 65) << bad << r.out << r.err;
    EXPECT_NE(r.out.find(cat("model '", bad, "': parity check failed: ")), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find(" has cosine "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("< 0.99999 with the exporter's reference"), std::string::npos) << r.out;
  }
  // --parity-min-cosine 0 turns the guard off.
  r = run_mll(
      "zoo check --device cpu --threads 1 --parity-min-cosine 0 --models shifted-crop --zoo " +
          zoo(),
      dir_);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  r = label();
  EXPECT_EQ(r.exit_code, 65) << r.out << r.err;
  EXPECT_NE(r.out.find("labeled 1"), std::string::npos) << r.out;
  const auto store = store::Store::open(store_path(), store::Store::Mode::kRead);
  for (const char* bad : {"other-mean", "shifted-crop", "other-module"}) {
    ASSERT_TRUE(store.find_model(bad)) << bad;
    EXPECT_EQ(store.find_model(bad)->status, store::ModelStatus::kFailed) << bad;
    EXPECT_NE(store.find_model(bad)->message.find("parity check failed"), std::string::npos)
        << store.find_model(bad)->message;
    EXPECT_NE(store.find_model(bad)->message.find(" has cosine "), std::string::npos);
  }
  const auto parity = nlohmann::json::parse(store.model_info("faithful").parity_json);
  EXPECT_EQ(parity["set"], "parity-1");
  EXPECT_GE(parity["worst"].get<double>(), 0.99999);
  EXPECT_EQ(parity["cosines"].size(), 8u);  // 3 photos and 5 captions
  EXPECT_TRUE(parity["cosines"].contains("image chelsea.jpg")) << parity.dump();
  expect_verified();
}

// A run killed after a model's last commit but before it was finished leaves every row stored
// and the model pending: the next run must finish it, not skip it.
TEST_F(LabelWorldTest, AModelWithEveryRowStoredButNotFinishedIsFinishedByTheNextRun) {
  build(6, 1);
  {
    auto store = store::Store::open(store_path(), store::Store::Mode::kWrite);
    const auto specs = zoo::ZooManifest::load(zoo()).load_all();
    label::LabelOptions options;
    options.progress = false;
    commit_without_finishing(store, specs, options);  // as if killed here
    ASSERT_TRUE(store.missing_units("small-0", 1 << 20, 1 << 20).empty());
    ASSERT_EQ(store.find_model("small-0")->status, store::ModelStatus::kPending);
  }
  const auto r = label();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("labeled 1"), std::string::npos) << r.out;
  const auto store = store::Store::open(store_path(), store::Store::Mode::kRead);
  EXPECT_EQ(store.find_model("small-0")->status, store::ModelStatus::kDone);
  expect_verified();
}

// The forward time a shard reports covers its image batches as well as its captions: the
// pipeline-efficiency benchmark divides it by the wall time of the run.
TEST_F(LabelWorldTest, ShardsReportTheTimeSpentInForwardPasses) {
  build(6, 2);
  auto store = store::Store::open(store_path(), store::Store::Mode::kWrite);
  const auto specs = zoo::ZooManifest::load(zoo()).load_all();
  label::LabelOptions options;
  options.progress = false;
  const auto plan = label::plan_work(store, specs, options);
  label::Executor executor(plan.groups, store.captions(), label::probe_image_paths(store), options);
  int image_shards = 0;
  for (const auto& shard : plan.shards) {
    const auto started = std::chrono::steady_clock::now();
    const auto result = executor.run(shard, StopFlag());
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ASSERT_FALSE(result.rows.empty());
    EXPECT_GT(result.forward_seconds, 0.0) << static_cast<int>(shard.kind);
    EXPECT_LE(result.forward_seconds, wall);
    image_shards += shard.kind == store::UnitKind::kImage;
  }
  EXPECT_GT(image_shards, 0);
}

// Ranks share the prediction step of the summary labels in blocks; the labels must not depend on
// how the probe images were cut, and the counting step must refuse predictions that do not fit.
TEST_F(LabelWorldTest, SummaryLabelsDoNotDependOnThePredictionBlocks) {
  build(8, 1);
  ASSERT_EQ(label().exit_code, 0);
  const auto store = store::Store::open(store_path(), store::Store::Mode::kRead);
  const auto stored = store.read_labels("small-0");
  const auto images = static_cast<std::int64_t>(store.probe().image_count());
  ASSERT_GT(images, 7);
  for (std::int64_t block : {std::int64_t{1}, std::int64_t{7}, images, std::int64_t{4096}}) {
    const auto labels = label::compute_labels(store, "small-0", block);
    EXPECT_EQ(labels.node_top1, stored.node_top1) << block;
    EXPECT_EQ(labels.node_confusion, stored.node_confusion) << block;
    EXPECT_EQ(labels.subtree_top1, stored.subtree_top1) << block;
  }
  // Pieces predicted separately (as ranks do) and put together give the same labels.
  const auto text = label::node_text_embeddings(store, "small-0");
  std::vector<std::int32_t> predicted(static_cast<std::size_t>(images), -1);
  for (std::int64_t begin = 0; begin < images; begin += 7) {
    label::predict_nodes(store, "small-0", text, begin, std::min(images, begin + 7),
                         predicted.data() + begin, 7);
  }
  EXPECT_EQ(label::labels_from_predictions(store, predicted).node_top1, stored.node_top1);
  predicted.pop_back();
  EXPECT_THROW(label::labels_from_predictions(store, predicted), InternalError);
  predicted.push_back(-1);
  EXPECT_THROW(label::labels_from_predictions(store, predicted), InternalError);
  EXPECT_THROW(label::predict_nodes(store, "small-0", text, 0, 1, predicted.data(), 0), UsageError);
}

// --image-cache: the first run decodes and keeps the crops; a model added later is labeled from
// them without decoding, with the same embeddings as decoding gives; a changed image is decoded
// again. --fast-decode is recorded in the model's provenance.
TEST_F(LabelWorldTest, TheImageCacheSkipsDecodingForAddedModelsAndNoticesChangedImages) {
  build(10, 1);
  const std::string cache = dir_ / "crops";
  auto r = label(" --image-cache " + cache);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto store = [&] { return store::Store::open(store_path(), store::Store::Mode::kRead); };
  const auto images = static_cast<std::int64_t>(store().probe().image_count());
  EXPECT_NE(r.out.find("(" + std::to_string(images) + " images decoded"), std::string::npos)
      << r.out;
  std::size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(cache)) {
    if (!e.is_regular_file()) continue;
    EXPECT_EQ(e.path().extension(), ".crops") << e.path();  // no temporary left behind
    ++files;
  }
  EXPECT_EQ(files, static_cast<std::size_t>((images + 15) / 16));  // one per 16-image shard

  // A new model: every crop comes from the cache.
  write_world_models(dir_ / "models", zoo(), 1, 5);
  r = label(" --image-cache " + cache);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("labeled 1, already done 1, failed 0 (0 images decoded"), std::string::npos)
      << r.out;
  // The same model labeled by decoding, in a second store, has identical embeddings.
  const std::string plain = dir_ / "plain.h5";
  ASSERT_EQ(probe_store(plain).exit_code, 0);
  r = run_mll("label --store " + plain + " --zoo " + zoo() + " --models small-5" + kLabelFlags,
              dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto other = store::Store::open(plain, store::Store::Mode::kRead);
  EXPECT_EQ(store().read_image_embeddings("small-5", 0, images).values,
            other.read_image_embeddings("small-5", 0, images).values);

  // An image rewritten after caching (same pixels, new time): its shard alone is decoded again.
  write_world_images(dir_ / "images", {world_seeds().front()}, 1, 40);
  write_world_models(dir_ / "models", zoo(), 1, 6);
  r = label(" --image-cache " + cache);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto decoded = std::stoll(r.out.substr(r.out.find('(') + 1));
  EXPECT_GT(decoded, 0) << r.out;
  EXPECT_LE(decoded, 16) << r.out;
  EXPECT_NE(r.err.find("stale"), std::string::npos) << r.err;

  // A file where the folder should be: a one-line usage error before any work.
  r = label(" --image-cache " + store_path());
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("--image-cache " + store_path()), std::string::npos) << r.err;

  write_world_models(dir_ / "models", zoo(), 1, 7);
  r = label(" --fast-decode");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(store().model_info("small-7").config_json.find("\"fast_decode\":true"),
            std::string::npos);
  EXPECT_NE(store().model_info("small-0").config_json.find("\"fast_decode\":false"),
            std::string::npos);
  expect_verified();
}

TEST_F(LabelWorldTest, ASecondWriterIsRefusedWithTheHolderNamed) {
  build(6, 1);
  auto store = store::Store::open(store_path(), store::Store::Mode::kWrite);
  const auto r = label();
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("locked"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::to_string(::getpid())), std::string::npos) << r.err;
}

// Store integrity, cases 4 and 6: a probe image replaced after `mll probe build` is an error
// naming it, not data; an image that cannot be decoded stops only its shard (every other shard
// is stored) and the run ends 65 with the list; `probe build --verify` leaves such images out
// (`--strict` refuses).
TEST_F(LabelWorldTest, ChangedOrUnreadableProbeImagesFailTheirShardOnly) {
  build(10, 2);
  const std::string d = dir_.path();
  std::string victim;
  for (const auto& e : std::filesystem::directory_iterator(d + "/images/" + world_seeds()[3])) {
    victim = e.path().string();
    break;
  }
  // Another picture of another size under the same name.
  image::RgbImage other(33, 21);
  image::write_png(victim, other);
  auto r = label();
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find(victim + ": probe image changed since `mll probe build`"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("every other shard is stored"), std::string::npos) << r.err;
  std::size_t parts = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(store_path() + ".d")) {
    parts += e.path().extension() == ".h5" ? 1 : 0;
  }
  EXPECT_GT(parts, 0u);  // the other shards were committed
  expect_verified();

  // Not an image at all, already when the probe set is built: without --verify it is taken
  // (its bytes are recorded) and labeling stops at it.
  std::ofstream(victim, std::ios::trunc) << "this is not a PNG";
  r = run_mll("probe build --force --graph " + d + "/graph.h5 --images " + d +
                  "/images --per-node 40 --store " + store_path(),
              dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = label();
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find(victim), std::string::npos) << r.err;
  r = run_mll("probe build --force --verify --strict --graph " + d + "/graph.h5 --images " + d +
                  "/images --per-node 40 --store " + store_path(),
              dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("cannot be decoded"), std::string::npos) << r.err;
  r = run_mll("probe build --force --verify --graph " + d + "/graph.h5 --images " + d +
                  "/images --per-node 40 --store " + store_path(),
              dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("unreadable probe image"), std::string::npos) << r.err;
  r = label();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("labeled 2"), std::string::npos) << r.out;
  expect_verified();
}

// Store integrity, cases 2 and 3 through the binary: a flipped bit in a finished model file
// (the byte and bit that once crashed HDF5, and others) makes `mll store verify` exit 65 naming
// the file, never crash; a flipped byte in an image-cache crop is decoded again, not used.
TEST_F(LabelWorldTest, FlippedBitsAreFoundByVerifyAndCorruptCropsAreNotUsed) {
  build(10, 2);
  const std::string cache = dir_ / "crops";
  ASSERT_EQ(label(" --image-cache " + cache).exit_code, 0);
  const std::string model = store_path() + ".d/small-0.h5";
  std::string original;
  {
    std::ifstream in(model, std::ios::binary);
    original.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  for (const auto& [at, bit] : std::vector<std::pair<std::size_t, int>>{{2206, 3},
                                                                        {0, 0},
                                                                        {100, 7},
                                                                        {600, 1},
                                                                        {original.size() / 2, 4},
                                                                        {original.size() - 1, 2}}) {
    std::string damaged = original;
    damaged[at] = static_cast<char>(damaged[at] ^ (1 << bit));
    std::ofstream(model, std::ios::binary | std::ios::trunc) << damaged;
    const auto r = run_mll("store verify " + store_path(), dir_);
    EXPECT_EQ(r.exit_code, 65) << "byte " << at << " bit " << bit << ": " << r.out << r.err;
    EXPECT_NE(r.out.find(model + ": corrupt"), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  std::ofstream(model, std::ios::binary | std::ios::trunc) << original;
  expect_verified();

  // A crop file with one flipped byte in its crops: the warm run decodes that image instead.
  std::string crops;
  for (const auto& e : std::filesystem::recursive_directory_iterator(cache)) {
    if (e.path().extension() == ".crops") crops = e.path().string();
  }
  ASSERT_FALSE(crops.empty());
  {
    std::fstream f(crops, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(-100, std::ios::end);
    f.put('\x7f');
  }
  // The temporary file of a killed run on this machine (its process is gone) is removed by the
  // next run; one written on another machine (whose processes cannot be seen) is not.
  const std::string folder = std::filesystem::path(crops).parent_path().string();
  const std::string stray = folder + "/0-16.crops.tmp." + fs::host_name() + ".99999999";
  const std::string elsewhere = folder + "/0-16.crops.tmp.some-other-node.99999999";
  std::ofstream(stray) << "partial crops of a killed run";
  std::ofstream(elsewhere) << "partial crops of a run on another node";
  const std::string again = dir_ / "again.h5";
  ASSERT_EQ(probe_store(again).exit_code, 0);
  const auto r = run_mll(
      "label --store " + again + " --zoo " + zoo() + kLabelFlags + " --image-cache " + cache, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("does not match its digest"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("image cache not written"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(stray));
  EXPECT_TRUE(std::filesystem::exists(elsewhere));
  expect_same_embeddings(store_path(), again, ids_);
}

// With default thread counts on the CPU, a shard with nothing to decode (crops read from the
// image cache, captions) runs the model on the decode threads' CPUs too; the embeddings are those
// of the run that decoded.
TEST_F(LabelWorldTest, WithNothingToDecodeTheModelTakesTheDecodeThreadsCpus) {
  if (std::system("command -v taskset >/dev/null") != 0) GTEST_SKIP() << "taskset not installed";
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs 2 CPUs";
  build(10, 1);
  const std::string cache = dir_ / "crops";
  const std::string args = " label -v --batch 8 --unit 16 --device cpu --no-progress --zoo " +
                           zoo() + " --image-cache " + cache + " --store ";
  auto r = run_command("taskset -c 0,1 " + mll_exe() + args + store_path(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("threads: model 1 (2 with nothing to decode), decode 2 (2 CPU(s) from "
                       "affinity"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("model threads: 2 (nothing to decode)"), std::string::npos) << r.err;

  const std::string warm = dir_ / "warm.h5";
  ASSERT_EQ(probe_store(warm).exit_code, 0);
  r = run_command("taskset -c 0,1 " + mll_exe() + args + warm, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(0 images decoded"), std::string::npos) << r.out;
  // Set for the first shard, the image shard that loads the model, and kept.
  const auto switched = r.err.find("model threads: 2 (nothing to decode)");
  ASSERT_NE(switched, std::string::npos) << r.err;
  EXPECT_LT(switched, r.err.find("loaded model 'small-0'")) << r.err;
  EXPECT_EQ(r.err.find("model threads: 1"), std::string::npos) << r.err;
  expect_same_embeddings(store_path(), warm, ids_);

  // An explicit count is kept for every shard.
  ASSERT_EQ(run_mll("store rm-model small-0 --store " + warm, dir_).exit_code, 0);
  r = run_command("taskset -c 0,1 " + mll_exe() + args + warm + " --threads 1", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("model threads:"), std::string::npos) << r.err;
}

// CPU limits: the default thread counts come from the CPUs the process may use (affinity mask,
// cgroup quota, SLURM_CPUS_PER_TASK), not from the machine, and the log says what was chosen.
TEST_F(LabelWorldTest, DefaultThreadsFollowTheCpusTheProcessMayUse) {
  if (std::system("command -v taskset >/dev/null") != 0) GTEST_SKIP() << "taskset not installed";
  build(4, 1);
  const std::string args = " label --store " + store_path() + " --zoo " + zoo() +
                           " --batch 8 --unit 16 --device cpu --no-progress";
  auto r = run_command("taskset -c 0 " + mll_exe() + args, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(
      r.err.find("threads: model 1 (1 with nothing to decode), decode 1 (1 CPU(s) from affinity"),
      std::string::npos)
      << r.err;
  ASSERT_EQ(run_mll("store rm-model small-0 --store " + store_path(), dir_).exit_code, 0);
  r = run_command("SLURM_CPUS_PER_TASK=1 " + mll_exe() + args, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  if (std::thread::hardware_concurrency() > 1) {
    EXPECT_NE(r.err.find("(1 CPU(s) from SLURM_CPUS_PER_TASK"), std::string::npos) << r.err;
  }
  // The precision is recorded with the model (fp32: the CPU's default).
  {
    const auto store = store::Store::open(store_path(), store::Store::Mode::kRead);
    const std::string config = store.model_info("small-0").config_json;
    EXPECT_NE(config.find("\"precision\":\"fp32\""), std::string::npos) << config;
  }
  // Explicit counts win.
  ASSERT_EQ(run_mll("store rm-model small-0 --store " + store_path(), dir_).exit_code, 0);
  r = run_command("taskset -c 0 " + mll_exe() + args + " --threads 3 --decode-threads 2", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("threads: model 3 (3 with nothing to decode), decode 2"), std::string::npos)
      << r.err;
}

// Model files are hashed once: a rerun trusts <store>.digests for files whose size, mtime and
// inode are unchanged, hashes a touched file again, and shrugs off a garbled digests file.
TEST_F(LabelWorldTest, UnchangedModelFilesAreNotHashedAgain) {
  build(4, 2);
  const std::string args = " label -v --store " + store_path() + " --zoo " + zoo() +
                           " --batch 8 --unit 16 --device cpu --no-progress --threads 1";
  const std::string trusted = "file unchanged since its digest was remembered";
  auto r = run_mll(args, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find(trusted), std::string::npos) << r.err;  // nothing remembered yet
  const std::string digests = slurp(store_path() + ".digests");
  EXPECT_EQ(std::count(digests.begin(), digests.end(), '\n'), 3) << digests;  // header + 2
  r = run_mll(args, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("'small-0': " + trusted), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'small-1': " + trusted), std::string::npos) << r.err;
  // A touched file is hashed again (same bytes: the store accepts it).
  const auto model = std::filesystem::path(dir_.path()) / "models" / "small-1.pt";
  std::filesystem::last_write_time(
      model, std::filesystem::last_write_time(model) + std::chrono::seconds(5));
  r = run_mll(args, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("'small-0': " + trusted), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("'small-1': " + trusted), std::string::npos) << r.err;
  // --rehash ignores the file; a garbled one only means hashing.
  r = run_mll(args + " --rehash", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find(trusted), std::string::npos) << r.err;
  std::ofstream(store_path() + ".digests") << "garbage\n\x01\x02 12 x\n";
  r = run_mll(args, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find(trusted), std::string::npos) << r.err;
  const std::string rewritten = slurp(store_path() + ".digests");
  EXPECT_EQ(std::count(rewritten.begin(), rewritten.end(), '\n'), 3) << rewritten;
}

// The digests file is a cache that never decides against the store: a line with a flipped digit
// fails its checksum and is ignored; a well-formed line whose digest is wrong (rewritten with a
// valid checksum) disagrees with the store, so the file is hashed again; neither run fails.
TEST_F(LabelWorldTest, ADamagedOrWrongDigestsFileOnlyMeansHashing) {
  build(4, 2);
  const std::string args = " label -v --store " + store_path() + " --zoo " + zoo() +
                           " --batch 8 --unit 16 --device cpu --no-progress --threads 1";
  auto r = run_mll(args, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string path = store_path() + ".digests";
  const std::string good = slurp(path);
  // The second line is the first model's: "checksum sha256 size ...". Flip a digit of its sha256.
  const auto line = good.find('\n') + 1;
  std::string damaged = good;
  damaged[line + 17] = damaged[line + 17] == '0' ? '1' : '0';
  std::ofstream(path, std::ios::trunc) << damaged;
  r = run_mll(args, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(path + ": 1 damaged line(s) ignored"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(path), good);

  // The same wrong digest under a checksum that matches it.
  std::ofstream(path, std::ios::trunc) << with_wrong_first_digest(good);
  r = run_mll(args, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("is not the store's; hashing the file"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(path), good);  // the file's own digest remembered again
}

// A group that does not fit --memory is labeled in sub-groups: the store equals an unbounded
// run's, each probe image is decoded once (the sub-groups share crops in STORE.crops, removed at
// the end), and a model that alone exceeds the budget is refused before the store is touched.
TEST_F(LabelWorldTest, AGroupOverTheMemoryBudgetIsSplitAndGivesTheSameStore) {
  build(8, 6);
  const std::string unbounded = dir_ / "unbounded.h5";
  copy_store(store_path(), unbounded);
  auto r =
      run_mll("label --store " + unbounded + " --zoo " + zoo() + kLabelFlags + " --memory 0", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // A budget for two of the six (equal) models at a time.
  label::LabelOptions options;
  options.batch = 8;
  const auto one = label::model_memory(zoo::ZooManifest::load(zoo()).load_spec(ids_[0]), options);
  ASSERT_GT(one.weights, 0);
  const std::int64_t budget = 2 * one.weights + one.working + one.weights / 2;
  r = label(" -v --memory " + std::to_string(budget));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("labeled in 3 sub-groups that share the decoded images"), std::string::npos)
      << r.err;
  const auto images =
      store::Store::open(store_path(), store::Store::Mode::kRead).probe().image_count();
  EXPECT_NE(r.out.find("labeled 6, already done 0, failed 0 (" + std::to_string(images) +
                       " images decoded"),
            std::string::npos)
      << r.out;
  expect_same_embeddings(store_path(), unbounded, ids_);
  expect_verified();
  EXPECT_FALSE(std::filesystem::exists(store_path() + ".crops"));

  // One model over the budget: exit 64 naming it, the store's bytes untouched.
  write_world_models(dir_ / "models", zoo(), 1, 6);
  const std::string before = slurp(store_path());
  r = label(" --memory " + std::to_string(one.footprint() - 1));
  EXPECT_EQ(r.exit_code, 64) << r.out << r.err;
  EXPECT_NE(r.err.find("needs about"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("raise --memory"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("error:"), r.err.rfind("error:")) << r.err;  // one line
  EXPECT_EQ(slurp(store_path()), before);
  r = label(" --memory lots");
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("'lots' is not a memory size"), std::string::npos) << r.err;
}

// The cost rule (`--unit auto` on CUDA; set here directly, it is pure planning) cuts a group of
// models far cheaper than their loads into one sub-group per model with shards of one batch;
// the sub-groups share each shard's crops (every image decoded once) and the store equals a run
// with fixed shards.
TEST_F(LabelWorldTest, TheCostRuleCutsSubGroupsAndShardsThatShareCropsAndGiveTheSameStore) {
  build(8, 3);
  const std::string fixed = dir_ / "fixed.h5";
  copy_store(store_path(), fixed);
  ASSERT_EQ(run_mll("label --store " + fixed + " --zoo " + zoo() + kLabelFlags, dir_).exit_code, 0);
  const auto specs = zoo::ZooManifest::load(zoo()).load_all();
  label::LabelOptions options;
  options.batch = 8;
  options.progress = false;
  options.cost_rule = true;
  {
    auto store = store::Store::open(store_path(), store::Store::Mode::kWrite);
    const auto plan = label::plan_work(store, specs, options);
    ASSERT_EQ(plan.groups.size(), 3u);
    for (const auto& group : plan.groups) {
      EXPECT_EQ(group.models.size(), 1u);
      EXPECT_EQ(group.parts, 3);
      EXPECT_EQ(group.unit, 32);  // the rule's smallest shard
    }
    for (const auto& shard : plan.shards) {
      if (shard.kind == store::UnitKind::kImage) {
        EXPECT_EQ(shard.begin % 32, 0);
        EXPECT_LE(shard.end - shard.begin, 32);
      }
    }
  }
  const auto report = distributed::label_here(store_path(), specs, options);
  EXPECT_EQ(report.labeled.size(), 3u);
  const auto images =
      store::Store::open(store_path(), store::Store::Mode::kRead).probe().image_count();
  EXPECT_EQ(report.images_decoded, static_cast<std::int64_t>(images));
  expect_identical_stores(fixed, store_path(), ids_);
}

// --precision: fp16 is refused on the CPU (one line, exit 64, nothing written), bf16 runs, and
// the model's provenance records what ran.
TEST_F(LabelWorldTest, ThePrecisionIsCheckedForTheDeviceAndRecorded) {
  build(4, 1);
  const std::string args = " label --store " + store_path() + " --zoo " + zoo() +
                           " --batch 8 --unit 16 --device cpu --no-progress --threads 1";
  auto r = run_mll(args + " --precision fp16", dir_);
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("mll: error: --precision fp16 needs a CUDA device"), std::string::npos)
      << r.err;
  r = run_mll(args + " --half --precision bf16", dir_);
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("--half contradicts --precision bf16"), std::string::npos) << r.err;
  r = run_mll(args + " --precision bf16", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto store = store::Store::open(store_path(), store::Store::Mode::kRead);
  const std::string config = store.model_info("small-0").config_json;
  EXPECT_NE(config.find("\"precision\":\"bf16\""), std::string::npos) << config;
  // The same through `mll inspect --json`, for scripts.
  r = run_mll("inspect --json " + store_path(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  ASSERT_EQ(json["models"].size(), 1u) << r.out;
  EXPECT_EQ(json["models"][0]["id"], "small-0");
  EXPECT_EQ(json["models"][0]["status"], "done");
  EXPECT_EQ(json["models"][0]["images_done"], json["probe"]["images"]);
  EXPECT_EQ(json["models"][0]["config"]["precision"], "bf16");
  EXPECT_EQ(json["graph"]["hash"].get<std::string>().size(), 64u) << r.out;
}

// The signal contract (docs/running.md): SIGTERM or SIGUSR1 at any moment after exec, even while
// the libraries load, ends `mll label` with 75 (or 0 once it has finished); the rerun completes
// a store equal to an uninterrupted run's.
TEST_F(LabelWorldTest, AStopSignalAtAnyMomentExits75AndTheRerunCompletes) {
  build(6, 1);
  const std::string reference = dir_ / "reference.h5";
  copy_store(store_path(), reference);
  ASSERT_EQ(run_mll("label --store " + reference + " --zoo " + zoo() + kLabelFlags, dir_).exit_code,
            0);
  int interrupted = 0;
  for (const int sig : {SIGTERM, SIGUSR1}) {
    for (const int ms : sweep_delays_ms()) {
      SCOPED_TRACE(std::string("SIG") + signal_name(sig) + " at " + std::to_string(ms) + " ms");
      const std::string store =
          dir_ / ("sweep-" + std::to_string(sig) + "-" + std::to_string(ms) + ".h5");
      copy_store(store_path(), store);
      const std::string args = "label --store " + store + " --zoo " + zoo() + kLabelFlags;
      const auto start = std::chrono::steady_clock::now();
      const pid_t pid = spawn_with_stop_signals_blocked(mll_exe() + " " + args, dir_ / "sweep.log");
      sleep_until(start + std::chrono::milliseconds(ms));
      ::kill(pid, sig);
      const int rc = exit_status(pid);
      EXPECT_TRUE(rc == 75 || rc == 0) << rc << ": " << slurp(dir_ / "sweep.log");
      interrupted += rc == 75 ? 1 : 0;
      const auto rerun = run_mll(args, dir_);
      ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
      expect_same_embeddings(reference, store, ids_);
    }
  }
  EXPECT_GE(interrupted, 8);  // the early moments always land before the end
}

// --log-dir creates its folder; the rank's log carries its own progress at the default level; a
// folder that cannot be created is a usage error (64).
TEST_F(LabelWorldTest, TheLogDirIsCreatedAndHoldsTheRanksProgress) {
  build(4, 1);
  const std::string logs = dir_ / "new/logs";
  auto r = label(" --log-dir " + logs);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string log = slurp(logs + "/rank-0.log");
  EXPECT_NE(log.find("threads: model 1 (1 with nothing to decode), decode 1"), std::string::npos)
      << log;
  EXPECT_NE(log.find("model 'small-0' labeled"), std::string::npos) << log;
  std::ofstream(dir_ / "a-file") << "not a folder";
  r = label(" --log-dir " + (dir_ / "a-file/logs"));
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("--log-dir"), std::string::npos) << r.err;
}

TEST_F(LabelWorldTest, BadProbeInputsAreOneLineErrors) {
  build(4, 1);
  const std::string d = dir_.path();
  auto r = run_mll("probe build --graph " + d + "/graph.h5 --store " + d + "/other.h5", dir_);
  EXPECT_EQ(r.exit_code, 64) << r.err;
  r = run_mll(
      "probe build --graph " + d + "/graph.h5 --images " + d + "/images --store " + store_path(),
      dir_);
  EXPECT_EQ(r.exit_code, 64) << r.err;  // exists without --force
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  std::filesystem::create_directories(d + "/bad/n99999999");
  r = run_mll(
      "probe build --graph " + d + "/graph.h5 --images " + d + "/bad --store " + d + "/bad.h5",
      dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  r = run_mll("label --store " + d + "/graph.h5 --zoo " + zoo(), dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;  // a graph file is not a label store
}

}  // namespace
}  // namespace mll::test
