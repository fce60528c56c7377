// Decoding equals Pillow 9.4's Image.open(p).convert("RGB") on every colour type, and every bad
// file is a DataError naming the file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/image/image.hpp"
#include "reference.hpp"

namespace mll::image {
namespace {

using test::image_data;
using test::image_reference;
using ::testing::HasSubstr;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(ImageDecode, MatchesPillowConvertRgbForEveryInput) {
  const auto& decode = image_reference().at("decode");
  ASSERT_GE(decode.size(), 15u);
  for (const auto& [name, ref] : decode.items()) {
    SCOPED_TRACE(name + " (Pillow mode " + ref.at("mode").get<std::string>() + ")");
    const RgbImage ours = decode_file(image_data(name));
    ASSERT_EQ(ours.width(), ref.at("width").get<int>());
    ASSERT_EQ(ours.height(), ref.at("height").get<int>());
    const std::string expected = ref.at("rgb_sha256");
    if (test::sha256_of(ours) == expected) continue;
    std::string detail = "pixels differ from Pillow's";
    if (ref.contains("decoded_png")) {
      const RgbImage pil = decode_file(image_data(ref.at("decoded_png")));
      const auto d = test::pixel_diff(ours, pil);
      detail += ": max abs diff " + std::to_string(d.max) + ", " + std::to_string(d.differing) +
                " values differ";
    }
    ADD_FAILURE() << detail;
  }
}

TEST(ImageDecode, SixteenBitGrayIsClippedLikePillow) {
  // Pillow opens 16-bit gray as mode "I" and convert("RGB") clips instead of scaling: values
  // above 255 become white. The reference image has values on both sides of 255.
  const RgbImage im = decode_file(image_data("gray16.png"));
  int white = 0;
  int other = 0;
  for (std::size_t i = 0; i < im.size_bytes(); ++i) (im.data()[i] == 255 ? white : other)++;
  EXPECT_GT(white, 0);
  EXPECT_GT(other, 0);
}

TEST(ImageDecode, MemoryEqualsFile) {
  const std::string path = image_data("chelsea.jpg");
  EXPECT_EQ(decode_memory(fs::read_file(path), "chelsea"), decode_file(path));
  const std::string png = image_data("palette_trns.png");
  EXPECT_EQ(decode_memory(fs::read_file(png), "palette"), decode_file(png));
}

TEST(ImageDecode, DetectsFormatByMagicBytes) {
  const std::string jpeg = "\xff\xd8\xff\xe0", png = "\x89PNG\r\n\x1a\n", gif = "GIF89a";
  EXPECT_EQ(detect_format(jpeg.data(), jpeg.size()), ImageFormat::kJpeg);
  EXPECT_EQ(detect_format(png.data(), png.size()), ImageFormat::kPng);
  EXPECT_EQ(detect_format(gif.data(), gif.size()), std::nullopt);
  EXPECT_EQ(detect_format(png.data(), 4), std::nullopt);
  EXPECT_EQ(detect_format(nullptr, 0), std::nullopt);
}

TEST(ImageDecode, FullResolutionByDefaultAndScaledOnlyWhenAsked) {
  const std::string path = image_data("hubble.jpg");  // 701x611
  const Decoded exact = decode_file(path, DecodeOptions{});
  EXPECT_EQ(exact.scale_denom, 1);
  EXPECT_EQ(exact.image.width(), 701);
  DecodeOptions options;
  options.jpeg_min_short_side = 150;  // 611 / 4 = 152 is the smallest that stays >= 150
  const Decoded scaled = decode_file(path, options);
  EXPECT_EQ(scaled.scale_denom, 4);
  EXPECT_EQ(scaled.image.width(), 176);  // ceil(701 / 4)
  EXPECT_EQ(scaled.image.height(), 153);
  EXPECT_EQ(scaled.source_width, 701);
  EXPECT_EQ(scaled.source_height, 611);
  // PNGs are always decoded at full size.
  EXPECT_EQ(decode_file(image_data("rgba.png"), options).scale_denom, 1);
}

TEST(ImageDecode, RgbImageChecksItsSize) {
  EXPECT_THROW(RgbImage(2, 2, std::vector<std::uint8_t>(11)), UsageError);
  EXPECT_THROW(RgbImage(-1, 2), UsageError);
  const RgbImage im(3, 2);
  EXPECT_EQ(im.size_bytes(), 18u);
  EXPECT_EQ(im.stride(), 9u);
  EXPECT_FALSE(im.empty());
  EXPECT_TRUE(RgbImage().empty());
}

// Every bad input: a DataError whose message names the file and says what is wrong.
class ImageDecodeErrors : public ::testing::Test {
 protected:
  void expect_data_error(const std::string& name, const std::string& bytes,
                         const std::string& what) {
    SCOPED_TRACE(name);
    const std::string path = dir_ / name;
    write_bytes(path, bytes);
    try {
      decode_file(path);
      ADD_FAILURE() << "decoded without error";
    } catch (const DataError& e) {
      EXPECT_THAT(e.what(), HasSubstr(path));
      EXPECT_THAT(e.what(), HasSubstr(what));
    }
    // The in-memory path reports the same problem under the given name.
    try {
      decode_memory(bytes, "memory:" + name);
      ADD_FAILURE() << "decoded from memory without error";
    } catch (const DataError& e) {
      EXPECT_THAT(e.what(), HasSubstr("memory:" + name));
      EXPECT_THAT(e.what(), HasSubstr(what));
    }
  }

  static std::string file(const std::string& name) { return fs::read_file(image_data(name)); }

  test::ScratchDir dir_;
};

TEST_F(ImageDecodeErrors, EmptyFile) { expect_data_error("empty.jpg", "", "empty file"); }

TEST_F(ImageDecodeErrors, TextFile) {
  expect_data_error("notes.jpg", "this is a text file, not a photo\n", "not a JPEG, PNG or WebP");
}

TEST_F(ImageDecodeErrors, RandomBytes) {
  std::string bytes(4096, '\0');
  std::uint32_t state = 12345;
  for (char& c : bytes) {
    state = state * 1664525u + 1013904223u;
    c = static_cast<char>(state >> 24);
  }
  bytes[0] = 0x17;  // make sure the noise does not start with a magic number
  expect_data_error("noise.png", bytes, "not a JPEG, PNG or WebP");
}

TEST_F(ImageDecodeErrors, UnsupportedFormatIsNamed) {
  expect_data_error("anim.gif", std::string("GIF89a\x01\x00\x01\x00", 10),
                    "unsupported image format GIF");
}

TEST_F(ImageDecodeErrors, TruncatedJpeg) {
  const std::string jpeg = file("chelsea.jpg");
  expect_data_error("half.jpg", jpeg.substr(0, jpeg.size() / 2), "truncated JPEG");
  // Pillow also refuses a JPEG that lacks only its end-of-image marker.
  expect_data_error("no_eoi.jpg", jpeg.substr(0, jpeg.size() - 2), "truncated JPEG");
  expect_data_error("header_only.jpg", jpeg.substr(0, 300), "JPEG");
}

TEST_F(ImageDecodeErrors, CorruptJpegHeader) {
  std::string bytes = "\xff\xd8\xff";
  bytes += std::string(200, '\x42');
  expect_data_error("garbage.jpg", bytes, "corrupt JPEG");
}

TEST_F(ImageDecodeErrors, TruncatedPng) {
  const std::string png = file("gray.png");
  expect_data_error("half.png", png.substr(0, png.size() / 2), "truncated PNG");
  expect_data_error("signature_only.png", png.substr(0, 8), "PNG");
}

TEST_F(ImageDecodeErrors, CorruptPngChecksum) {
  std::string png = file("gray.png");
  png[16] = static_cast<char>(png[16] ^ 0x01);  // inside IHDR: its CRC no longer matches
  expect_data_error("crc.png", png, "corrupt PNG");
}

TEST_F(ImageDecodeErrors, DecompressionBombIsRefused) {
  // A valid 50000 x 50000 header: refused before any pixel memory is allocated.
  std::string png = file("gray.png");
  const unsigned char size[8] = {0, 0, 0xc3, 0x50, 0, 0, 0xc3, 0x50};
  png.replace(16, 8, reinterpret_cast<const char*>(size), 8);
  // Fix the IHDR CRC so that only the size is objectionable.
  std::uint32_t crc = 0xffffffffu;
  for (std::size_t i = 12; i < 29; ++i) {
    crc ^= static_cast<unsigned char>(png[i]);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  crc ^= 0xffffffffu;
  for (int k = 0; k < 4; ++k) png[29 + k] = static_cast<char>(crc >> (24 - 8 * k));
  expect_data_error("bomb.png", png, "exceeds the limit");
}

// WebP (webdataset shards carry it) equals Pillow's convert("RGB"): lossy, lossless, and lossy
// with alpha (dropped, not composited), files written by the system's Pillow at test time.
TEST(ImageDecode, WebpMatchesPillowConvertRgb) {
  const std::string python = "/usr/bin/python3";
  if (std::system((python + " -c 'from PIL import features; "
                            "assert features.check(\"webp\")' 2>/dev/null")
                      .c_str()) != 0) {
    GTEST_SKIP() << "python3-pil with WebP support is not installed";
  }
  test::ScratchDir dir;
  std::ofstream(dir / "make.py") << R"(import sys
from PIL import Image
d, src = sys.argv[1], sys.argv[2]
im = Image.open(src).convert("RGB").crop((0, 0, 301, 203))
im.save(d + "/lossy.webp", quality=80)
im.save(d + "/lossless.webp", lossless=True)
rgba = im.convert("RGBA")
rgba.putalpha(Image.linear_gradient("L").resize(im.size))
rgba.save(d + "/alpha.webp", quality=70)
for name in ["lossy", "lossless", "alpha"]:
    with Image.open(d + "/" + name + ".webp") as w:
        open(d + "/" + name + ".rgb", "wb").write(w.convert("RGB").tobytes())
)";
  ASSERT_EQ(std::system((python + " " + (dir / "make.py") + " " + dir.path() + " " +
                         image_data("chelsea.jpg"))
                            .c_str()),
            0);
  for (const std::string name : {"lossy", "lossless", "alpha"}) {
    const RgbImage ours = decode_file(dir / (name + ".webp"));
    EXPECT_EQ(ours.width(), 301) << name;
    EXPECT_EQ(ours.height(), 203) << name;
    const std::string pil = fs::read_file(dir / (name + ".rgb"));
    ASSERT_EQ(pil.size(), ours.size_bytes()) << name;
    EXPECT_EQ(std::memcmp(pil.data(), ours.data(), pil.size()), 0) << name;
  }
  const std::string webp = fs::read_file(dir / "lossy.webp");
  EXPECT_EQ(detect_format(webp.data(), webp.size()), ImageFormat::kWebp);
  try {
    decode_memory(webp.substr(0, webp.size() / 2), "half.webp");
    ADD_FAILURE() << "a truncated WebP decoded";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("half.webp: WebP"));
  }
}

TEST(ImageDecode, MissingFileIsADataErrorNamingIt) {
  const std::string path = "/nonexistent/dir/photo.jpg";
  try {
    decode_file(path);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
  }
}

}  // namespace
}  // namespace mll::image
