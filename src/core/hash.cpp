#include "mll/core/hash.hpp"

#include <openssl/evp.h>
#include <xxhash.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "mll/core/error.hpp"

namespace mll {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
  bool finished = false;
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) {
    MLL_THROW(InternalError, "cannot initialise SHA-256 (OpenSSL)");
  }
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

Sha256& Sha256::update(const void* data, std::size_t size) {
  MLL_CHECK(!impl_->finished, "update after hex()");
  if (EVP_DigestUpdate(impl_->ctx, data, size) != 1) {
    MLL_THROW(InternalError, "SHA-256 update failed (OpenSSL)");
  }
  return *this;
}

Sha256& Sha256::update_u64(std::uint64_t value) {
  std::array<unsigned char, 8> bytes{};
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  return update(bytes.data(), bytes.size());
}

Sha256& Sha256::update_field(std::string_view text) {
  update_u64(text.size());
  return update(text);
}

std::string Sha256::hex() {
  MLL_CHECK(!impl_->finished, "hex() called twice");
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(impl_->ctx, digest.data(), &length) != 1) {
    MLL_THROW(InternalError, "SHA-256 final failed (OpenSSL)");
  }
  impl_->finished = true;
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kDigits[digest[i] >> 4]);
    out.push_back(kDigits[digest[i] & 15]);
  }
  return out;
}

std::int64_t sha256_prefix64(const void* data, std::size_t size) {
  const std::string hex = Sha256().update(data, size).hex();
  return static_cast<std::int64_t>(std::stoull(hex.substr(0, 16), nullptr, 16));
}

std::uint64_t checksum64(const void* data, std::size_t size) noexcept {
  return XXH3_64bits(data, size);
}

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) MLL_THROW(IoError, path, ": cannot open for reading: ", std::strerror(errno));
  Sha256 hash;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) MLL_THROW(IoError, path, ": read error");
  return hash.hex();
}

}  // namespace mll
