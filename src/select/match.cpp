#include "mll/select/match.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "mll/core/error.hpp"
#include "mll/core/log.hpp"
#include "mll/feed/inputs.hpp"
#include "mll/zoo/runner.hpp"

namespace mll::select {
namespace {

std::string normalise_lemma(std::string text) {
  for (char& c : text) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c == ' ' || c == '-') c = '_';
  }
  return text;
}

void replace_all(std::string& text, const std::string& what, const std::string& with) {
  for (std::size_t pos = 0; (pos = text.find(what, pos)) != std::string::npos; pos += with.size()) {
    text.replace(pos, what.size(), with);
  }
}

std::string fmt(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", v);
  return buffer;
}

}  // namespace

std::string fill_template(const std::string& pattern, const std::string& class_name,
                          const std::string& domain) {
  std::string out = pattern;
  replace_all(out, "{class}", class_name);
  replace_all(out, "{domain}", domain);
  return out;
}

std::vector<std::string> class_texts(const Task& task, std::size_t y, const MatchOptions& options) {
  const auto& name = task.classes.at(y);
  const auto it = task.captions.find(name);
  if (it != task.captions.end() && !it->second.empty()) return it->second;
  return {task.domain.empty() ? fill_template(options.template_plain, name, "")
                              : fill_template(options.template_domain, name, task.domain)};
}

std::vector<double> softmax_weights(const std::vector<double>& scores, double temperature) {
  if (!(temperature > 0.0)) MLL_THROW(UsageError, "the match temperature must be positive");
  if (scores.empty()) return {};
  const double top = *std::max_element(scores.begin(), scores.end());
  std::vector<double> z(scores.size());
  double sum = 0.0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    z[i] = std::exp((scores[i] - top) / temperature);
    sum += z[i];
  }
  for (auto& v : z) v /= sum;
  return z;
}

ClassMatch rank_nodes(const std::string& class_name, const std::vector<double>& cosine,
                      const std::vector<char>& lexical, const std::vector<char>& eligible,
                      const MatchOptions& options) {
  MLL_CHECK(cosine.size() == lexical.size() && cosine.size() == eligible.size());
  ClassMatch out;
  out.name = class_name;
  std::vector<std::int32_t> order;
  std::vector<double> score(cosine.size());
  for (std::size_t v = 0; v < cosine.size(); ++v) {
    score[v] = cosine[v] + (lexical[v] ? options.lexical_bonus : 0.0);
    if (eligible[v]) order.push_back(static_cast<std::int32_t>(v));
  }
  if (order.empty()) {
    out.warnings.push_back("class '" + class_name +
                           "' matches no graph node with probe images: it has no evidence");
    return out;
  }
  std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
    return score[static_cast<std::size_t>(a)] > score[static_cast<std::size_t>(b)];
  });
  order.resize(std::min(order.size(), std::max<std::size_t>(1, options.n_match)));
  std::vector<double> kept;
  bool any_lexical = false;
  for (const auto v : order) {
    kept.push_back(score[static_cast<std::size_t>(v)]);
    any_lexical |= lexical[static_cast<std::size_t>(v)] != 0;
  }
  const auto z = softmax_weights(kept, options.temperature);
  for (std::size_t j = 0; j < order.size(); ++j) {
    const auto v = static_cast<std::size_t>(order[j]);
    out.nodes.push_back({order[j], score[v], cosine[v], lexical[v] != 0, z[j]});
  }
  if (!any_lexical && kept.front() < options.min_score) {
    out.warnings.push_back("class '" + class_name + "' matches nothing well: no WordNet lemma " +
                           "match and best score " + fmt(kept.front()) + " < " +
                           fmt(options.min_score) + "; its model choice rests on weak evidence");
  }
  return out;
}

std::vector<char> lexical_matches(const graph::Graph& graph, const graph::WordNet* wordnet,
                                  const std::string& class_name) {
  std::vector<char> out(graph.size(), 0);
  const std::string key = normalise_lemma(class_name);
  for (std::size_t v = 0; v < graph.size(); ++v) {
    for (const auto& lemma : graph.node(v).lemmas) {
      if (normalise_lemma(lemma) == key) out[v] = 1;
    }
    if (!graph.node(v).seed_label.empty() && normalise_lemma(graph.node(v).seed_label) == key) {
      out[v] = 1;
    }
  }
  if (wordnet != nullptr) {
    for (const auto offset : wordnet->senses(class_name)) {
      char wnid[16];
      std::snprintf(wnid, sizeof wnid, "n%08u", offset);
      const auto v = graph.index_of(wnid);
      if (v >= 0) out[static_cast<std::size_t>(v)] = 1;
    }
  }
  return out;
}

MatchResult match_task(const store::Store& store, const Task& task,
                       const std::vector<zoo::ModelSpec>& specs, const graph::WordNet* wordnet,
                       const MatchOptions& options) {
  const auto& graph = store.graph();
  const auto& probe = store.probe();
  const std::size_t n = graph.size();
  const std::size_t classes = task.classes.size();
  MatchResult out;

  std::vector<char> eligible(n, 0);
  for (std::size_t v = 0; v < n; ++v) {
    eligible[v] = probe.node_offsets[v + 1] > probe.node_offsets[v] ? 1 : 0;
  }

  // Which text towers: the requested ones, else every done model that has a spec.
  if (options.text) {
    std::vector<std::string> ids = options.models;
    const auto spec_of = [&](const std::string& id) -> const zoo::ModelSpec* {
      for (const auto& s : specs) {
        if (s.id == id) return &s;
      }
      return nullptr;
    };
    if (ids.empty()) {
      for (const auto& r : store.models()) {
        if (r.status == store::ModelStatus::kDone && spec_of(r.id)) ids.push_back(r.id);
      }
    }
    for (const auto& id : ids) {
      const auto record = store.find_model(id);
      if (!record || record->status != store::ModelStatus::kDone) {
        MLL_THROW(UsageError, store.path(), ": matching model '", id,
                  "' is not a done model of the store");
      }
      if (!spec_of(id)) MLL_THROW(UsageError, "matching model '", id, "' is not in the zoo");
    }
    out.models = ids;
    if (ids.empty()) {
      out.warnings.push_back(
          "no text tower available for matching (give --zoo): WordNet lemmas only");
    }
  } else {
    out.warnings.push_back("matching by WordNet lemmas only (no text towers)");
  }

  // Mean cosine over the matching models, class x node.
  std::vector<double> cosine(classes * n, 0.0);
  for (const auto& id : out.models) {
    const zoo::ModelSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.id == id) spec = &s;
    }
    zoo::Model model(*spec);
    const auto tokenizer = feed::make_tokenizer(*spec);
    const Matrix text = store.read_text_embeddings(id);
    const auto d = text.cols;
    for (std::size_t y = 0; y < classes; ++y) {
      const auto texts = class_texts(task, y, options);
      const auto ids = tokenizer->encode_batch(texts);
      const auto e = model.encode_text(ids.data(), static_cast<int>(texts.size()),
                                       tokenizer->context_length());
      if (e.cols != d) {
        MLL_THROW(DataError, "model '", id, "': text tower width ", e.cols,
                  " differs from the stored embeddings' ", d);
      }
      // Average the (unit) caption embeddings, then renormalise: the class's text direction.
      std::vector<double> mean(static_cast<std::size_t>(d), 0.0);
      for (std::int64_t r = 0; r < e.rows; ++r) {
        for (std::int64_t t = 0; t < d; ++t) mean[static_cast<std::size_t>(t)] += e.row(r)[t];
      }
      double norm = 0.0;
      for (const auto x : mean) norm += x * x;
      norm = std::sqrt(norm);
      if (norm > 0) {
        for (auto& x : mean) x /= norm;
      }
      for (std::size_t v = 0; v < n; ++v) {
        const auto c = store.node_caption()[v];
        const float* row = text.values.data() + c * d;
        double dot = 0.0;
        for (std::int64_t t = 0; t < d; ++t) dot += mean[static_cast<std::size_t>(t)] * row[t];
        cosine[y * n + v] += dot / static_cast<double>(out.models.size());
      }
    }
    log::info("matched ", classes, " classes with the text tower of ", id);
  }

  for (std::size_t y = 0; y < classes; ++y) {
    const std::vector<double> row(cosine.begin() + static_cast<std::ptrdiff_t>(y * n),
                                  cosine.begin() + static_cast<std::ptrdiff_t>((y + 1) * n));
    const auto lexical = lexical_matches(graph, wordnet, task.classes[y]);
    // Without text evidence only lemma matches are evidence: other nodes would be arbitrary.
    auto usable = eligible;
    if (out.models.empty()) {
      for (std::size_t v = 0; v < n; ++v) usable[v] = static_cast<char>(usable[v] && lexical[v]);
    }
    auto match = rank_nodes(task.classes[y], row, lexical, usable, options);
    match.texts = class_texts(task, y, options);
    out.classes.push_back(std::move(match));
  }
  return out;
}

}  // namespace mll::select
