// Model ids: the one rule every module applies (zoo manifests, sidecars, the label store, command
// lines) and the file name an id gets on disk.
//
// An id is what users already call their models, e.g. `ViT-B-32:laion2b_s34b_b79k` (open_clip's
// MODEL:PRETRAINED): 1..200 bytes of printable ASCII (0x21..0x7e) without '/', '\' or ',', not
// starting with '.'. Ids are HDF5 group names as they are (only '/' and a lone '.' are special
// there) and list items on command lines (`--models a,b`); on disk they become safe file stems.
// Not collective; nothing here throws except check_model_id.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mll {

inline constexpr std::size_t kMaxModelIdBytes = 200;

// What is wrong with `id` ("" when it is valid), e.g. "contains ',' (ids are comma-separated on
// command lines)". Callers throw their own error type: a sidecar's bad id is a DataError, a
// command line's a UsageError.
std::string model_id_problem(std::string_view id);

// Throws UsageError "invalid model id '<id>': <problem> (docs/models.md, "Model ids")".
void check_model_id(std::string_view id);

// The file stem of a valid id: bytes outside [A-Za-z0-9._-] become '%' and two upper-case hex
// digits (`ViT-B-32:laion2b` -> `ViT-B-32%3Alaion2b`). Injective, so two ids never share a file,
// and the identity on ids made of those characters, so store files of such ids keep their names.
std::string model_file_stem(std::string_view id);

// The id whose file stem is `stem`, or nullopt when `stem` is not exactly the stem of a valid id
// (another spelling of the same escape, a lower-case hex digit, an invalid id): directory
// listings map back to ids only through the canonical spelling.
std::optional<std::string> model_id_from_file_stem(std::string_view stem);

}  // namespace mll
