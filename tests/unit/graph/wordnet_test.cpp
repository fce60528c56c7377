#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "mll/core/error.hpp"
#include "test_paths.hpp"
#include "wordnet_fixture.hpp"

namespace mll::graph {
namespace {

using test::wordnet;

// Splits one CSV line with optional double-quoted fields (no embedded quotes in this file).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      fields.push_back(field);
      field.clear();
    } else {
      field.push_back(c);
    }
  }
  fields.push_back(field);
  return fields;
}

TEST(WordNet, ReadsEveryNounSynset) { EXPECT_EQ(wordnet().size(), 82115u); }

TEST(WordNet, DogFacts) {
  const Synset* dog = wordnet().find(2084071);
  ASSERT_NE(dog, nullptr);
  EXPECT_EQ(dog->name, "dog.n.01");
  EXPECT_EQ(dog->lemmas, (std::vector<std::string>{"dog", "domestic_dog", "Canis_familiaris"}));
  std::vector<std::string> parents;
  for (auto p : dog->parents) parents.push_back(wordnet().find(p)->name);
  std::sort(parents.begin(), parents.end());
  EXPECT_EQ(parents, (std::vector<std::string>{"canine.n.02", "domestic_animal.n.01"}));
  EXPECT_EQ(wordnet().find_name("dog.n.01"), dog);
  EXPECT_EQ(wnid_of(dog->offset), "n02084071");
}

TEST(WordNet, MatchesEverySanityVector) {
  const std::string path = test::source_dir() + "/tests/data/graph/wordnet_sanity_vectors.csv";
  std::ifstream csv(path);
  ASSERT_TRUE(csv) << "missing " << path;
  std::string line;
  std::getline(csv, line);  // header
  int rows = 0;
  while (std::getline(csv, line)) {
    if (line.empty()) continue;
    const auto fields = csv_fields(line);
    ASSERT_EQ(fields.size(), 3u) << line;
    const Synset* synset = wordnet().find(static_cast<std::uint32_t>(std::stoul(fields[0])));
    ASSERT_NE(synset, nullptr) << fields[0];
    EXPECT_EQ(synset->name, fields[1]);
    EXPECT_EQ(synset->definition, fields[2]);
    ++rows;
  }
  EXPECT_GE(rows, 5);
}

TEST(WordNet, InstanceHypernymsCountAsParents) {
  // Mars, the planet (09347445), has only instance-hypernym pointers ("@i"): superior planet and
  // terrestrial planet.
  const Synset* mars = wordnet().find(9347445);
  ASSERT_NE(mars, nullptr);
  std::vector<std::string> parents;
  for (auto p : mars->parents) parents.push_back(wordnet().find(p)->name);
  std::sort(parents.begin(), parents.end());
  EXPECT_EQ(parents, (std::vector<std::string>{"superior_planet.n.01", "terrestrial_planet.n.01"}));
}

TEST(WordNet, DefinitionDropsQuotedExamples) {
  // "dog.n.01"'s gloss has no example; "bank.n.01" has several quoted ones.
  const Synset* bank = wordnet().find_name("bank.n.01");
  ASSERT_NE(bank, nullptr);
  EXPECT_EQ(bank->definition.find('"'), std::string::npos);
  EXPECT_NE(bank->definition.back(), ';');
  EXPECT_EQ(bank->definition, "sloping land (especially the slope beside a body of water)");
}

TEST(WordNet, Morphology) {
  const auto& wn = wordnet();
  EXPECT_EQ(wn.morphy("dogs"), (std::vector<std::string>{"dog"}));
  EXPECT_EQ(wn.morphy("churches"), (std::vector<std::string>{"church"}));
  EXPECT_EQ(wn.morphy("geese"), (std::vector<std::string>{"goose"}));  // exception list
  EXPECT_EQ(wn.morphy("Golden Retriever"), (std::vector<std::string>{"golden_retriever"}));
  EXPECT_TRUE(wn.morphy("xyzzyq").empty());
  ASSERT_FALSE(wn.senses("dogs").empty());
  EXPECT_EQ(wn.find(wn.senses("dogs").front())->name, "dog.n.01");
}

TEST(WordNet, Wnids) {
  std::uint32_t offset = 0;
  EXPECT_TRUE(parse_wnid("n01440764", &offset));
  EXPECT_EQ(offset, 1440764u);
  EXPECT_FALSE(parse_wnid("n0144076", &offset));
  EXPECT_FALSE(parse_wnid("v01440764", &offset));
  EXPECT_FALSE(parse_wnid("n0144076x", &offset));
}

TEST(WordNet, MissingFilesNameThePackage) {
  test::ScratchDir dir;
  try {
    WordNet::load(dir.path());
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("data.noun"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("wordnet-base"), std::string::npos);
  }
  EXPECT_THROW(WordNet::load(dir / "nope"), DataError);
}

}  // namespace
}  // namespace mll::graph
