#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/zoo/model_spec.hpp"
#include "test_paths.hpp"
#include "zoo_test_util.hpp"

namespace mll::zoo {
namespace {

using nlohmann::json;
using test::expect_throw_containing;
using test::write_text;

json valid_sidecar() {
  return json::parse(R"({
    "format_version": 1, "id": "ViT-B-32:laion2b", "model": "vit.pt", "image_size": 224,
    "resize_mode": "shortest", "crop": "center", "interpolation": "bicubic",
    "mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
    "tokenizer": {"kind": "clip-bpe", "context_length": 77},
    "logit_scale": 100.0, "imagenet_top1": 0.656, "params": 151277313,
    "gflops_per_image": 8.82, "embed_dim": 512})");
}

TEST(ZooSidecar, LoadsAValidSidecarAndResolvesPaths) {
  mll::test::ScratchDir dir;
  write_text(dir / "vit.json", valid_sidecar().dump());
  const ModelSpec spec = load_sidecar(dir / "vit.json");
  EXPECT_EQ(spec.id, "ViT-B-32:laion2b");
  EXPECT_EQ(spec.model_path(), dir / "vit.pt");
  EXPECT_EQ(spec.image_size, 224);
  EXPECT_EQ(spec.tokenizer.kind, "clip-bpe");
  EXPECT_EQ(spec.tokenizer.context_length, 77);
  EXPECT_TRUE(spec.tokenizer.vocab.empty());
  EXPECT_EQ(spec.vocab_path(), "");
  ASSERT_TRUE(spec.imagenet_top1.has_value());
  EXPECT_DOUBLE_EQ(*spec.imagenet_top1, 0.656);
  EXPECT_EQ(spec.params, 151277313);
  EXPECT_FLOAT_EQ(spec.stddev[2], 0.27577711f);
  EXPECT_EQ(spec.embed_dim.value_or(0), 512);
}

TEST(ZooSidecar, SaveLoadRoundTrip) {
  mll::test::ScratchDir dir;
  ModelSpec spec;
  spec.id = "m1";
  spec.model_file = "sub/m1.pt";
  spec.image_size = 336;
  spec.interpolation = "bilinear";
  spec.resize_mode = "squash";
  spec.tokenizer = {"sentencepiece", 64, "m1.spm.model", ""};
  spec.logit_scale = 42.5;
  spec.params = 1234;
  spec.gflops_per_image = 0.5;
  save_sidecar(spec, dir / "m1.json");
  const ModelSpec back = load_sidecar(dir / "m1.json");
  EXPECT_EQ(back.id, spec.id);
  EXPECT_EQ(back.model_path(), dir / "sub/m1.pt");
  EXPECT_EQ(back.vocab_path(), dir / "m1.spm.model");
  EXPECT_EQ(back.image_size, 336);
  EXPECT_EQ(back.interpolation, "bilinear");
  EXPECT_EQ(back.resize_mode, "squash");
  EXPECT_EQ(back.tokenizer.kind, "sentencepiece");
  EXPECT_EQ(back.tokenizer.context_length, 64);
  EXPECT_DOUBLE_EQ(back.logit_scale, 42.5);
  EXPECT_FALSE(back.imagenet_top1.has_value());
  EXPECT_FALSE(back.embed_dim.has_value());
  EXPECT_EQ(back.mean, spec.mean);
  EXPECT_EQ(back.stddev, spec.stddev);
  EXPECT_EQ(sidecar_json(back), sidecar_json(spec));
}

TEST(ZooSidecar, EveryMissingRequiredFieldIsNamed) {
  mll::test::ScratchDir dir;
  for (const char* field : {"id", "model", "image_size", "resize_mode", "interpolation", "mean",
                            "std", "tokenizer", "logit_scale", "params", "gflops_per_image"}) {
    json j = valid_sidecar();
    j.erase(field);
    const std::string path = dir / (std::string(field) + ".json");
    write_text(path, j.dump());
    expect_throw_containing<DataError>([&] { load_sidecar(path); },
                                       {path, cat("field '", field, "'"), "missing"});
  }
  for (const char* field : {"kind", "context_length"}) {
    json j = valid_sidecar();
    j["tokenizer"].erase(field);
    const std::string path = dir / (std::string("tok-") + field + ".json");
    write_text(path, j.dump());
    expect_throw_containing<DataError>([&] { load_sidecar(path); },
                                       {path, cat("field 'tokenizer.", field, "'"), "missing"});
  }
}

TEST(ZooSidecar, OptionalFieldsMayBeAbsent) {
  mll::test::ScratchDir dir;
  json j = valid_sidecar();
  for (const char* f : {"format_version", "crop", "imagenet_top1", "embed_dim"}) j.erase(f);
  write_text(dir / "s.json", j.dump());
  const ModelSpec spec = load_sidecar(dir / "s.json");
  EXPECT_EQ(spec.crop, "center");
  EXPECT_FALSE(spec.imagenet_top1);
  EXPECT_FALSE(spec.embed_dim);
}

TEST(ZooSidecar, UnknownTokenizerKind) {
  mll::test::ScratchDir dir;
  json j = valid_sidecar();
  j["tokenizer"]["kind"] = "wordpiece";
  write_text(dir / "s.json", j.dump());
  expect_throw_containing<DataError>([&] { load_sidecar(dir / "s.json"); },
                                     {dir / "s.json", "field 'tokenizer.kind'", "'wordpiece'"});
}

TEST(ZooSidecar, WrongTypesAndBadValues) {
  mll::test::ScratchDir dir;
  struct Case {
    const char* field;
    json value;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"image_size", "224", "must be an integer"},
      {"image_size", 224.5, "must be an integer"},
      {"image_size", 0, "out of range"},
      {"image_size", -3, "out of range"},
      {"id", 7, "must be a string"},
      {"id", "a/b", "contains '/'"},
      {"id", "", "is empty"},
      {"id", "a,b", "contains ','"},
      {"id", "a b", "contains a space"},
      {"mean", json::array({0.5, 0.5}), "array of 3 numbers"},
      {"std", json::array({0.5, 0.0, 0.5}), "out of range"},
      {"std", json::array({0.5, "x", 0.5}), "must be a number"},
      {"logit_scale", -1.0, "out of range"},
      {"imagenet_top1", 1.5, "out of range"},
      {"params", 0, "out of range"},
      {"gflops_per_image", 0.0, "out of range"},
      {"embed_dim", 0, "out of range"},
      {"resize_mode", "longest", "unknown value 'longest'"},
      {"interpolation", "nearest", "unknown value 'nearest'"},
      {"crop", "random", "unknown value 'random'"},
      {"tokenizer", "clip-bpe", "must be an object"},
      {"format_version", 99, "newer than this mll reads"},
  };
  int i = 0;
  for (const auto& c : cases) {
    json j = valid_sidecar();
    j[c.field] = c.value;
    const std::string path = dir / cat("case", i++, ".json");
    write_text(path, j.dump());
    const std::string field = std::string(c.field) == "std" || std::string(c.field) == "mean"
                                  ? std::string(c.field)
                                  : cat("field '", c.field, "'");
    expect_throw_containing<DataError>([&] { load_sidecar(path); }, {path, field, c.expect});
  }
  json j = valid_sidecar();
  j["tokenizer"]["context_length"] = 1;
  write_text(dir / "ctx.json", j.dump());
  expect_throw_containing<DataError>([&] { load_sidecar(dir / "ctx.json"); },
                                     {"field 'tokenizer.context_length'", "out of range"});
}

// The optional parity reference: read, written back unchanged, and refused with the field named
// when its rows cannot be a reference (uneven, not unit-norm, another width than the towers').
TEST(ZooSidecar, ParityReferenceRoundTripsAndBadRowsAreNamed) {
  mll::test::ScratchDir dir;
  json j = valid_sidecar();
  j["embed_dim"] = 2;
  j["reference"] = {{"set", "parity-1"},
                    {"image_embeddings", {{0.6, 0.8}, {1.0, 0.0}}},
                    {"text_embeddings", {{0.0, 1.0}}},
                    {"made_with", "open_clip 3.3.0"}};
  write_text(dir / "ok.json", j.dump());
  ModelSpec spec = load_sidecar(dir / "ok.json");
  ASSERT_TRUE(spec.reference.has_value());
  EXPECT_EQ(spec.reference->set, "parity-1");
  ASSERT_EQ(spec.reference->image_embeddings.size(), 2u);
  EXPECT_FLOAT_EQ(spec.reference->image_embeddings[0][1], 0.8f);
  EXPECT_EQ(spec.reference->made_with, "open_clip 3.3.0");
  spec.base_dir = dir.path();
  save_sidecar(spec, dir / "back.json");
  const ModelSpec back = load_sidecar(dir / "back.json");
  ASSERT_TRUE(back.reference.has_value());
  EXPECT_EQ(back.reference->image_embeddings, spec.reference->image_embeddings);
  EXPECT_EQ(back.reference->text_embeddings, spec.reference->text_embeddings);

  struct Case {
    json reference;
    const char* field;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"parity-1", "field 'reference'", "must be an object"},
      {{{"image_embeddings", {{1.0, 0.0}}}, {"text_embeddings", {{1.0, 0.0}}}},
       "field 'reference.set'",
       "missing"},
      {{{"set", "../x"}, {"image_embeddings", {{1.0, 0.0}}}, {"text_embeddings", {{1.0, 0.0}}}},
       "field 'reference.set'",
       "not a parity set name"},
      {{{"set", "p"}, {"image_embeddings", json::array()}, {"text_embeddings", {{1.0, 0.0}}}},
       "field 'reference.image_embeddings'",
       "non-empty array"},
      {{{"set", "p"}, {"image_embeddings", {{1.0, 0.0}, {1.0}}}, {"text_embeddings", {{1.0, 0.0}}}},
       "field 'reference.image_embeddings[1]'",
       "has 1 values, row 0 has 2"},
      {{{"set", "p"}, {"image_embeddings", {{1.0, 1.0}}}, {"text_embeddings", {{1.0, 0.0}}}},
       "field 'reference.image_embeddings[0]'",
       "not 1"},
      {{{"set", "p"}, {"image_embeddings", {{1.0, "x"}}}, {"text_embeddings", {{1.0, 0.0}}}},
       "field 'reference.image_embeddings[0]'",
       "finite numbers"},
      {{{"set", "p"}, {"image_embeddings", {{1.0, 0.0}}}, {"text_embeddings", {{1.0, 0.0, 0.0}}}},
       "field 'reference.text_embeddings'",
       "image rows 2"},
      {{{"set", "p"},
        {"image_embeddings", {{1.0, 0.0, 0.0}}},
        {"text_embeddings", {{0.0, 0.0, 1.0}}}},
       "field 'reference'",
       "embed_dim is 2"},
  };
  int i = 0;
  for (const auto& c : cases) {
    json bad = j;
    bad["reference"] = c.reference;
    const std::string path = dir / cat("ref", i++, ".json");
    write_text(path, bad.dump());
    expect_throw_containing<DataError>([&] { load_sidecar(path); }, {path, c.field, c.expect});
  }
}

TEST(ZooSidecar, NotJsonMissingOrNotAnObject) {
  mll::test::ScratchDir dir;
  write_text(dir / "bad.json", "{\"id\": ");
  expect_throw_containing<DataError>([&] { load_sidecar(dir / "bad.json"); },
                                     {dir / "bad.json", "not valid JSON"});
  write_text(dir / "arr.json", "[1, 2]");
  expect_throw_containing<DataError>([&] { load_sidecar(dir / "arr.json"); },
                                     {dir / "arr.json", "JSON object"});
  expect_throw_containing<DataError>([&] { load_sidecar(dir / "nope.json"); },
                                     {dir / "nope.json", "not found"});
}

TEST(ZooSidecar, SavingAnInvalidSpecIsRefusedAndWritesNothing) {
  mll::test::ScratchDir dir;
  ModelSpec spec;  // no id, no model, params 0
  EXPECT_THROW(save_sidecar(spec, dir / "x.json"), UsageError);
  EXPECT_FALSE(std::filesystem::exists(dir / "x.json"));
}

ModelSpec write_model_sidecar(const std::string& path, const std::string& id) {
  ModelSpec spec;
  spec.id = id;
  spec.model_file = id + ".pt";
  spec.params = 10;
  spec.gflops_per_image = 1.0;
  save_sidecar(spec, path);
  return spec;
}

TEST(ZooManifest, AddSaveLoadResolve) {
  mll::test::ScratchDir dir;
  std::filesystem::create_directories(dir / "models");
  write_model_sidecar(dir / "models/a.json", "a");
  write_model_sidecar(dir / "models/b.json", "b");
  ZooManifest zoo(dir / "zoo.json");
  EXPECT_EQ(zoo.add_sidecar(dir / "models/a.json").sidecar, "models/a.json");
  zoo.add({"b", "models/b.json"});
  zoo.save();

  // Loading from another working directory still resolves against the manifest's directory.
  const ZooManifest back = ZooManifest::load(dir / "zoo.json");
  ASSERT_EQ(back.entries().size(), 2u);
  EXPECT_EQ(back.sidecar_path(back.entries()[1]), dir / "models/b.json");
  const ModelSpec a = back.load_spec("a");
  EXPECT_EQ(a.model_path(), dir / "models/a.pt");
  EXPECT_EQ(back.load_all().size(), 2u);
  EXPECT_THROW(back.load_spec("zzz"), UsageError);
}

TEST(ZooManifest, DuplicateIdsAreRefused) {
  mll::test::ScratchDir dir;
  write_text(dir / "zoo.json", R"({"models": [{"id": "m", "sidecar": "a.json"},
                                              {"id": "n", "sidecar": "b.json"},
                                              {"id": "m", "sidecar": "c.json"}]})");
  expect_throw_containing<DataError>([&] { ZooManifest::load(dir / "zoo.json"); },
                                     {dir / "zoo.json", "duplicate model id 'm'", "models[2]"});

  write_model_sidecar(dir / "m.json", "m");
  ZooManifest zoo(dir / "z2.json");
  zoo.add_sidecar(dir / "m.json");
  expect_throw_containing<DataError>([&] { zoo.add_sidecar(dir / "m.json"); },
                                     {"duplicate model id 'm'"});
  expect_throw_containing<DataError>(
      [&] {
        zoo.add({"m", "other.json"});
      },
      {"duplicate model id 'm'"});
  EXPECT_EQ(zoo.entries().size(), 1u);
  EXPECT_TRUE(zoo.remove("m"));
  EXPECT_FALSE(zoo.remove("m"));
}

TEST(ZooManifest, MalformedManifestsAndIdMismatch) {
  mll::test::ScratchDir dir;
  write_text(dir / "a.json", R"({"model": []})");
  expect_throw_containing<DataError>([&] { ZooManifest::load(dir / "a.json"); },
                                     {"field 'models'", "missing"});
  write_text(dir / "b.json", R"({"models": [{"id": "x"}]})");
  expect_throw_containing<DataError>([&] { ZooManifest::load(dir / "b.json"); },
                                     {"field 'models[0].sidecar'", "missing"});
  write_text(dir / "c.json", R"({"models": [{"id": "x", "sidecar": "m.json"}]})");
  write_model_sidecar(dir / "m.json", "y");
  const ZooManifest zoo = ZooManifest::load(dir / "c.json");
  expect_throw_containing<DataError>([&] { zoo.load_spec("x"); },
                                     {dir / "m.json", "declares id 'y'", "'x'"});
}

}  // namespace
}  // namespace mll::zoo
