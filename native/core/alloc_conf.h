// SSQL_CUDA_ALLOC_CONF: the caching allocator's options, with the keys and syntax of PyTorch's
// PYTORCH_CUDA_ALLOC_CONF ("max_split_size_mb:128,garbage_collection_threshold:0.8") for the ones this allocator has.
// Plain C++ so that the parsing is tested on the CPU (test/native/block_pool_check.cc).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

namespace ssql {

struct AllocConf {
  // Cached blocks at least this large are never split, and serve only requests of at least this size.
  size_t maxSplitSize = std::numeric_limits<size_t>::max();
  // Fraction of device memory above which cached free segments are given back, oldest first, before a new one
  // is obtained; 0: never (free segments are given back only on out of memory or emptyCache()).
  double gcThreshold = 0.0;
};

inline std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// Throws std::invalid_argument naming the key, the value and what is allowed.
inline AllocConf parseAllocConf(const std::string& text, const char* var = "SSQL_CUDA_ALLOC_CONF") {
  AllocConf conf;
  const std::string allowed = "max_split_size_mb:<MiB above 20>, garbage_collection_threshold:<fraction in (0, 1)>";
  auto fail = [&](const std::string& why) { throw std::invalid_argument(std::string(var) + ": " + why + " (allowed: " + allowed + ")"); };
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    start = end + 1;
    if (trim(item).empty()) continue;
    size_t colon = item.find(':');
    if (colon == std::string::npos) fail("'" + item + "' is not key:value");
    std::string key = trim(item.substr(0, colon)), value = trim(item.substr(colon + 1));
    char* rest = nullptr;
    const double v = std::strtod(value.c_str(), &rest);
    const bool numeric = !value.empty() && rest && *rest == '\0' && v == v;
    if (key == "max_split_size_mb") {
      if (!numeric || v <= 20.0 || v > 1e9) fail("max_split_size_mb '" + value + "' must be a number of MiB above 20");
      conf.maxSplitSize = static_cast<size_t>(v * 1024.0 * 1024.0);
    } else if (key == "garbage_collection_threshold") {
      if (!numeric || v <= 0.0 || v >= 1.0) fail("garbage_collection_threshold '" + value + "' must lie strictly between 0 and 1");
      conf.gcThreshold = v;
    } else {
      fail("unknown key '" + key + "'");
    }
  }
  return conf;
}

}  // namespace ssql
