// Hot loops are compiled three times (AVX-512, AVX2, baseline x86-64) and the loader picks the best the CPU runs,
// since the addon itself is built for baseline x86-64 so that one build runs everywhere.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SSQL_VECTORIZED __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SSQL_VECTORIZED
#endif
