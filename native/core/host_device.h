// SSQL_HD marks the inline math shared by the CPU ops and the CUDA kernels (callable on both sides under nvcc).
#pragma once

#ifdef __CUDACC__
#define SSQL_HD __host__ __device__ __forceinline__
#else
#define SSQL_HD inline
#endif
