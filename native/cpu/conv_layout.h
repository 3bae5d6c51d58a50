// Which layout a convolution runs in (experimental switch; replaced by a measured rule).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace ssql {

enum class ConvLayout : int { Plain = 0, Blocked = 1 };
enum class ConvPass : int { Forward = 0, BackwardData = 1, BackwardWeights = 2 };

inline ConvLayout chooseConvLayout(ConvPass, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t) {
  const char* e = std::getenv("SSQL_CONV_LAYOUT");
  return e && std::strcmp(e, "plain") == 0 ? ConvLayout::Plain : ConvLayout::Blocked;
}

}  // namespace ssql
