// Matching a task's classes to graph nodes (method.md section 3; design in docs/selection.md).
//
// score(y, v) = cos(y, v) + lexical_bonus * [class name of y is a lemma of v after WordNet's
// morphology], where cos is the cosine between the class text's embedding and node v's stored
// caption embedding, averaged over the matching models. Candidates are the graph nodes that have
// probe images (a node without images carries no evidence for selection). Each class keeps its
// top n_match nodes with weights z = softmax(score / temperature) over those nodes.
//
// Cost: a matching model that has to embed texts is loaded whole (seconds and ~600 MB for a
// ViT-B/32-sized file), so by default one text tower matches (rank_text_towers: the best by the
// sidecars' imagenet_top1), and class texts already embedded by a tower are taken from the text
// cache (text_cache.hpp) without loading it. Nothing here is collective.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mll/graph/wordnet.hpp"
#include "mll/select/task.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/model_spec.hpp"

namespace mll::select {

struct MatchOptions {
  // Text towers that embed the class texts (their cosines are averaged): `models` when it is not
  // empty; else, of the done models of the store that have a spec, all of them (`all_models`)
  // or the first `best` in rank_text_towers' order.
  std::vector<std::string> models;
  bool all_models = false;
  std::size_t best = 1;
  bool text = true;  // false: lexical (WordNet) evidence only
  // Directory of the text cache (default_text_cache_dir(store)); "" caches nothing.
  std::string text_cache;
  int threads = 0;         // threads of a tower that runs; 0: the CPUs this process may use
  std::size_t batch = 32;  // texts per forward pass
  std::size_t n_match = 5;
  double lexical_bonus = 1.0;
  double temperature = 0.05;
  double min_score = 0.5;  // a class whose best score is below this (and no lemma match) warns
  std::string template_domain = "a photo of a {class}, {domain}.";
  std::string template_plain = "a photo of a {class}.";
};

struct NodeMatch {
  std::int32_t node = -1;  // graph node index
  double score = 0.0;      // cosine + bonus
  double cosine = 0.0;     // mean cosine over the matching models (0 without text evidence)
  bool lexical = false;
  double weight = 0.0;  // z
};

struct ClassMatch {
  std::string name;
  std::vector<std::string> texts;  // what was embedded
  std::vector<NodeMatch> nodes;    // best first
  std::vector<std::string> warnings;
};

struct MatchResult {
  std::vector<ClassMatch> classes;
  std::vector<std::string> models;  // the text towers used
  std::vector<std::string> warnings;
  // Distinct (tower, text) pairs taken from the text cache and embedded by a loaded tower.
  std::size_t texts_cached = 0, texts_embedded = 0;
  double seconds = 0.0;  // matching's wall time
};

// ---- Pure parts
// ----------------------------------------------------------------------------------

// The texts embedded for class y: its captions when the task has any, else one template filled
// with the class name and (when given) the domain. Does not throw.
std::vector<std::string> class_texts(const Task& task, std::size_t y, const MatchOptions& options);

// Replaces every "{class}" and "{domain}" in `pattern`. Does not throw.
std::string fill_template(const std::string& pattern, const std::string& class_name,
                          const std::string& domain);

// z = softmax(scores / temperature) (numerically stable). Throws UsageError for temperature <= 0.
std::vector<double> softmax_weights(const std::vector<double>& scores, double temperature);

// Ranks the eligible nodes by cosine[v] + bonus * lexical[v] (ties: smaller node index first),
// keeps the first n_match and weights them. `cosine`, `lexical` and `eligible` have one entry per
// graph node. Adds a warning when nothing is eligible, or when no kept node is a lexical match
// and the best score is below options.min_score.
ClassMatch rank_nodes(const std::string& class_name, const std::vector<double>& cosine,
                      const std::vector<char>& lexical, const std::vector<char>& eligible,
                      const MatchOptions& options);

// Per graph node: whether `class_name` (spaces and hyphens as underscores, any case) is one of its
// lemmas directly or after WordNet's morphology (`wordnet` may be null: direct lemmas only).
std::vector<char> lexical_matches(const graph::Graph& graph, const graph::WordNet* wordnet,
                                  const std::string& class_name);

// The default order of text towers for matching: the sidecar's imagenet_top1, highest first
// (specs without one after every spec with one), then params, largest first, then id. The general
// figure a hub publishes is the best evidence available of a tower's general text quality; size
// breaks ties because larger text towers of one family embed text better. Returns ids. Does not
// throw.
std::vector<std::string> rank_text_towers(const std::vector<zoo::ModelSpec>& specs);

// The text-cache key part of a tokenizer: kind, context length and vocabulary as written in the
// sidecar. Does not throw.
std::string tokenizer_key(const zoo::ModelSpec& spec);

// ---- Against a store
// -----------------------------------------------------------------------------

// Matches every class of `task`. Text towers come from `specs` (resolved model files; looked up by
// id); with options.text false, or no specs, matching is lexical only (a warning says so). Texts
// a tower has embedded before come from the text cache; a tower with texts left is loaded,
// embeds them in batches on options.threads threads (setting libtorch's process-wide intra-op
// threads to 1 for that) and adds them to the cache. Throws UsageError when options.models names a
// model that is not done in the store or has no spec, DataError / IoError from the models and the
// store (never for the cache).
MatchResult match_task(const store::Store& store, const Task& task,
                       const std::vector<zoo::ModelSpec>& specs, const graph::WordNet* wordnet,
                       const MatchOptions& options);

}  // namespace mll::select
