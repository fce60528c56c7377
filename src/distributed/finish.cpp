#include "finish.hpp"

#include <algorithm>

#include "mll/core/log.hpp"
#include "mll/distributed/collective.hpp"
#include "mll/label/labels.hpp"
#include "protocol.hpp"
#include "reduce.hpp"

namespace mll::distributed {
namespace {

// A block of image embeddings as sent to a rank: its width, then its values (empty after a
// failed read, so that the receiver still gets its message).
std::vector<char> encode_block(const Matrix& rows) {
  wire::Writer w;
  w.put<std::int64_t>(rows.cols);
  w.put(rows.values);
  return std::move(w.buffer());
}

Matrix decode_block(const std::vector<char>& bytes) {
  wire::Reader r(bytes);
  Matrix m;
  m.cols = r.get<std::int64_t>();
  m.values = r.get_floats();
  m.rows = m.cols > 0 ? static_cast<std::int64_t>(m.values.size()) / m.cols : 0;
  MLL_CHECK(m.rows * m.cols == static_cast<std::int64_t>(m.values.size()), "a ragged block");
  return m;
}

// What to finish: the models rank 0 finds complete, and the number of probe images.
struct FinishList {
  std::int64_t images = 0;
  std::vector<std::string> models;
};

FinishList list_complete_models(Comm& comm, Coordinator* coordinator) {
  FinishList list;
  Outcome outcome;
  if (coordinator) {
    outcome.run([&] {
      list.models = coordinator->committer().complete_models();
      list.images = static_cast<std::int64_t>(coordinator->store().probe().image_count());
    });
  }
  agree(comm, outcome, "listing the models to finish");
  wire::Writer w;
  w.put<std::int64_t>(list.images);
  w.put(list.models);
  comm.broadcast(w.buffer(), 0, "sharing the models to finish");
  wire::Reader r(w.buffer());
  list.images = r.get<std::int64_t>();
  list.models = r.get_strings();
  return list;
}

// Rank 0's node text embeddings of `model` on every rank.
Matrix share_node_text(Comm& comm, Coordinator* coordinator, const std::string& model) {
  Matrix text;
  Outcome outcome;
  if (coordinator) {
    outcome.run([&] { text = label::node_text_embeddings(coordinator->store(), model); });
  }
  agree(comm, outcome, "reading the node caption embeddings of " + model);
  wire::Writer w;
  w.put<std::int64_t>(text.cols);
  w.put(text.values);
  comm.broadcast(w.buffer(), 0, "sharing the node caption embeddings of " + model);
  wire::Reader r(w.buffer());
  text.cols = r.get<std::int64_t>();
  text.values = r.get_floats();
  text.rows = text.cols > 0 ? static_cast<std::int64_t>(text.values.size()) / text.cols : 0;
  return text;
}

// One round of the prediction: block first + r to rank r. Rank 0 reads the blocks and sends
// them (empty after a failed read, so that every receiver still gets its message), every rank
// predicts its own block into `predicted`.
void predict_round(Comm& comm, Coordinator* coordinator, const std::string& model,
                   const Matrix& text, std::int64_t first, std::int64_t blocks, std::int64_t block,
                   std::int64_t images, std::vector<std::int32_t>& predicted) {
  const int rank = comm.rank(), size = comm.size();
  const auto begin_of = [&](std::int64_t b) { return b * block; };
  const auto end_of = [&](std::int64_t b) { return std::min(images, (b + 1) * block); };
  Outcome outcome;
  Matrix rows;
  if (rank == 0) {
    for (int r = 0; r < size && first + r < blocks; ++r) {
      Matrix read;
      outcome.run([&] {
        read = coordinator->store().read_image_embeddings(model, begin_of(first + r),
                                                          end_of(first + r));
      });
      if (r == 0) {
        rows = std::move(read);
      } else {
        comm.send(encode_block(read), r, kBlock, "sending a block to rank " + std::to_string(r));
      }
    }
  } else if (first + rank < blocks) {
    outcome.run(
        [&] { rows = decode_block(comm.receive(0, kBlock, "receiving a block from rank 0")); });
  }
  if (first + rank < blocks && rows.rows > 0) {
    outcome.run(
        [&] { label::predict_rows(rows, text, model, predicted.data() + begin_of(first + rank)); });
  }
  agree(comm, outcome, "predicting the probe images' nodes for " + model);
}

void finish_model(Comm& comm, Coordinator* coordinator, Reducer& reducer, const std::string& model,
                  std::int64_t images, std::int64_t block) {
  const Matrix text = share_node_text(comm, coordinator, model);
  std::vector<std::int32_t> predicted(static_cast<std::size_t>(images), -1);
  const std::int64_t blocks = (images + block - 1) / block;
  for (std::int64_t first = 0; first < blocks; first += comm.size()) {
    predict_round(comm, coordinator, model, text, first, blocks, block, images, predicted);
  }
  // Collective by itself (every rank throws alike), so not inside an Outcome.
  reducer.max_to_root(predicted);
  Outcome outcome;
  if (coordinator) {
    outcome.run([&] {
      coordinator->committer().finish(
          model, label::labels_from_predictions(coordinator->store(), predicted));
    });
  }
  agree(comm, outcome, "finishing " + model);
}

}  // namespace

void finish_together(Comm& comm, Coordinator* coordinator, const zoo::Device& device,
                     std::int64_t block) {
  const FinishList list = list_complete_models(comm, coordinator);
  if (list.models.empty()) return;
  const std::unique_ptr<Reducer> reducer = make_reducer(comm, device);
  if (comm.rank() == 0) {
    log::info("summary labels of ", list.models.size(), " model(s) on ", comm.size(), " ranks (",
              reducer->name(), " reduction)");
  }
  for (const auto& model : list.models) {
    finish_model(comm, coordinator, *reducer, model, list.images, block);
  }
}

}  // namespace mll::distributed
