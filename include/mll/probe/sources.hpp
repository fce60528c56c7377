// Where probe images come from (method.md section 1, docs/probe.md): an ImageNet-style tree of
// wnid folders, a manifest of (path, wnid) lines, or webdataset tar shards.
//
// A source only lists files and their sizes; nothing is decoded here. Whether a wnid belongs to
// the graph is decided by the sampler (sampling.hpp), which knows the graph. Nothing here is
// collective.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mll::probe {

// One image file. `path` is relative to ImageSource::root, or absolute (manifest entries only).
struct ImageFile {
  std::string path;
  std::int64_t size = 0;  // bytes, never 0 (empty files are rejected when the source is read)

  friend bool operator==(const ImageFile& a, const ImageFile& b) {
    return a.path == b.path && a.size == b.size;
  }
};

// The images of one wnid, and where they were found (for messages).
struct ImageClass {
  std::vector<ImageFile> files;  // sorted by path, no duplicates
  std::string where;             // the folder, or "manifest:line" of the wnid's first entry
};

struct ImageSource {
  std::string root;         // absolute directory the relative paths hang off ("" = none needed)
  std::string description;  // "image tree DIR" or "manifest FILE"
  std::map<std::string, ImageClass> by_wnid;  // only wnids with at least one image

  // Number of (wnid, file) entries; a file listed under two wnids counts twice.
  std::size_t entry_count() const;
};

// Decodes every image of `source` on `threads` threads (with a progress line when `progress`)
// and returns "path: why" for each one that cannot be decoded, in path order. Does not throw for
// bad images; IoError only when a file cannot be read at all.
std::vector<std::string> find_unreadable_images(const ImageSource& source, int threads,
                                                bool progress);

// `source` without the files at the paths listed in `unreadable` (as find_unreadable_images
// gives them); classes left with no file are dropped. Does not throw.
ImageSource without(const ImageSource& source, const std::vector<std::string>& unreadable);

// True for names ending in .jpg, .jpeg or .png, in any letter case (ImageNet uses .JPEG).
bool is_image_file_name(const std::string& name);

// Scans an ImageNet-style tree: every subfolder of `dir` must be a wnid (n%08d) and holds image
// files directly or in nested folders (any depth). Other files are ignored, as is every entry
// whose name starts with '.' (editor and macOS "._x.jpg" side files). Paths are stored relative
// to `dir`, with '/' separators, sorted byte-wise, so a scan is deterministic.
// Throws DataError when `dir` is not a directory, a subfolder is not a wnid, an image is empty
// (0 bytes), or the tree holds no image at all; IoError when a folder cannot be listed.
ImageSource scan_image_tree(const std::string& dir);

// Reads a manifest: one `path<TAB>wnid` per line; paths absolute or relative to the manifest's
// directory; blank lines and lines starting with '#' ignored; a trailing '\r' tolerated. A file
// may be listed under several wnids (it is then stored once) but not twice under one.
// Throws DataError naming "file:line" for a malformed line, a malformed wnid, a duplicate entry,
// an image that does not exist or is empty; DataError when the manifest is missing or lists no
// image; IoError when it cannot be read.
ImageSource read_manifest(const std::string& path);

// Reads webdataset shards (archive/webdataset.hpp: one .tar, a folder of them, or a brace pattern
// such as `shards/{000000..000009}.tar`). A sample's wnid is its class as its `.cls` member or
// the JSON field `json_field` give it (an index names a line of classnames.txt), or else comes
// from its key: the key's folder (`n01440764/x`) or the key's start (`n01440764_10026`). Paths are
// member references (archive/image_ref.hpp) relative to the shards' folder, so that path order is
// shard order, then archive order. Nothing is decoded.
// Throws DataError naming the shard and the sample for a class that is not a wnid, an index with
// no classnames.txt to name it, a sample with no class at all, and whatever reading the shards
// throws (a corrupt shard, a sample without an image).
ImageSource read_shards(const std::string& spec, const std::string& json_field = "wnid");

}  // namespace mll::probe
