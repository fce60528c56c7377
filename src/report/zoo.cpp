#include "mll/report/zoo.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mll/core/error.hpp"
#include "mll/report/html.hpp"

namespace mll::report {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool has_images(const probe::ProbeSet& probe, std::int32_t v) {
  const auto i = static_cast<std::size_t>(v);
  return i + 1 < probe.node_offsets.size() && probe.node_offsets[i + 1] > probe.node_offsets[i];
}

std::size_t memberships(const probe::ProbeSet& probe, std::int32_t v) {
  if (!has_images(probe, v)) return 0;
  const auto i = static_cast<std::size_t>(v);
  return static_cast<std::size_t>(probe.node_offsets[i + 1] - probe.node_offsets[i]);
}

std::string short_hash(const std::string& hash) { return hash.substr(0, 16); }

// The model's labels when they describe the store's current graph, else nullopt-like empty.
bool current_labels(const store::Store& store, const store::ModelRecord& record,
                    store::ModelLabels* labels, store::ModelInfo* info) {
  if (record.finished_utc.empty()) return false;
  *info = store.model_info(record.id);
  if (info->graph_hash != store.graph().content_hash()) return false;
  *labels = store.read_labels(record.id);
  return labels->subtree_top1.size() == store.graph().size();
}

ModelRow model_row(const store::Store& store, const store::ModelRecord& record,
                   const std::vector<std::int32_t>& columns, const OverviewOptions& options) {
  ModelRow row;
  row.record = record;
  row.progress = store.progress(record.id);
  row.values.assign(columns.size(), kNaN);
  store::ModelLabels labels;
  store::ModelInfo info;
  if (!record.finished_utc.empty()) {
    info = store.model_info(record.id);
    row.dim = info.dim;
    row.mll_version = info.mll_version;
  }
  if (!current_labels(store, record, &labels, &info)) return row;
  row.labeled = true;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    row.values[c] = labels.subtree_top1[static_cast<std::size_t>(columns[c])];
  }
  const auto ranked = ranked_subtrees(store.graph(), store.probe(), labels, options.min_images);
  const auto top = std::min(static_cast<std::size_t>(std::max(1, options.top)), ranked.size());
  row.best.assign(ranked.begin(), ranked.begin() + static_cast<long>(top));
  row.worst.assign(ranked.rbegin(), ranked.rbegin() + static_cast<long>(top));
  return row;
}

std::string subtree_list(const std::vector<SubtreeScore>& list) {
  std::string out;
  for (const auto& s : list) {
    out += (out.empty() ? "" : "<br>") + escape(s.name) + " (" + pct(s.value) + "%)";
  }
  return out.empty() ? "-" : out;
}

std::string progress_bar(std::int64_t done, std::int64_t total) {
  const double f = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0.0;
  return "<span class=\"progress\" title=\"" + pct(f) + "%\"><span style=\"width:" + pct(f) +
         "%\"></span></span> " + std::to_string(done) + "/" + std::to_string(total);
}

std::string provenance_table(const ZooOverview& o) {
  std::ostringstream h;
  h << "<table id=\"provenance\">"
    << "<tr><th>store</th><td>" << escape(o.store_path) << "</td></tr>"
    << "<tr><th>graph</th><td>" << o.graph_nodes << " nodes, hash " << short_hash(o.graph_hash)
    << (o.wordnet_sha256.empty() ? "" : ", WordNet " + short_hash(o.wordnet_sha256))
    << "</td></tr><tr><th>probe set</th><td>" << o.probe_images << " images, up to " << o.per_node
    << " per node, hash " << short_hash(o.probe_hash) << "</td></tr>"
    << "<tr><th>captions</th><td>" << o.captions << "</td></tr>"
    << "<tr><th>schema</th><td>version " << store::kStoreSchemaVersion << "</td></tr>"
    << "<tr><th>labeling</th><td id=\"overall-progress\">"
    << progress_bar(o.images_done, o.images_total) << " probe images over " << o.models.size()
    << " models</td></tr></table>\n";
  return h.str();
}

json subtree_json(const std::vector<SubtreeScore>& list) {
  json out = json::array();
  for (const auto& s : list) {
    json j = {{"node", s.name}, {"subtree_top1", s.value}, {"nodes_below", s.nodes_below}};
    if (!s.confused_with.empty()) j["confused_with"] = s.confused_with;
    out.push_back(j);
  }
  return out;
}

}  // namespace

std::vector<std::int32_t> top_level_subtrees(const graph::Graph& graph,
                                             const probe::ProbeSet& probe, int columns) {
  std::vector<std::int32_t> frontier;
  for (const auto r : graph.roots()) {
    if (has_images(probe, r)) frontier.push_back(r);
  }
  const auto limit = static_cast<std::size_t>(std::max(1, columns));
  while (true) {
    // Expand the largest subtree whose children still fit.
    std::int32_t pick = -1;
    std::size_t pick_size = 0;
    std::vector<std::int32_t> pick_children;
    for (const auto v : frontier) {
      std::vector<std::int32_t> kids;
      for (const auto c : graph.children(static_cast<std::size_t>(v))) {
        if (has_images(probe, c) &&
            std::find(frontier.begin(), frontier.end(), c) == frontier.end() &&
            std::find(kids.begin(), kids.end(), c) == kids.end()) {
          kids.push_back(c);
        }
      }
      if (kids.empty() || frontier.size() - 1 + kids.size() > limit) continue;
      const auto size = graph.descendants(v).size();
      if (pick < 0 || size > pick_size) {
        pick = v;
        pick_size = size;
        pick_children = kids;
      }
    }
    if (pick < 0) break;
    frontier.erase(std::find(frontier.begin(), frontier.end(), pick));
    frontier.insert(frontier.end(), pick_children.begin(), pick_children.end());
  }
  std::sort(frontier.begin(), frontier.end());
  return frontier;
}

std::vector<SubtreeScore> ranked_subtrees(const graph::Graph& graph, const probe::ProbeSet& probe,
                                          const store::ModelLabels& labels, int min_images) {
  MLL_CHECK(labels.subtree_top1.size() == graph.size(), "labels of ", labels.subtree_top1.size(),
            " nodes for a graph of ", graph.size());
  const auto enough = static_cast<std::size_t>(std::max(0, std::min(min_images, probe.per_node)));
  std::vector<SubtreeScore> ranked;
  for (std::size_t v = 0; v < graph.size(); ++v) {
    const auto node = static_cast<std::int32_t>(v);
    if (graph.children(v).empty() || memberships(probe, node) < enough) continue;
    SubtreeScore s;
    s.node = node;
    s.name = graph.node(v).name;
    s.value = labels.subtree_top1[v];
    ranked.push_back(s);
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const SubtreeScore& a, const SubtreeScore& b) { return a.value > b.value; });
  for (auto& s : ranked) s.nodes_below = graph.descendants(s.node).size();
  return ranked;
}

ZooOverview zoo_overview(const store::Store& store, const OverviewOptions& options) {
  ZooOverview o;
  o.store_path = store.path();
  o.graph_nodes = store.graph().size();
  o.graph_hash = store.graph().content_hash();
  o.wordnet_sha256 = store.graph().wordnet_sha256();
  o.probe_images = store.probe().image_count();
  o.probe_hash = store.probe().content_hash();
  o.per_node = store.probe().per_node;
  o.captions = store.captions().size();
  o.columns = top_level_subtrees(store.graph(), store.probe(), options.columns);
  for (const auto v : o.columns) {
    o.column_names.push_back(store.graph().node(static_cast<std::size_t>(v)).name);
    o.column_images.push_back(memberships(store.probe(), v));
  }
  for (const auto& record : store.models()) {
    o.models.push_back(model_row(store, record, o.columns, options));
    o.images_done += o.models.back().progress.images_done;
    o.images_total += o.models.back().progress.images_total;
  }
  return o;
}

std::string zoo_overview_html(const ZooOverview& o) {
  std::ostringstream h;
  h << page_begin("mll zoo overview: " + o.store_path);
  h << "<h1>Zoo overview</h1>\n<p id=\"summary\">" << o.models.size() << " models in "
    << escape(o.store_path) << "; each cell is a model's subtree top-1: the mean node top-1 "
    << "over a top-level subtree of the graph (docs/labeling.md, \"Summary labels\").</p>\n";
  h << "<h2>Store</h2>\n" << provenance_table(o);

  h << "<h2>Model labels over the top-level subtrees</h2>\n";
  Heatmap map;
  map.id = "zoo-heatmap";
  map.cols = o.column_names;
  for (const auto& m : o.models) {
    map.rows.push_back(m.record.id);
    map.values.insert(map.values.end(), m.values.begin(), m.values.end());
  }
  map.row_axis = "model";
  map.col_axis = "top-level subtree";
  map.legend = "subtree top-1";
  map.cell = 26;
  if (map.rows.empty() || map.cols.empty()) {
    h << "<p class=\"note\">No models or no labeled subtrees yet.</p>\n";
  } else {
    h << heatmap_svg(map);
  }
  h << "<p class=\"note\">Grey: not labeled for the current graph yet.</p>\n";

  h << "<h2>Models</h2>\n<table id=\"models\"><tr><th>model</th><th>status</th>"
       "<th>probe images</th><th>captions</th><th>best subtrees</th><th>worst subtrees</th>"
       "<th>provenance</th></tr>\n";
  for (const auto& m : o.models) {
    h << "<tr class=\"model-row\" data-model=\"" << escape(m.record.id) << "\"><td>"
      << escape(m.record.id) << "</td><td>" << store::to_string(m.record.status)
      << (m.record.message.empty()
              ? ""
              : ": <span class=\"warn\">" + escape(m.record.message) + "</span>")
      << "</td><td>" << progress_bar(m.progress.images_done, m.progress.images_total) << "</td><td>"
      << m.progress.text_done << "/" << m.progress.text_total << "</td><td>" << subtree_list(m.best)
      << "</td><td>" << subtree_list(m.worst) << "</td><td>sha256 "
      << escape(m.record.model_sha256.substr(0, 12)) << "<br>registered "
      << escape(m.record.registered_utc);
    if (!m.record.finished_utc.empty()) {
      h << "<br>finished " << escape(m.record.finished_utc) << "<br>d=" << m.dim << ", mll "
        << escape(m.mll_version);
    }
    h << "</td></tr>\n";
  }
  h << "</table>\n" << page_end();
  return h.str();
}

std::string zoo_overview_json(const ZooOverview& o) {
  json doc;
  doc["kind"] = "mll-zoo-overview";
  doc["store"] = o.store_path;
  doc["graph"] = {{"nodes", o.graph_nodes}, {"hash", o.graph_hash}, {"wordnet", o.wordnet_sha256}};
  doc["probe"] = {{"images", o.probe_images}, {"hash", o.probe_hash}, {"per_node", o.per_node}};
  doc["captions"] = o.captions;
  doc["progress"] = {{"images_done", o.images_done}, {"images_total", o.images_total}};
  doc["subtrees"] = o.column_names;
  doc["subtree_images"] = o.column_images;
  json models = json::array();
  for (const auto& m : o.models) {
    json values = json::array();
    for (const auto v : m.values) values.push_back(std::isnan(v) ? json(nullptr) : json(v));
    models.push_back({{"id", m.record.id},
                      {"status", store::to_string(m.record.status)},
                      {"labeled", m.labeled},
                      {"images_done", m.progress.images_done},
                      {"images_total", m.progress.images_total},
                      {"captions_done", m.progress.text_done},
                      {"captions_total", m.progress.text_total},
                      {"subtree_top1", values},
                      {"best", subtree_json(m.best)},
                      {"worst", subtree_json(m.worst)}});
  }
  doc["models"] = models;
  return doc.dump(1) + "\n";
}

ModelCard model_card(const store::Store& store, const std::string& id,
                     const OverviewOptions& options) {
  const auto record = store.find_model(id);
  if (!record) MLL_THROW(UsageError, "no model '", id, "' in ", store.path());
  if (record->finished_utc.empty()) {
    MLL_THROW(UsageError, "model '", id, "' is not labeled yet (status ",
              store::to_string(record->status), ")");
  }
  ModelCard card;
  card.store_path = store.path();
  const auto columns = top_level_subtrees(store.graph(), store.probe(), options.columns);
  for (const auto v : columns) {
    card.column_names.push_back(store.graph().node(static_cast<std::size_t>(v)).name);
  }
  card.row = model_row(store, *record, columns, options);
  card.info = store.model_info(id);
  card.sidecar_json = record->sidecar_json;
  const auto labels = store.read_labels(id);
  if (labels.subtree_top1.size() != store.graph().size()) return card;
  const auto ranked = ranked_subtrees(store.graph(), store.probe(), labels, options.min_images);
  const auto top = std::min(static_cast<std::size_t>(std::max(1, options.top)), ranked.size());
  card.best.assign(ranked.begin(), ranked.begin() + static_cast<long>(top));
  card.worst.assign(ranked.rbegin(), ranked.rbegin() + static_cast<long>(top));
  for (auto& s : card.worst) {
    for (int k = 0; k < 3; ++k) {
      const auto other = labels.node_confusion.at(static_cast<std::size_t>(s.node) * 3 +
                                                  static_cast<std::size_t>(k));
      if (other >= 0) s.confused_with.push_back(store.graph().node(other).name);
    }
  }
  return card;
}

std::string model_card_html(const ModelCard& card) {
  const auto& r = card.row.record;
  std::ostringstream h;
  h << page_begin("mll model card: " + r.id);
  h << "<h1>Model " << escape(r.id) << "</h1>\n<p id=\"summary\">" << store::to_string(r.status)
    << " in " << escape(card.store_path) << "; labeled "
    << progress_bar(card.row.progress.images_done, card.row.progress.images_total)
    << " probe images</p>\n";
  if (!card.row.labeled) {
    h << "<p class=\"warn\">The labels describe an earlier graph of the store: relabel the "
         "model (mll label) for current figures.</p>\n";
  }
  h << "<h2>Label over the top-level subtrees</h2>\n";
  if (!card.column_names.empty()) {
    Heatmap map;
    map.id = "card-heatmap";
    map.rows = {r.id};
    map.cols = card.column_names;
    map.values = card.row.values;
    for (const auto v : map.values) map.cell_text.push_back(std::isnan(v) ? "" : pct(v));
    map.row_axis = "model";
    map.col_axis = "top-level subtree";
    map.legend = "subtree top-1";
    map.cell = 34;
    h << heatmap_svg(map);
  }
  const auto table = [&](const char* id, const char* title, const std::vector<SubtreeScore>& list,
                         bool confusions) {
    h << "<h2>" << title << "</h2>\n<table id=\"" << id << "\"><tr><th>subtree</th>"
      << "<th>subtree top-1 %</th><th>nodes below</th>"
      << (confusions ? "<th>most often predicted instead</th>" : "") << "</tr>\n";
    for (const auto& s : list) {
      h << "<tr><td>" << escape(s.name)
        << "</td><td class=\"num\" style=\"background:" << heat_colour(s.value)
        << ";color:" << text_colour(s.value) << "\">" << pct(s.value) << "</td><td class=\"num\">"
        << s.nodes_below << "</td>";
      if (confusions) {
        std::string names;
        for (const auto& n : s.confused_with) names += (names.empty() ? "" : ", ") + escape(n);
        h << "<td>" << (names.empty() ? "-" : names) << "</td>";
      }
      h << "</tr>\n";
    }
    h << "</table>\n";
  };
  table("best", "Best subtrees", card.best, false);
  table("worst", "Worst subtrees", card.worst, true);

  h << "<h2>Provenance</h2>\n<table id=\"provenance\">";
  const auto row = [&](const char* key, const std::string& value) {
    h << "<tr><th>" << key << "</th><td>" << escape(value) << "</td></tr>";
  };
  row("model sha256", r.model_sha256);
  row("embedding width", std::to_string(card.info.dim));
  row("logit scale", fixed(card.info.logit_scale, 2));
  row("registered", r.registered_utc);
  row("labeling started", card.info.started_utc);
  row("labeling finished", card.info.finished_utc);
  row("mll version", card.info.mll_version);
  row("graph hash", card.info.graph_hash);
  row("probe hash", card.info.probe_hash);
  row("labeling config", card.info.config_json);
  h << "</table>\n<h2>Sidecar</h2>\n<table id=\"sidecar\">";
  const auto sidecar = json::parse(card.sidecar_json, nullptr, /*allow_exceptions=*/false);
  if (sidecar.is_object()) {
    for (const auto& [key, value] : sidecar.items()) {
      row(key.c_str(), value.is_string() ? value.get<std::string>() : value.dump());
    }
  } else {
    row("sidecar", card.sidecar_json);
  }
  h << "</table>\n" << page_end();
  return h.str();
}

}  // namespace mll::report
