// Locating the data files that ship with mll (data/ in the source tree, share/mll when
// installed): vocabularies, seed lists, zoo descriptions.
#pragma once

#include <string>

namespace mll {

// The data directory: $MLL_DATA_DIR if set, else the source tree's data/ when it exists (a build
// run in place), else the installed share/mll. Never throws.
std::string data_dir();

// data_dir() joined with `relative`. Throws DataError when the file does not exist, naming it
// and saying how to point mll at its data (MLL_DATA_DIR).
std::string data_file(const std::string& relative);

}  // namespace mll
