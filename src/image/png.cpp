// PNG decoding with libpng, converting each colour type to RGB as Pillow 9.4's
// Image.open(p).convert("RGB") does (docs/preprocessing.md, "Decoding"):
//   gray 1/2/4/8-bit  -> replicated, low depths scaled to 0..255;  palette -> looked up, tRNS
//   ignored; alpha             -> dropped, never composited;                16-bit
//   RGB(A)/gray+alpha -> high byte;  16-bit gray -> clipped to 0..255 (Pillow opens it as 32-bit
//   "I" and clips on convert).
// Gamma, ICC and sBIT chunks are ignored, as Pillow ignores them.
//
// libpng reports errors by longjmp to png_jmpbuf; as in jpeg.cpp only libpng's C frames and
// read_png (which owns nothing with a destructor) lie between, and the throw happens afterwards.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

#include <png.h>

#include "decoders.hpp"
#include "mll/core/error.hpp"

namespace mll::image::detail {
namespace {

struct Source {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t offset;
  bool truncated;
  char message[256];
};

void on_error(png_structp png, png_const_charp text) {
  auto* src = static_cast<Source*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof(src->message), "%s", text);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep dst, png_size_t length) {
  auto* src = static_cast<Source*>(png_get_io_ptr(png));
  if (length > src->size - src->offset) {
    src->truncated = true;
    png_error(png, "data ends prematurely");
  }
  std::memcpy(dst, src->data + src->offset, length);
  src->offset += length;
}

struct Reader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~Reader() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct Output {
  std::vector<std::uint8_t> raw;  // rows as libpng delivers them after the transforms below
  std::vector<png_bytep> rows;
  std::uint32_t width = 0;
  std::uint32_t height = 0;
  int channels = 0;
  int bit_depth = 0;
};

void read_png(Reader& r, Source& src, const std::string& name, Output& out) {
  png_structp png = r.png;
  png_infop info = r.info;
  png_set_read_fn(png, &src, on_read);
  png_read_info(png, info);
  out.width = png_get_image_width(png, info);
  out.height = png_get_image_height(png, info);
  check_dimensions(out.width, out.height, name, "PNG");

  const int color_type = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  // Only palette expansion touches tRNS (it adds an alpha channel, dropped below); gray and RGB
  // images keep their tRNS unapplied, as in Pillow.
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  out.channels = png_get_channels(png, info);
  out.bit_depth = png_get_bit_depth(png, info);
  const std::size_t row_bytes = png_get_rowbytes(png, info);
  out.raw.resize(row_bytes * out.height);
  out.rows.resize(out.height);
  for (std::uint32_t y = 0; y < out.height; ++y) out.rows[y] = out.raw.data() + y * row_bytes;
  png_read_image(png, out.rows.data());
  // No png_read_end: Pillow accepts a file whose IEND (or trailing chunks) is missing.
}

RgbImage to_rgb(const Output& out, const std::string& name) {
  const int width = static_cast<int>(out.width);
  const int height = static_cast<int>(out.height);
  RgbImage image(width, height);
  const int channels = out.channels;
  const bool wide = out.bit_depth == 16;
  if (!(channels >= 1 && channels <= 4) || !(out.bit_depth == 8 || wide)) {
    MLL_THROW(DataError, name, ": unsupported PNG layout (", channels, " channels, ", out.bit_depth,
              " bits)");
  }
  for (int y = 0; y < height; ++y) {
    const std::uint8_t* src = out.rows[y];
    std::uint8_t* dst = image.row(y);
    for (int x = 0; x < width; ++x, dst += 3) {
      if (!wide) {
        const std::uint8_t* p = src + x * channels;
        if (channels <= 2) {
          dst[0] = dst[1] = dst[2] = p[0];
        } else {
          dst[0] = p[0], dst[1] = p[1], dst[2] = p[2];
        }
      } else {
        const std::uint8_t* p = src + x * channels * 2;  // big-endian samples
        if (channels == 1) {
          const unsigned v = (unsigned{p[0]} << 8) | p[1];
          dst[0] = dst[1] = dst[2] = static_cast<std::uint8_t>(std::min(v, 255u));
        } else if (channels == 2) {
          dst[0] = dst[1] = dst[2] = p[0];
        } else {
          dst[0] = p[0], dst[1] = p[2], dst[2] = p[4];
        }
      }
    }
  }
  return image;
}

}  // namespace

Decoded decode_png(const std::uint8_t* data, std::size_t size, const std::string& name) {
  Source src{data, size, 0, false, {}};
  Reader reader;
  reader.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
  if (reader.png != nullptr) reader.info = png_create_info_struct(reader.png);
  if (reader.png == nullptr || reader.info == nullptr) {
    throw std::bad_alloc();
  }
  Output out;
  if (setjmp(png_jmpbuf(reader.png)) == 0) {
    read_png(reader, src, name, out);
  } else {
    if (src.truncated) MLL_THROW(DataError, name, ": truncated PNG (data ends prematurely)");
    MLL_THROW(DataError, name, ": corrupt PNG: ", src.message);
  }
  Decoded decoded;
  decoded.image = to_rgb(out, name);
  decoded.source_width = decoded.image.width();
  decoded.source_height = decoded.image.height();
  return decoded;
}

}  // namespace mll::image::detail
