// JPEG decoding with libjpeg-turbo, configured as Pillow 9.4 configures it (islow DCT, fancy
// upsampling, colour conversion by libjpeg except for CMYK) so that the pixels are identical.
//
// libjpeg reports fatal errors through error_exit, which must not return; it longjmps back to
// decode_jpeg. Only libjpeg's C frames and read_jpeg (which owns nothing with a destructor) lie
// between, so no C++ object is skipped, and the DataError is thrown after the jump, outside any
// C frame.
#include <algorithm>
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <vector>

#include <jerror.h>
#include <jpeglib.h>

#include "decoders.hpp"
#include "mll/core/error.hpp"

namespace mll::image::detail {
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 32];
};

void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  char text[JMSG_LENGTH_MAX];
  cinfo->err->format_message(cinfo, text);
  std::snprintf(err->message, sizeof(err->message), "corrupt JPEG: %s", text);
  std::longjmp(err->jump, 1);
}

// Pillow decodes through libjpeg's recoverable warnings (corrupt entropy data, extraneous bytes)
// but refuses a stream that ends early ("image file is truncated"); libjpeg signals that case as
// the JWRN_JPEG_EOF warning, after which it would pad the image with grey.
void on_emit_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "truncated JPEG (data ends prematurely)");
    std::longjmp(err->jump, 1);
  }
}

void on_output_message(j_common_ptr) {}

struct Reader {
  jpeg_decompress_struct cinfo{};  // zeroed: jpeg_destroy is a no-op until create succeeds
  ErrorManager err{};
  Reader() {
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error_exit;
    err.pub.emit_message = on_emit_message;
    err.pub.output_message = on_output_message;
  }
  ~Reader() { jpeg_destroy_decompress(&cinfo); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
};

struct Output {
  std::vector<std::uint8_t> pixels;
  std::vector<std::uint8_t> scratch;
  std::vector<JSAMPROW> rows;
  int width = 0;
  int height = 0;
  int source_width = 0;
  int source_height = 0;
  int scale_denom = 1;
};

// Pillow reads a 4-component JPEG as "CMYK;I" (inverted, Adobe's convention, assumed for every
// CMYK/YCCK file) and converts with r = (255 - k) - (c * (255 - k)) / 255 in its rounded integer
// form; with the inversion folded in this is k - muldiv255(255 - c, k) on the raw samples.
inline std::uint8_t cmyk_channel(unsigned raw_c, unsigned raw_k) {
  const unsigned t = (255 - raw_c) * raw_k + 128;
  return static_cast<std::uint8_t>(raw_k - (((t >> 8) + t) >> 8));
}

// Everything that may longjmp. Locals here are trivially destructible; buffers live in `out`.
void read_jpeg(Reader& r, const std::uint8_t* data, std::size_t size, const std::string& name,
               const DecodeOptions& options, Output& out) {
  jpeg_decompress_struct& cinfo = r.cinfo;
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
    MLL_THROW(DataError, name, ": JPEG stream holds no image (tables only)");
  }
  check_dimensions(cinfo.image_width, cinfo.image_height, name, "JPEG");
  out.source_width = static_cast<int>(cinfo.image_width);
  out.source_height = static_cast<int>(cinfo.image_height);

  // Pillow picks its mode from the component count alone.
  switch (cinfo.num_components) {
    case 1:
      cinfo.out_color_space = JCS_GRAYSCALE;
      break;
    case 3:
      cinfo.out_color_space = JCS_RGB;
      break;
    case 4:
      cinfo.out_color_space = JCS_CMYK;  // libjpeg turns YCCK into CMYK
      break;
    default:
      MLL_THROW(DataError, name, ": unsupported JPEG with ", cinfo.num_components, " components");
  }
  cinfo.dct_method = JDCT_ISLOW;
  cinfo.do_fancy_upsampling = TRUE;
  if (options.jpeg_min_short_side > 0) {
    const unsigned short_side = std::min(cinfo.image_width, cinfo.image_height);
    for (unsigned denom : {8u, 4u, 2u}) {
      if (short_side / denom >= static_cast<unsigned>(options.jpeg_min_short_side)) {
        cinfo.scale_num = 1;
        cinfo.scale_denom = denom;
        break;
      }
    }
  }

  out.scale_denom = static_cast<int>(cinfo.scale_denom);
  jpeg_start_decompress(&cinfo);
  const int width = static_cast<int>(cinfo.output_width);
  const int height = static_cast<int>(cinfo.output_height);
  const int components = cinfo.output_components;
  out.width = width;
  out.height = height;
  const std::size_t stride = static_cast<std::size_t>(width) * 3;
  out.pixels.resize(stride * static_cast<std::size_t>(height));

  if (components == 3) {
    // Straight into the image, several rows per call as libjpeg prefers.
    out.rows.resize(static_cast<std::size_t>(height));
    for (int y = 0; y < height; ++y) out.rows[y] = out.pixels.data() + y * stride;
    while (cinfo.output_scanline < cinfo.output_height) {
      jpeg_read_scanlines(&cinfo, out.rows.data() + cinfo.output_scanline,
                          cinfo.output_height - cinfo.output_scanline);
    }
  } else {
    out.scratch.resize(static_cast<std::size_t>(width) * components);
    JSAMPROW row = out.scratch.data();
    while (cinfo.output_scanline < cinfo.output_height) {
      std::uint8_t* dst = out.pixels.data() + cinfo.output_scanline * stride;
      jpeg_read_scanlines(&cinfo, &row, 1);
      const std::uint8_t* src = out.scratch.data();
      if (components == 1) {
        for (int x = 0; x < width; ++x, dst += 3) dst[0] = dst[1] = dst[2] = src[x];
      } else {
        for (int x = 0; x < width; ++x, dst += 3, src += 4) {
          dst[0] = cmyk_channel(src[0], src[3]);
          dst[1] = cmyk_channel(src[1], src[3]);
          dst[2] = cmyk_channel(src[2], src[3]);
        }
      }
    }
  }
  jpeg_finish_decompress(&cinfo);
}

}  // namespace

Decoded decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name,
                    const DecodeOptions& options) {
  Reader reader;
  Output out;
  if (setjmp(reader.err.jump) == 0) {
    read_jpeg(reader, data, size, name, options, out);
  } else {
    MLL_THROW(DataError, name, ": ", reader.err.message);
  }
  Decoded decoded;
  decoded.image = RgbImage(out.width, out.height, std::move(out.pixels));
  decoded.source_width = out.source_width;
  decoded.source_height = out.source_height;
  decoded.scale_denom = out.scale_denom;
  return decoded;
}

}  // namespace mll::image::detail
