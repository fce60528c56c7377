// Private to the zoo module: the geometry of the authored ViT-B/32-shaped model, shared by the
// cost model (authored.cpp) and the engine that builds it (torch_authored.cpp).
#pragma once

namespace mll::zoo::detail {

// ViT-B/32 geometry (open_clip's ViT-B-32 config).
inline constexpr int kVitImage = 224;
inline constexpr int kVitPatch = 32;
inline constexpr int kVitGrid = kVitImage / kVitPatch;      // 7
inline constexpr int kVitTokens = kVitGrid * kVitGrid + 1;  // 49 patches + class token
inline constexpr int kVitWidth = 768;
inline constexpr int kVitLayers = 12;
inline constexpr int kVitHeads = 12;
inline constexpr int kTextWidth = 512;
inline constexpr int kTextLayers = 12;
inline constexpr int kTextHeads = 8;
inline constexpr int kTextMaxContext = 77;

}  // namespace mll::zoo::detail
