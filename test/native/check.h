// CHECK for the host checks of header-only native code (test/helpers/host_check.ts builds and runs them): counts
// checks, and on the first failure prints where and exits non-zero.
#pragma once

#include <cstdio>
#include <cstdlib>

inline int checks = 0;

#define CHECK(cond)                                                 \
  do {                                                              \
    ++checks;                                                       \
    if (!(cond)) {                                                  \
      std::printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                 \
    }                                                               \
  } while (0)
