// Which algorithm each convolution runs, chosen per problem by timing the candidates once on its first call (as
// cudnn.benchmark does, which the original sets): oneDNN's direct kernels on its preferred blocked layouts with
// reorders from and to NCHW, oneDNN on plain NCHW (its own im2col + GEMM, no reorders), conv_gemm.h's GEMM over
// a chunk of images, or conv_winograd.h (3x3, stride 1). No one rule wins everywhere: the winner changes with the ISA, the layer and the pass.
// The choices can be read and set from JavaScript, so a resumed run computes with the algorithms its first part
// used, bit for bit.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace ssql {

enum class ConvAlgorithm : int { Plain = 0, Blocked = 1, Gemm = 2, Winograd = 3 };

const char* convAlgorithmName(ConvAlgorithm a);
std::optional<ConvAlgorithm> parseConvAlgorithm(const std::string& name);

class ConvTuner {
 public:
  // Runs `run` with the problem's algorithm, timing `candidates` first when the problem is new.
  void run(const std::string& key, const std::vector<ConvAlgorithm>& candidates,
           const std::function<void(ConvAlgorithm)>& run);
  // The algorithm run() would run without timing (pinned, or chosen before, and applicable), if any.
  std::optional<ConvAlgorithm> known(const std::string& key, const std::vector<ConvAlgorithm>& candidates);
  std::unordered_map<std::string, ConvAlgorithm> choices();
  void set(const std::string& key, ConvAlgorithm a);
  // Every problem runs `a` where it is a candidate (tests and benchmarks of one algorithm); nullopt: tuned again.
  void pin(std::optional<ConvAlgorithm> a);
  void clear();

 private:
  std::mutex mu_;
  std::unordered_map<std::string, ConvAlgorithm> chosen_;
  std::optional<ConvAlgorithm> pinned_;
};

ConvTuner& convTuner();

}  // namespace ssql
