// Reader for the WordNet 3.0 noun database as shipped by Debian's wordnet-base package.
//
// Loads data.noun (synsets, glosses, hypernym pointers) and index.noun (lemma -> senses, which
// gives NLTK-style names such as dog.n.01) fully into memory: ~82k synsets, ~15 MB of text,
// well under a second. Nothing here is collective.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mll::graph {

// One noun synset.
struct Synset {
  std::uint32_t offset = 0;            // byte offset in data.noun, the synset's identity
  std::vector<std::string> lemmas;     // as written in data.noun (underscores, original case)
  std::vector<std::uint32_t> parents;  // hypernyms (@) and instance hypernyms (@i), file order
  std::string definition;              // the gloss without quoted examples (NLTK's rule)
  std::string name;                    // NLTK-style name, e.g. "dog.n.01"
};

// "n02084071" for offset 2084071.
std::string wnid_of(std::uint32_t offset);

// Parses "n%08d". Returns false for anything else (wrong prefix, length, or non-digits).
bool parse_wnid(std::string_view text, std::uint32_t* offset);

class WordNet {
 public:
  // The directory holding data.noun: $WNSEARCHDIR if set, else Debian's /usr/share/wordnet.
  static std::string default_dir();

  // Reads data.noun, index.noun and noun.exc from `dir`. Throws DataError naming the missing
  // file and the package that provides it, or the line that does not parse.
  static WordNet load(const std::string& dir);

  const std::string& dir() const noexcept { return dir_; }
  std::size_t size() const noexcept { return synsets_.size(); }
  const std::vector<Synset>& synsets() const noexcept { return synsets_; }

  // nullptr when there is no noun synset at that offset.
  const Synset* find(std::uint32_t offset) const;
  // By NLTK-style name ("dog.n.01"); nullptr when unknown.
  const Synset* find_name(std::string_view name) const;

  // Noun senses of a word or phrase, in WordNet's sense order, after WordNet's morphology
  // (exception list, then suffix rules, as NLTK's morphy does): "dogs" -> dog.n.01, ...
  // Spaces and hyphens are tried as underscores; case is ignored.
  std::vector<std::uint32_t> senses(std::string_view word) const;

  // The base forms morphy finds for `word` that are nouns in index.noun (possibly several).
  std::vector<std::string> morphy(std::string_view word) const;

  // SHA-256 of data.noun: identifies the exact database a graph was built from.
  const std::string& data_sha256() const noexcept { return data_sha256_; }

 private:
  std::string dir_;
  std::string data_sha256_;
  std::vector<Synset> synsets_;  // in offset order
  std::unordered_map<std::uint32_t, std::size_t> by_offset_;
  std::unordered_map<std::string, std::size_t> by_name_;
  std::unordered_map<std::string, std::vector<std::uint32_t>> index_;     // lemma -> offsets
  std::unordered_map<std::string, std::vector<std::string>> exceptions_;  // noun.exc
};

}  // namespace mll::graph
