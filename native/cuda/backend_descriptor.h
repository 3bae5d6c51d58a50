// Owner of one cuDNN backend (graph API) descriptor: destroyed with its owner, so no path leaks one.
#pragma once

#include <cudnn.h>

#include <utility>

namespace ssql {
namespace cuda {

class BackendDescriptor {
 public:
  BackendDescriptor() = default;
  ~BackendDescriptor() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
  }
  BackendDescriptor(BackendDescriptor&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
  BackendDescriptor& operator=(BackendDescriptor&& o) noexcept {
    std::swap(d_, o.d_);
    return *this;
  }
  BackendDescriptor(const BackendDescriptor&) = delete;
  BackendDescriptor& operator=(const BackendDescriptor&) = delete;

  // Creates a descriptor of `type` in place of any held one.
  cudnnStatus_t create(cudnnBackendDescriptorType_t type) {
    BackendDescriptor fresh;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(type, &fresh.d_);
    if (s == CUDNN_STATUS_SUCCESS) std::swap(d_, fresh.d_);
    return s;
  }
  cudnnBackendDescriptor_t get() const { return d_; }
  // For attributes of type CUDNN_TYPE_BACKEND_DESCRIPTOR, which take an array of descriptors.
  const cudnnBackendDescriptor_t* address() const { return &d_; }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

}  // namespace cuda
}  // namespace ssql
