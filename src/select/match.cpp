#include "mll/select/match.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>

#include "mll/core/cpus.hpp"
#include "mll/core/error.hpp"
#include "mll/core/linalg.hpp"
#include "mll/core/log.hpp"
#include "mll/feed/inputs.hpp"
#include "mll/select/text_cache.hpp"
#include "mll/zoo/digests.hpp"
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

std::vector<std::string> rank_text_towers(const std::vector<zoo::ModelSpec>& specs) {
  std::vector<const zoo::ModelSpec*> order;
  for (const auto& s : specs) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(),
                   [](const zoo::ModelSpec* a, const zoo::ModelSpec* b) {
                     if (a->imagenet_top1.has_value() != b->imagenet_top1.has_value()) {
                       return a->imagenet_top1.has_value();
                     }
                     if (a->imagenet_top1 && *a->imagenet_top1 != *b->imagenet_top1) {
                       return *a->imagenet_top1 > *b->imagenet_top1;
                     }
                     if (a->params != b->params) return a->params > b->params;
                     return a->id < b->id;
                   });
  std::vector<std::string> ids;
  for (const auto* s : order) ids.push_back(s->id);
  return ids;
}

std::string tokenizer_key(const zoo::ModelSpec& spec) {
  return spec.tokenizer.kind + " " + std::to_string(spec.tokenizer.context_length) + " " +
         spec.tokenizer.vocab;
}

namespace {

using Clock = std::chrono::steady_clock;

const zoo::ModelSpec* find_spec(const std::vector<zoo::ModelSpec>& specs, const std::string& id) {
  for (const auto& s : specs) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

// The towers options ask for, checked against the store and the zoo.
std::vector<std::string> matching_towers(const store::Store& store,
                                         const std::vector<zoo::ModelSpec>& specs,
                                         const MatchOptions& options) {
  std::vector<std::string> ids = options.models;
  if (ids.empty()) {
    std::vector<zoo::ModelSpec> done;
    for (const auto& r : store.models()) {
      const auto* spec = find_spec(specs, r.id);
      if (r.status == store::ModelStatus::kDone && spec) done.push_back(*spec);
    }
    if (options.all_models) {
      for (const auto& s : done) ids.push_back(s.id);  // store (id) order, as before
    } else {
      ids = rank_text_towers(done);
      ids.resize(std::min(ids.size(), std::max<std::size_t>(1, options.best)));
    }
  }
  for (const auto& id : ids) {
    const auto record = store.find_model(id);
    if (!record || record->status != store::ModelStatus::kDone) {
      MLL_THROW(UsageError, store.path(), ": matching model '", id,
                "' is not a done model of the store");
    }
    if (!find_spec(specs, id)) MLL_THROW(UsageError, "matching model '", id, "' is not in the zoo");
  }
  return ids;
}

int text_threads(const MatchOptions& options) {
  if (options.threads > 0) return options.threads;
  const int cores = usable_cpu_count(), library = numeric_library_threads();
  return library > 0 ? std::min(cores, library) : cores;
}

// The rows tower `spec` gives `texts` (row i for texts[i]). The texts are independent, so each
// of `threads` threads encodes whole batches on one libtorch and one BLAS thread: libtorch's own
// intra-op threads scale poorly here, as its BLAS starts threads of its own inside each of them.
// The batches are equal and as many as a multiple of the threads, so no thread is left with a
// tail.
std::vector<std::vector<float>> encode_texts(const zoo::ModelSpec& spec,
                                             const std::vector<std::string>& texts,
                                             std::size_t threads, std::size_t most) {
  std::size_t batches = (texts.size() + most - 1) / most;
  batches = (batches + threads - 1) / threads * threads;
  const std::size_t batch = (texts.size() + batches - 1) / batches;
  std::vector<std::size_t> firsts;
  std::vector<std::vector<std::int64_t>> tokens;
  const auto tokenizer = feed::make_tokenizer(spec);  // tokenized here: not shared by threads
  for (std::size_t first = 0; first < texts.size(); first += batch) {
    const auto end = static_cast<std::ptrdiff_t>(std::min(texts.size(), first + batch));
    firsts.push_back(first);
    tokens.push_back(tokenizer->encode_batch(
        {texts.begin() + static_cast<std::ptrdiff_t>(first), texts.begin() + end}));
  }
  zoo::set_threads(1);
  const linalg::ScopedThreads one_blas_thread(1);
  const zoo::Model model(spec);
  const int length = tokenizer->context_length();
  std::vector<std::vector<float>> rows(texts.size());
  std::atomic<std::size_t> next{0};
  std::mutex failure_mutex;
  std::exception_ptr failure;
  const auto work = [&] {
    try {
      for (std::size_t b = next++; b < firsts.size(); b = next++) {
        const auto count = static_cast<int>(tokens[b].size() / static_cast<std::size_t>(length));
        const Matrix e = model.encode_text(tokens[b].data(), count, length);
        for (int r = 0; r < count; ++r) {
          rows[firsts[b] + static_cast<std::size_t>(r)].assign(e.row(r), e.row(r) + e.cols);
        }
      }
    } catch (...) {
      const std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < std::min(threads, firsts.size()); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  return rows;
}

// The vector of every distinct text of `texts` under tower `spec`: from the cache, the rest
// embedded by the loaded tower (and added to the cache). Counts what came from where.
std::map<std::string, std::vector<float>> embed_texts(const store::Store& store,
                                                      const zoo::ModelSpec& spec,
                                                      const std::vector<std::string>& texts,
                                                      const MatchOptions& options,
                                                      MatchResult& out) {
  const auto record = store.find_model(spec.id);
  TextCache cache(options.text_cache, {spec.id, record->model_sha256, tokenizer_key(spec)});
  std::map<std::string, std::vector<float>> rows;
  std::vector<std::string> missing;
  std::set<std::string> seen;
  for (const auto& text : texts) {
    if (!seen.insert(text).second) continue;
    if (const auto* row = cache.find(text)) {
      rows[text] = *row;
      ++out.texts_cached;
    } else {
      missing.push_back(text);
    }
  }
  if (missing.empty()) return rows;
  // The tower's text vectors join its labels' space, and the cache keeps them under the labeled
  // file's digest. (Like the text cache, `<store>.digests` is written beside the store when the
  // file had to be hashed.)
  zoo::check_labeled_file(spec, record->model_sha256, store.path() + ".digests");
  auto computed = encode_texts(spec, missing, static_cast<std::size_t>(text_threads(options)),
                               std::max<std::size_t>(1, options.batch));
  for (std::size_t i = 0; i < missing.size(); ++i) {
    cache.add(missing[i], computed[i]);
    rows[missing[i]] = std::move(computed[i]);
  }
  out.texts_embedded += missing.size();
  cache.save();
  return rows;
}

}  // namespace

MatchResult match_task(const store::Store& store, const Task& task,
                       const std::vector<zoo::ModelSpec>& specs, const graph::WordNet* wordnet,
                       const MatchOptions& options) {
  const auto t0 = Clock::now();
  const auto& graph = store.graph();
  const auto& probe = store.probe();
  const std::size_t n = graph.size();
  const std::size_t classes = task.classes.size();
  MatchResult out;

  std::vector<char> eligible(n, 0);
  for (std::size_t v = 0; v < n; ++v) {
    eligible[v] = probe.node_offsets[v + 1] > probe.node_offsets[v] ? 1 : 0;
  }

  if (options.text) {
    out.models = matching_towers(store, specs, options);
    if (out.models.empty()) {
      out.warnings.push_back(
          "no text tower available for matching (give --zoo): WordNet lemmas only");
    }
  } else {
    out.warnings.push_back("matching by WordNet lemmas only (no text towers)");
  }

  std::vector<std::vector<std::string>> texts(classes);
  std::vector<std::string> all_texts;
  for (std::size_t y = 0; y < classes; ++y) {
    texts[y] = class_texts(task, y, options);
    all_texts.insert(all_texts.end(), texts[y].begin(), texts[y].end());
  }
  // Mean cosine over the matching models, class x node.
  std::vector<double> cosine(classes * n, 0.0);
  for (const auto& id : out.models) {
    const zoo::ModelSpec& spec = *find_spec(specs, id);
    const auto rows = embed_texts(store, spec, all_texts, options, out);
    const Matrix text = store.read_text_embeddings(id);
    const auto d = text.cols;
    for (std::size_t y = 0; y < classes; ++y) {
      // Average the (unit) caption embeddings, then renormalise: the class's text direction.
      std::vector<double> mean(static_cast<std::size_t>(d), 0.0);
      for (const auto& t : texts[y]) {
        const auto& row = rows.at(t);
        if (static_cast<std::int64_t>(row.size()) != d) {
          MLL_THROW(DataError, "model '", id, "': text tower width ", row.size(),
                    " differs from the stored embeddings' ", d);
        }
        for (std::int64_t c = 0; c < d; ++c)
          mean[static_cast<std::size_t>(c)] += row[static_cast<std::size_t>(c)];
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
    match.texts = texts[y];
    out.classes.push_back(std::move(match));
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

}  // namespace mll::select
