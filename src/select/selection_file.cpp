#include "mll/select/selection_file.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/version.hpp"

namespace mll::select {
namespace {

using nlohmann::json;

json require(const json& doc, const char* key, const std::string& origin) {
  if (!doc.is_object() || !doc.contains(key))
    MLL_THROW(DataError, origin, ": '", key, "' is missing");
  return doc[key];
}

}  // namespace

std::string stored_selection_path(const std::string& store_path, const std::string& task_name) {
  return store_path + ".d/selections/" + task_name + ".json";
}

void write_text_atomic(const std::string& path, const std::string& text) {
  fs::AtomicOutput output(path);
  {
    std::ofstream out(output.temp_path(), std::ios::binary);
    if (!out) MLL_THROW(IoError, path, ": cannot write");
    out << text;
    out.close();
    if (!out) MLL_THROW(IoError, path, ": write failed");
  }
  output.commit();
}

std::string selection_json(const store::Store& store, const Task& task, const MatchResult& match,
                           const TaskNodes& nodes, const SelectionResult& result,
                           const SelectOptions& options) {
  const auto& graph = store.graph();
  MLL_CHECK(match.classes.size() == task.classes.size());
  MLL_CHECK(result.chosen.size() == task.classes.size());
  json doc;
  doc["kind"] = "mll-selection";
  doc["version"] = 1;
  doc["mll_version"] = std::string(version());
  doc["task"] = task.name;
  doc["task_file"] = task.path;
  doc["store"] = store.path();
  doc["graph_hash"] = graph.content_hash();
  doc["models"] = result.models;
  doc["k"] = options.k;
  doc["alpha"] = options.alpha;
  doc["metric"] = to_string(options.metric);
  doc["mix"] = to_string(options.mix);
  doc["match_models"] = match.models;
  doc["warnings"] = match.warnings;
  json task_nodes = json::array();
  for (const auto v : nodes.nodes)
    task_nodes.push_back(graph.node(static_cast<std::size_t>(v)).wnid);
  doc["task_nodes"] = task_nodes;
  json classes = json::array();
  for (std::size_t y = 0; y < task.classes.size(); ++y) {
    const auto& m = match.classes[y];
    json c;
    c["name"] = task.classes[y];
    c["texts"] = m.texts;
    json matched = json::array();
    for (const auto& n : m.nodes) {
      const auto& node = graph.node(static_cast<std::size_t>(n.node));
      matched.push_back(
          {{"wnid", node.wnid},
           {"name", node.name},
           {"weight", n.weight},
           {"score", n.score},
           {"cosine", n.cosine},
           {"lexical", n.lexical},
           {"probe_images", store.probe().images_of(static_cast<std::size_t>(n.node)).size()}});
    }
    c["matched_nodes"] = matched;
    json chosen = json::array();
    for (const auto& ch : result.chosen[y]) {
      chosen.push_back({{"model", ch.model}, {"score", ch.score}, {"class_score", ch.class_score}});
    }
    c["chosen"] = chosen;
    c["warnings"] = m.warnings;
    classes.push_back(c);
  }
  doc["classes"] = classes;
  json scores = json::array();
  for (const auto& s : result.scores) {
    json counts = json::array();
    for (const auto& c : s.counts) counts.push_back({c.tp, c.fp, c.fn});
    scores.push_back({{"model", s.model},
                      {"logit_scale", s.logit_scale},
                      {"node_counts", counts},
                      {"node_scores", s.node_scores},
                      {"class_scores", s.class_scores},
                      {"mixed", s.mixed}});
  }
  doc["scores"] = scores;
  // Everything that differs between two runs of one selection is here (and only here).
  doc["timing"] = {{"io_seconds", result.io_seconds},
                   {"compute_seconds", result.compute_seconds},
                   {"match_seconds", match.seconds},
                   {"texts_cached", match.texts_cached},
                   {"texts_embedded", match.texts_embedded}};
  return doc.dump(1) + "\n";
}

SelectionFile read_selection(const std::string& path) {
  json doc;
  try {
    doc = json::parse(fs::read_file(path));
  } catch (const json::exception& e) {
    MLL_THROW(DataError, path, ": not valid JSON (", e.what(), ")");
  }
  SelectionFile out;
  try {
    if (require(doc, "kind", path) != "mll-selection") {
      MLL_THROW(DataError, path, ": not an mll selection file");
    }
    out.task = require(doc, "task", path).get<std::string>();
    out.models = require(doc, "models", path).get<std::vector<std::string>>();
    out.k = require(doc, "k", path).get<std::size_t>();
    out.alpha = require(doc, "alpha", path).get<double>();
    out.metric = require(doc, "metric", path).get<std::string>();
    out.mix = require(doc, "mix", path).get<std::string>();
    if (doc.contains("warnings"))
      out.global_warnings = doc["warnings"].get<std::vector<std::string>>();
    for (const auto& c : require(doc, "classes", path)) {
      out.classes.push_back(require(c, "name", path).get<std::string>());
      std::vector<Choice> chosen;
      for (const auto& ch : require(c, "chosen", path)) {
        chosen.push_back({require(ch, "model", path).get<std::string>(),
                          require(ch, "score", path).get<double>(), ch.value("class_score", 0.0)});
      }
      out.chosen.push_back(chosen);
      std::vector<std::string> wnids, names;
      std::vector<double> weights;
      for (const auto& n : require(c, "matched_nodes", path)) {
        wnids.push_back(require(n, "wnid", path).get<std::string>());
        names.push_back(n.value("name", std::string()));
        weights.push_back(require(n, "weight", path).get<double>());
      }
      out.node_wnids.push_back(wnids);
      out.node_names.push_back(names);
      out.node_weights.push_back(weights);
      out.warnings.push_back(c.value("warnings", std::vector<std::string>()));
    }
  } catch (const json::exception& e) {
    MLL_THROW(DataError, path, ": malformed selection (", e.what(), ")");
  }
  return out;
}

MatchResult read_matches(const std::string& path, const store::Store& store, const Task& task) {
  json doc;
  try {
    doc = json::parse(fs::read_file(path));
  } catch (const json::exception& e) {
    MLL_THROW(DataError, path, ": not valid JSON (", e.what(), ")");
  }
  MatchResult out;
  out.classes.resize(task.classes.size());
  std::vector<char> seen(task.classes.size(), 0);
  try {
    for (const auto& c : require(doc, "classes", path)) {
      const std::string name = require(c, "name", path).get<std::string>();
      const auto y = task.class_index(name);
      if (y < 0) MLL_THROW(DataError, path, ": class '", name, "' is not a class of ", task.path);
      auto& m = out.classes[static_cast<std::size_t>(y)];
      m.name = name;
      seen[static_cast<std::size_t>(y)] = 1;
      if (c.contains("texts")) m.texts = c["texts"].get<std::vector<std::string>>();
      if (c.contains("warnings")) m.warnings = c["warnings"].get<std::vector<std::string>>();
      for (const auto& n : require(c, "matched_nodes", path)) {
        const std::string wnid = require(n, "wnid", path).get<std::string>();
        const auto v = store.graph().index_of(wnid);
        if (v < 0)
          MLL_THROW(DataError, path, ": node ", wnid, " is not in the graph of ", store.path());
        NodeMatch match;
        match.node = v;
        match.weight = require(n, "weight", path).get<double>();
        match.score = n.value("score", 0.0);
        match.cosine = n.value("cosine", 0.0);
        match.lexical = n.value("lexical", false);
        m.nodes.push_back(match);
      }
    }
    if (doc.contains("match_models"))
      out.models = doc["match_models"].get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    MLL_THROW(DataError, path, ": malformed matches (", e.what(), ")");
  }
  for (std::size_t y = 0; y < seen.size(); ++y) {
    if (!seen[y]) MLL_THROW(DataError, path, ": no matches for class '", task.classes[y], "'");
  }
  out.warnings.push_back("matches read from " + path);
  return out;
}

}  // namespace mll::select
