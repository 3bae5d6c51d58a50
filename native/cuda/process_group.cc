// NCCL process groups for CUDA tensors: the transport under the collective ops of core/collective_ops.h (Gloo's on
// the CPU, native/cpu/gloo.cc), and the addon's only NCCL path. The NCCL unique id travels through the rendezvous store (rank 0 sets
// `<prefix>/nccl_id`), and the communicator is non-blocking, so that nothing NCCL does can block past the group's
// timeout: every call that answers ncclInProgress is polled with a deadline, and on expiry the communicator is
// aborted.
//
// Each group owns one thread. It issues the group's NCCL calls, in the order JavaScript made them (which keeps the
// ranks' calls matched), onto the device's stream, so collectives are stream-ordered with every other op. Between
// jobs it is the watchdog: each collective leaves an event behind it, and one that has not finished on the device
// within the timeout, or an asynchronous NCCL error (a peer died), aborts the communicator, which also frees the
// stream from kernels waiting on a dead peer. The group then refuses further work with the reason.
//
// Plain forms return once the collective is queued (later ops on the stream see the result); Async forms resolve
// then; barrier() resolves once its all-reduce has finished on the device.
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../core/binding.h"
#include "../core/collective_ops.h"
#include "../core/store_client.h"
#include "runtime.h"

using namespace ssql;

namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

std::string ncclMessage(ncclResult_t r, ncclComm_t comm) {
  std::string msg = ncclGetErrorString(r);
  const char* detail = ncclGetLastError(comm);
  if (detail && *detail) msg += " (" + std::string(detail) + ")";
  return msg;
}

std::string seconds(Ms t) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", static_cast<double>(t.count()) / 1000.0);
  return buf;
}

ncclDataType_t ncclType(DType dt) {
  switch (dt) {
    case DType::F32: return ncclFloat32;
    case DType::U8: return ncclUint8;
    case DType::I32: return ncclInt32;
  }
  return ncclFloat32;
}

// A collective queued on the stream: the event behind it and when it was queued.
struct InFlight {
  cudaEvent_t event;
  Clock::time_point queued;
  std::string what;
};

struct Group : collective::GroupBase<Group> {
  using Job = collective::Job<Group>;
  using Reduction = ncclRedOp_t;
  static constexpr const char* kBackend = "nccl";
  static constexpr bool kInterfaces = false;  // NCCL picks its interfaces itself (NCCL_SOCKET_IFNAME)

  static const napi_type_tag& tag() {
    static const napi_type_tag t = {0x9e0c1a57d15c0de2ULL, 0x61005a11ed00ca5eULL};
    return t;
  }

  int device = 0;
  cudaStream_t stream = nullptr;

  // Touched only by the group's thread.
  ncclComm_t comm = nullptr;
  std::deque<InFlight> inFlight;
  std::vector<cudaEvent_t> spareEvents;
  int32_t* barrierBuf = nullptr;
  Clock::time_point lastAsyncCheck{};

  // The group's thread. When the process exits (`exiting`), its waits give up at once and the communicator is
  // aborted, not finalized.
  std::thread worker;

  ~Group() {
    if (worker.joinable()) worker.detach();
  }

  // Selects the device and creates its stream on the JavaScript thread.
  void prepare(const parse::GroupOptions&) {
    stream = cuda::stream();
    device = cuda::currentDevice();
  }

  void start() {
    worker = std::thread([self = shared_from_this()] { self->loop(); });
  }

  // Waits for the thread (bounded: its waits end by the timeout), unless called on it.
  void join() {
    if (worker.joinable() && worker.get_id() != std::this_thread::get_id()) worker.join();
  }

  // Collectives not yet queued reject; the communicator is finalized (or aborted when the group failed or
  // finalizing outlasts the timeout).
  void destroy() {
    stop();
    join();
  }

  // NCCL calls are issued by the group's thread only.
  bool tryRunInline(Job&) { return false; }

  void loop() {
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) fail(std::string("cudaSetDevice: ") + cudaGetErrorString(e));
    for (;;) {
      Job* job = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex);
        auto ready = [&] { return stopping || !queue.empty(); };
        // With collectives in flight, wake up often enough to watch them.
        if (inFlight.empty()) wake.wait(lock, ready);
        else wake.wait_for(lock, Ms(2), ready);
        if (stopping) break;
        if (!queue.empty()) {
          job = queue.front();
          queue.pop_front();
        }
      }
      if (job) execute(job);
      watch();
    }
    std::deque<Job*> left;
    {
      std::lock_guard<std::mutex> lock(mutex);
      left.swap(queue);
    }
    for (Job* job : left) {
      job->error = label(job->what) + ": the process group was destroyed before the collective ran";
      finish(job);
    }
    shutdown();
    releaseJavaScript();
  }

  void execute(Job* job) {
    std::string earlier = brokenReason();
    if (!earlier.empty()) {
      job->error = label(job->what) + ": the process group failed earlier: " + earlier;
    } else {
      try {
        job->run(*this);
      } catch (const std::exception& e) {
        job->error = label(job->what) + ": " + e.what();
        fail(e.what());
      }
    }
    finish(job);
  }

  // The group is unusable from now on; aborting the communicator also ends its kernels still on the stream.
  void fail(const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (broken.empty()) broken = why;
    }
    if (comm) {
      ncclCommAbort(comm);
      comm = nullptr;
    }
    for (auto& f : inFlight) cudaEventDestroy(f.event);  // released once the (aborted) work completes
    inFlight.clear();
    cudaGetLastError();
  }

  // Turns ncclInProgress into a wait on the communicator's state, bounded by `deadline`; throws on an error.
  void settle(ncclResult_t r, const std::string& what, Clock::time_point deadline) {
    if (r == ncclSuccess) return;
    if (r != ncclInProgress) throw std::runtime_error(what + ": " + ncclMessage(r, comm));
    for (;;) {
      ncclResult_t state = ncclSuccess;
      ncclResult_t q = ncclCommGetAsyncError(comm, &state);
      if (q != ncclSuccess) throw std::runtime_error("ncclCommGetAsyncError: " + ncclMessage(q, comm));
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) throw std::runtime_error(what + ": " + ncclMessage(state, comm));
      if (exiting) throw std::runtime_error(what + ": the process is exiting");
      if (Clock::now() >= deadline)
        throw std::runtime_error(what + " did not complete within " + seconds(timeout) +
                                 " s (a rank is missing, died or hangs)");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  ncclComm_t liveComm() {
    if (!comm) throw std::runtime_error("the communicator is gone");
    return comm;
  }

  // Records an event behind the collective just queued, for the watchdog.
  cudaEvent_t track(const std::string& what) {
    cudaEvent_t ev = nullptr;
    if (!spareEvents.empty()) {
      ev = spareEvents.back();
      spareEvents.pop_back();
    } else {
      cuda::checkCuda(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    }
    cudaError_t e = cudaEventRecord(ev, stream);
    if (e != cudaSuccess) {
      cudaEventDestroy(ev);
      cuda::checkCuda(e, "cudaEventRecord");
    }
    inFlight.push_back({ev, Clock::now(), what});
    return ev;
  }

  // The watchdog: retires finished collectives; fails the group on a device-side timeout or an NCCL async error.
  void watch() {
    if (!comm) return;
    while (!inFlight.empty()) {
      cudaError_t q = cudaEventQuery(inFlight.front().event);
      if (q == cudaErrorNotReady) break;
      if (q != cudaSuccess) {
        fail("CUDA error while " + inFlight.front().what + " ran: " + cudaGetErrorName(q) + " (" + cudaGetErrorString(q) + ")");
        return;
      }
      spareEvents.push_back(inFlight.front().event);
      inFlight.pop_front();
    }
    if (inFlight.empty()) return;
    auto now = Clock::now();
    if (now - inFlight.front().queued > timeout) {
      fail(inFlight.front().what + " did not finish on the device within " + seconds(timeout) +
           " s (a peer died or hangs); the communicator was aborted");
      return;
    }
    if (now - lastAsyncCheck >= Ms(50)) {
      lastAsyncCheck = now;
      ncclResult_t state = ncclSuccess;
      ncclResult_t q = ncclCommGetAsyncError(comm, &state);
      if (q != ncclSuccess) state = q;
      if (state != ncclSuccess && state != ncclInProgress)
        fail("NCCL reported an error while " + inFlight.front().what + " ran: " + ncclMessage(state, comm));
    }
  }

  // Blocks (on this thread) until the event has fired, watching for NCCL errors; throws on timeout.
  void waitFor(cudaEvent_t ev, const std::string& what, Clock::time_point deadline) {
    for (;;) {
      cudaError_t q = cudaEventQuery(ev);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) {
        cudaGetLastError();
        throw std::runtime_error(std::string("CUDA error while waiting for ") + what + ": " + cudaGetErrorName(q));
      }
      ncclResult_t state = ncclSuccess;
      ncclResult_t r = ncclCommGetAsyncError(liveComm(), &state);
      if (r != ncclSuccess) state = r;
      if (state != ncclSuccess && state != ncclInProgress) throw std::runtime_error(what + ": " + ncclMessage(state, comm));
      if (exiting) throw std::runtime_error(what + ": the process is exiting");
      if (Clock::now() >= deadline)
        throw std::runtime_error(what + " did not finish within " + seconds(timeout) + " s (a rank is missing, died or hangs)");
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  void shutdown() {
    if (comm) {
      bool orderly = !exiting && brokenReason().empty();
      bool done = false;
      if (orderly) {
        try {
          settle(ncclCommFinalize(comm), "ncclCommFinalize", Clock::now() + timeout);
          ncclCommDestroy(comm);
          done = true;
        } catch (const std::exception&) {
        }
      }
      if (!done) ncclCommAbort(comm);
      comm = nullptr;
    }
    for (auto& f : inFlight) cudaEventDestroy(f.event);
    inFlight.clear();
    for (cudaEvent_t ev : spareEvents) cudaEventDestroy(ev);
    spareEvents.clear();
    if (barrierBuf) cudaFree(barrierBuf);
    barrierBuf = nullptr;
    cudaGetLastError();
  }

  // ---- the transport, run on the group's thread ----
  void connect(const parse::GroupOptions& opt);
  static ncclRedOp_t reduction(const std::string& op, const std::string& name, DType dt);
  // Several tensors travel as one message: their calls are grouped, which NCCL fuses into one launch.
  template <typename Call>
  void grouped(const std::vector<TensorPtr>& xs, const char* name, const std::string& what, Call call);
  void allReduce(const std::vector<TensorPtr>& xs, ncclRedOp_t op, const std::string& what);
  void broadcast(const std::vector<TensorPtr>& xs, int root, const std::string& what);
  void allGather(const TensorPtr& x, const TensorPtr& out, const std::string& what);
  void barrier();
};

// Rank 0 puts a fresh NCCL id in the store; every rank joins the non-blocking communicator with it.
void Group::connect(const parse::GroupOptions& opt) {
  auto deadline = Clock::now() + timeout;
  ncclUniqueId id;
  {
    StoreClient client(opt.storeHost, static_cast<int>(opt.storePort), timeout);
    const std::string key = opt.prefix + "/nccl_id";
    if (rank == 0) {
      ncclResult_t r = ncclGetUniqueId(&id);
      if (r != ncclSuccess) throw std::runtime_error("ncclGetUniqueId: " + ncclMessage(r, nullptr));
      client.set(key, std::vector<char>(id.internal, id.internal + sizeof(id.internal)));
    } else {
      auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
      auto bytes = client.get(key, left > Ms(1) ? left : Ms(1));
      if (bytes.size() != sizeof(id.internal))
        throw std::runtime_error("the rendezvous store holds a malformed NCCL id under '" + key + "'");
      std::memcpy(id.internal, bytes.data(), sizeof(id.internal));
    }
  }
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t c = nullptr;
  ncclResult_t r = ncclCommInitRankConfig(&c, size, id, rank, &config);
  comm = c;  // a failure below aborts it
  if (!c && r != ncclSuccess) throw std::runtime_error("ncclCommInitRank: " + ncclMessage(r, nullptr));
  settle(r, "ncclCommInitRank (forming the group of " + std::to_string(size) + ")", deadline);
  cuda::checkCuda(cudaMalloc(&barrierBuf, sizeof(int32_t)), "cudaMalloc (barrier buffer)");
}

ncclRedOp_t Group::reduction(const std::string& op, const std::string& name, DType dt) {
  switch (parse::reduceOp(op, name, dt)) {
    case parse::ReduceOp::Sum: return ncclSum;
    case parse::ReduceOp::Avg: return ncclAvg;
    case parse::ReduceOp::Max: return ncclMax;
    case parse::ReduceOp::Min: return ncclMin;
  }
  throw TypeError(op + "(): unknown reduction");
}

template <typename Call>
void Group::grouped(const std::vector<TensorPtr>& xs, const char* name, const std::string& what, Call call) {
  auto deadline = Clock::now() + timeout;
  ncclComm_t c = liveComm();
  settle(ncclGroupStart(), "ncclGroupStart", deadline);
  ncclResult_t r = ncclSuccess;
  for (const auto& x : xs) {
    if (!x->numel()) continue;
    r = call(x, c);
    if (r != ncclSuccess && r != ncclInProgress) break;
  }
  ncclResult_t end = ncclGroupEnd();
  if (r != ncclSuccess && r != ncclInProgress) throw std::runtime_error(std::string(name) + ": " + ncclMessage(r, c));
  settle(end, name, deadline);
  track(what);
}

void Group::allReduce(const std::vector<TensorPtr>& xs, ncclRedOp_t op, const std::string& what) {
  grouped(xs, "ncclAllReduce", what, [&](const TensorPtr& x, ncclComm_t c) {
    return ncclAllReduce(x->storage->data, x->storage->data, static_cast<size_t>(x->numel()), ncclType(x->dtype), op, c,
                         stream);
  });
}

void Group::broadcast(const std::vector<TensorPtr>& xs, int root, const std::string& what) {
  grouped(xs, "ncclBroadcast", what, [&](const TensorPtr& x, ncclComm_t c) {
    return ncclBroadcast(x->storage->data, x->storage->data, static_cast<size_t>(x->numel()), ncclType(x->dtype), root,
                         c, stream);
  });
}

void Group::allGather(const TensorPtr& x, const TensorPtr& out, const std::string& what) {
  if (!x->numel()) return;
  auto deadline = Clock::now() + timeout;
  settle(ncclAllGather(x->storage->data, out->storage->data, static_cast<size_t>(x->numel()), ncclType(x->dtype),
                       liveComm(), stream),
         "ncclAllGather", deadline);
  track(what);
}

// Resolves once every rank has reached it and the work queued before it on this device has finished.
void Group::barrier() {
  auto deadline = Clock::now() + timeout;
  settle(ncclAllReduce(barrierBuf, barrierBuf, 1, ncclInt32, ncclSum, liveComm(), stream), "ncclAllReduce (barrier)",
         deadline);
  waitFor(track("barrier"), "barrier", deadline);
}

}  // namespace

SSQL_COLLECTIVE_OPS(Group)
