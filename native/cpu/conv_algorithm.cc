#include "conv_algorithm.h"

#include <algorithm>
#include <exception>
#include <limits>

#include "../core/binding.h"

namespace ssql {

const char* convAlgorithmName(ConvAlgorithm a) {
  switch (a) {
    case ConvAlgorithm::Plain: return "plain";
    case ConvAlgorithm::Blocked: return "blocked";
    case ConvAlgorithm::Gemm: return "gemm";
    case ConvAlgorithm::Winograd: return "winograd";
  }
  return "?";
}

std::optional<ConvAlgorithm> parseConvAlgorithm(const std::string& name) {
  for (ConvAlgorithm a : {ConvAlgorithm::Plain, ConvAlgorithm::Blocked, ConvAlgorithm::Gemm, ConvAlgorithm::Winograd})
    if (name == convAlgorithmName(a)) return a;
  return std::nullopt;
}

std::optional<ConvAlgorithm> ConvTuner::known(const std::string& key, const std::vector<ConvAlgorithm>& candidates) {
  auto applies = [&](ConvAlgorithm a) { return std::find(candidates.begin(), candidates.end(), a) != candidates.end(); };
  std::lock_guard<std::mutex> lock(mu_);
  if (pinned_ && applies(*pinned_)) return pinned_;
  auto it = chosen_.find(key);
  // A choice set from outside (a checkpoint) that does not apply to this problem is timed again instead.
  if (it != chosen_.end() && applies(it->second)) return it->second;
  return std::nullopt;
}

void ConvTuner::run(const std::string& key, const std::vector<ConvAlgorithm>& candidates,
                    const std::function<void(ConvAlgorithm)>& run) {
  std::optional<ConvAlgorithm> known = this->known(key, candidates);
  if (known) {
    run(*known);
    return;
  }
  // Each candidate runs once to create its primitive (one that cannot run this problem drops out), then kRounds
  // more times, interleaved so that a slow moment of a shared machine does not fall on one candidate; its fastest
  // run counts.
  constexpr int kRounds = 3;
  std::vector<ConvAlgorithm> usable;
  std::exception_ptr firstError;
  for (ConvAlgorithm a : candidates) {
    try {
      run(a);
      usable.push_back(a);
    } catch (...) {
      if (!firstError) firstError = std::current_exception();
    }
  }
  if (usable.empty()) std::rethrow_exception(firstError);
  std::vector<double> fastest(usable.size(), std::numeric_limits<double>::infinity());
  for (int round = 0; round < kRounds; ++round)
    for (size_t i = 0; i < usable.size(); ++i) {
      auto t0 = std::chrono::steady_clock::now();
      run(usable[i]);
      fastest[i] = std::min(fastest[i], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  ConvAlgorithm best = usable[std::min_element(fastest.begin(), fastest.end()) - fastest.begin()];
  {
    std::lock_guard<std::mutex> lock(mu_);
    chosen_[key] = best;
  }
  if (best != usable.back()) run(best);
}

std::unordered_map<std::string, ConvAlgorithm> ConvTuner::choices() {
  std::lock_guard<std::mutex> lock(mu_);
  return chosen_;
}

void ConvTuner::set(const std::string& key, ConvAlgorithm a) {
  std::lock_guard<std::mutex> lock(mu_);
  chosen_[key] = a;
}

void ConvTuner::pin(std::optional<ConvAlgorithm> a) {
  std::lock_guard<std::mutex> lock(mu_);
  pinned_ = a;
}

void ConvTuner::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  chosen_.clear();
}

ConvTuner& convTuner() {
  static ConvTuner t;
  return t;
}

}  // namespace ssql

namespace {

ssql::ConvAlgorithm algorithmArg(const ssql::Args& a, const std::string& name, const std::string& what) {
  auto alg = ssql::parseConvAlgorithm(name);
  if (!alg) throw ssql::RangeError(std::string(a.op) + "(): " + what + " '" + name + "' is not 'blocked', 'plain', 'gemm' or 'winograd'");
  return *alg;
}

}  // namespace

// {problem key: algorithm name} for every convolution problem timed or set so far.
SSQL_OP(convAlgorithms) {
  Napi::Object out = Napi::Object::New(a.env());
  for (const auto& [key, alg] : ssql::convTuner().choices()) out.Set(key, ssql::convAlgorithmName(alg));
  return out;
}

// Adopts choices read back from convAlgorithms(); problems not named keep theirs (or are timed when first met).
SSQL_OP(setConvAlgorithms) {
  Napi::Value v = a.at(0, "choices");
  if (!v.IsObject() || v.IsArray()) throw ssql::TypeError(a.where(0, "choices") + " must be an object of algorithm names");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  std::vector<std::pair<std::string, ssql::ConvAlgorithm>> parsed;
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value name = o.Get(key);
    if (!name.IsString()) throw ssql::TypeError(a.where(0, "choices") + ": '" + key + "' must name an algorithm");
    parsed.emplace_back(key, algorithmArg(a, name.As<Napi::String>().Utf8Value(), "algorithm of '" + key + "'"));
  }
  for (const auto& [key, alg] : parsed) ssql::convTuner().set(key, alg);
  return a.env().Undefined();
}

// pinConvAlgorithm(name | null): every convolution runs `name` where it applies; null times each problem again.
SSQL_OP(pinConvAlgorithm) {
  if (a.count() < 1 || a.info[0].IsNull() || a.info[0].IsUndefined()) {
    ssql::convTuner().pin(std::nullopt);
  } else {
    ssql::convTuner().pin(algorithmArg(a, a.string(0, "name"), "algorithm"));
  }
  ssql::convTuner().clear();
  return a.env().Undefined();
}
