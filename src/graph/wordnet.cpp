#include "mll/graph/wordnet.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mll/core/error.hpp"
#include "mll/core/hash.hpp"

namespace mll::graph {
namespace {

constexpr const char* kPackageHint = "install Debian's wordnet-base package or pass --wordnet DIR";

std::string read_wordnet_file(const std::string& dir, const std::string& name) {
  const std::string path = (std::filesystem::path(dir) / name).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    MLL_THROW(DataError, path, ": WordNet file not found (", kPackageHint, ")");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) MLL_THROW(IoError, path, ": read error");
  return text.str();
}

std::vector<std::string_view> split_spaces(std::string_view line) {
  std::vector<std::string_view> tokens;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) tokens.push_back(line.substr(start, i - start));
  }
  return tokens;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool parse_number(std::string_view text, int base, std::uint64_t* value) {
  if (text.empty()) return false;
  char* end = nullptr;
  const std::string copy(text);
  *value = std::strtoull(copy.c_str(), &end, base);
  return end == copy.c_str() + copy.size();
}

// NLTK's definition rule: drop every "..." quotation (non-greedy pairs), then trim whitespace
// and the characters ';' and ' ' from both ends.
std::string definition_of(std::string_view gloss) {
  std::string out;
  std::size_t i = 0;
  while (i < gloss.size()) {
    if (gloss[i] == '"') {
      const std::size_t close = gloss.find('"', i + 1);
      if (close != std::string_view::npos) {
        i = close + 1;
        continue;
      }
    }
    out.push_back(gloss[i++]);
  }
  const auto is_trim = [](char c) {
    return c == ' ' || c == ';' || std::isspace(static_cast<unsigned char>(c));
  };
  // Python's strip() (whitespace) followed by strip("; ") never removes a ';' that is followed by
  // a non-space, non-';' character, so trimming the union of both sets from each end is the same.
  std::size_t begin = 0, end = out.size();
  while (begin < end && is_trim(out[begin])) ++begin;
  while (end > begin && is_trim(out[end - 1])) --end;
  return out.substr(begin, end - begin);
}

}  // namespace

std::string wnid_of(std::uint32_t offset) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "n%08u", offset);
  return buffer;
}

bool parse_wnid(std::string_view text, std::uint32_t* offset) {
  if (text.size() != 9 || text[0] != 'n') return false;
  std::uint32_t value = 0;
  for (std::size_t i = 1; i < 9; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
    value = value * 10 + static_cast<std::uint32_t>(text[i] - '0');
  }
  *offset = value;
  return true;
}

std::string WordNet::default_dir() {
  if (const char* dir = std::getenv("WNSEARCHDIR"); dir != nullptr && *dir != '\0') return dir;
  return "/usr/share/wordnet";
}

WordNet WordNet::load(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    MLL_THROW(DataError, dir, ": WordNet directory not found (", kPackageHint, ")");
  }
  WordNet wn;
  wn.dir_ = dir;
  const std::string data_path = (std::filesystem::path(dir) / "data.noun").string();
  const std::string data = read_wordnet_file(dir, "data.noun");
  wn.data_sha256_ = Sha256().update(data).hex();

  // data.noun: "offset lex_filenum ss_type w_cnt word lex_id ... p_cnt ptr... | gloss".
  // Header lines (the licence) start with two spaces.
  std::size_t line_start = 0;
  std::size_t line_number = 0;
  while (line_start < data.size()) {
    std::size_t line_end = data.find('\n', line_start);
    if (line_end == std::string::npos) line_end = data.size();
    ++line_number;
    const std::string_view line(data.data() + line_start, line_end - line_start);
    const std::size_t byte_offset = line_start;
    line_start = line_end + 1;
    if (line.empty() || line[0] == ' ') continue;

    const auto bad = [&](const std::string& what) {
      MLL_THROW(DataError, data_path, ":", line_number, ": ", what);
    };
    const std::size_t bar = line.find(" | ");
    if (bar == std::string_view::npos) bad("no gloss separator ' | '");
    const auto fields = split_spaces(line.substr(0, bar));
    std::uint64_t offset = 0, word_count = 0, pointer_count = 0;
    if (fields.size() < 4 || !parse_number(fields[0], 10, &offset)) bad("bad synset offset");
    if (offset != byte_offset) bad("synset offset does not match its byte position");
    if (fields[2] != "n") bad("not a noun synset");
    if (!parse_number(fields[3], 16, &word_count) || word_count == 0) bad("bad word count");
    std::size_t k = 4;
    Synset synset;
    synset.offset = static_cast<std::uint32_t>(offset);
    for (std::uint64_t w = 0; w < word_count; ++w, k += 2) {
      if (k + 1 >= fields.size()) bad("truncated word list");
      synset.lemmas.emplace_back(fields[k]);
    }
    if (k >= fields.size() || !parse_number(fields[k], 10, &pointer_count))
      bad("bad pointer count");
    ++k;
    for (std::uint64_t p = 0; p < pointer_count; ++p, k += 4) {
      if (k + 3 >= fields.size()) bad("truncated pointer list");
      if (fields[k] == "@" || fields[k] == "@i") {
        std::uint64_t target = 0;
        if (!parse_number(fields[k + 1], 10, &target) || fields[k + 2] != "n") {
          bad("bad hypernym pointer");
        }
        synset.parents.push_back(static_cast<std::uint32_t>(target));
      }
    }
    synset.definition = definition_of(line.substr(bar + 3));
    wn.by_offset_.emplace(synset.offset, wn.synsets_.size());
    wn.synsets_.push_back(std::move(synset));
  }
  if (wn.synsets_.empty()) MLL_THROW(DataError, data_path, ": no synsets found");

  // index.noun: "lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offset...".
  const std::string index_path = (std::filesystem::path(dir) / "index.noun").string();
  const std::string index = read_wordnet_file(dir, "index.noun");
  std::istringstream index_lines(index);
  std::string index_line;
  line_number = 0;
  while (std::getline(index_lines, index_line)) {
    ++line_number;
    if (index_line.empty() || index_line[0] == ' ') continue;
    const auto fields = split_spaces(index_line);
    std::uint64_t synset_count = 0, pointer_count = 0;
    if (fields.size() < 4 || !parse_number(fields[2], 10, &synset_count) ||
        !parse_number(fields[3], 10, &pointer_count) ||
        fields.size() != 4 + pointer_count + 2 + synset_count) {
      MLL_THROW(DataError, index_path, ":", line_number, ": malformed index line");
    }
    std::vector<std::uint32_t> offsets;
    for (std::size_t i = 4 + pointer_count + 2; i < fields.size(); ++i) {
      std::uint64_t offset = 0;
      if (!parse_number(fields[i], 10, &offset)) {
        MLL_THROW(DataError, index_path, ":", line_number, ": bad synset offset");
      }
      offsets.push_back(static_cast<std::uint32_t>(offset));
    }
    wn.index_.emplace(std::string(fields[0]), std::move(offsets));
  }

  // NLTK's name: the first lemma, lower-cased, and the 1-based position of this synset in that
  // lemma's sense list.
  for (std::size_t i = 0; i < wn.synsets_.size(); ++i) {
    Synset& synset = wn.synsets_[i];
    const std::string lemma = lower(synset.lemmas.front());
    const auto entry = wn.index_.find(lemma);
    const auto position = entry == wn.index_.end() ? std::vector<std::uint32_t>::const_iterator{}
                                                   : std::find(entry->second.begin(),
                                                               entry->second.end(), synset.offset);
    if (entry == wn.index_.end() || position == entry->second.end()) {
      MLL_THROW(DataError, index_path, ": synset ", wnid_of(synset.offset), " ('", lemma,
                "') is missing from the index");
    }
    char sense[16];
    std::snprintf(sense, sizeof sense, "%02d",
                  static_cast<int>(position - entry->second.begin()) + 1);
    synset.name = lemma + ".n." + sense;
    wn.by_name_.emplace(synset.name, i);
  }

  // noun.exc is optional for naming but needed for morphology; Debian always ships it.
  const std::string exceptions = read_wordnet_file(dir, "noun.exc");
  std::istringstream exception_lines(exceptions);
  std::string exception_line;
  while (std::getline(exception_lines, exception_line)) {
    const auto fields = split_spaces(exception_line);
    if (fields.size() < 2) continue;
    auto& bases = wn.exceptions_[std::string(fields[0])];
    for (std::size_t i = 1; i < fields.size(); ++i) bases.emplace_back(fields[i]);
  }
  return wn;
}

const Synset* WordNet::find(std::uint32_t offset) const {
  const auto it = by_offset_.find(offset);
  return it == by_offset_.end() ? nullptr : &synsets_[it->second];
}

const Synset* WordNet::find_name(std::string_view name) const {
  const auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &synsets_[it->second];
}

std::vector<std::string> WordNet::morphy(std::string_view word) const {
  // WordNet's noun detachment rules (morph.c), applied once, as NLTK's morphy does.
  static const std::pair<const char*, const char*> kRules[] = {
      {"s", ""},      {"ses", "s"},   {"xes", "x"},   {"zes", "z"},
      {"ches", "ch"}, {"shes", "sh"}, {"men", "man"}, {"ies", "y"}};
  std::string form = lower(word);
  std::replace(form.begin(), form.end(), ' ', '_');
  std::vector<std::string> candidates{form};
  if (const auto it = exceptions_.find(form); it != exceptions_.end()) {
    candidates.insert(candidates.end(), it->second.begin(), it->second.end());
  } else {
    for (const auto& [suffix, replacement] : kRules) {
      const std::string_view s(suffix);
      if (form.size() > s.size() && form.compare(form.size() - s.size(), s.size(), s) == 0) {
        candidates.push_back(form.substr(0, form.size() - s.size()) + replacement);
      }
    }
  }
  std::vector<std::string> found;
  for (const auto& candidate : candidates) {
    if (index_.count(candidate) != 0 &&
        std::find(found.begin(), found.end(), candidate) == found.end()) {
      found.push_back(candidate);
    }
  }
  return found;
}

std::vector<std::uint32_t> WordNet::senses(std::string_view word) const {
  std::vector<std::string> forms = morphy(word);
  if (forms.empty() && word.find('-') != std::string_view::npos) {
    std::string dashed(word);
    std::replace(dashed.begin(), dashed.end(), '-', '_');
    forms = morphy(dashed);
  }
  std::vector<std::uint32_t> offsets;
  for (const auto& form : forms) {
    for (std::uint32_t offset : index_.at(form)) {
      if (std::find(offsets.begin(), offsets.end(), offset) == offsets.end()) {
        offsets.push_back(offset);
      }
    }
  }
  return offsets;
}

}  // namespace mll::graph
