// NCCL process groups for CUDA tensors: the shared collective table of lib/tensor/native/collective.ts (Gloo's on
// the CPU, native/cpu/gloo.cc). The NCCL unique id travels through the rendezvous store (rank 0 sets
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

#include <atomic>
#include <chrono>
#include <cstdio>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../core/binding.h"
#include "../core/collective_args.h"
#include "../core/collective_jobs.h"
#include "../core/store_client.h"
#include "runtime.h"

using namespace ssql;

namespace {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

struct Group;

using Job = collective::Job<Group>;
using Tsfn = Napi::TypedThreadSafeFunction<Group, Job, collective::deliver<Group>>;

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

// A collective queued on the stream: the event behind it and when it was queued.
struct InFlight {
  cudaEvent_t event;
  Clock::time_point queued;
  std::string what;
};

struct Group : std::enable_shared_from_this<Group> {
  int rank = 0;
  int size = 1;
  int device = 0;
  Ms timeout{0};
  cudaStream_t stream = nullptr;

  // Touched only by the group's thread.
  ncclComm_t comm = nullptr;
  std::deque<InFlight> inFlight;
  std::vector<cudaEvent_t> spareEvents;
  int32_t* barrierBuf = nullptr;
  Clock::time_point lastAsyncCheck{};

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Job*> queue;
  bool stopping = false;
  std::string broken;
  // Cleared (under `mutex`) by the environment cleanup hook, before Node tears the TSFN down.
  bool envAlive = true;
  // Set when the process exits: waits give up at once and the communicator is aborted, not finalized.
  std::atomic<bool> exiting{false};
  std::thread worker;

  // Touched only by the JavaScript thread.
  Tsfn tsfn;
  int pendingAsync = 0;
  bool destroyed = false;

  ~Group() {
    if (worker.joinable()) worker.detach();
  }

  void start() {
    worker = std::thread([self = shared_from_this()] { self->loop(); });
  }

  void push(Job* job) {
    std::lock_guard<std::mutex> lock(mutex);
    queue.push_back(job);
    wake.notify_one();
  }

  void stop() {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
    wake.notify_one();
  }

  // Waits for the thread (bounded: its waits end by the timeout), unless called on it.
  void join() {
    if (worker.joinable() && worker.get_id() != std::this_thread::get_id()) worker.join();
  }

  std::string label(const std::string& op) const {
    return op + " (nccl, rank " + std::to_string(rank) + " of " + std::to_string(size) + ")";
  }

  std::string brokenReason() {
    std::lock_guard<std::mutex> lock(mutex);
    return broken;
  }

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
    std::lock_guard<std::mutex> lock(mutex);
    if (envAlive) tsfn.Release();
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

  void finish(Job* job) {
    if (job->blocking) {
      job->done.set_value();  // the waiting JavaScript thread owns and deletes the job
      return;
    }
    std::lock_guard<std::mutex> lock(mutex);
    if (!envAlive || tsfn.BlockingCall(job) != napi_ok) delete job;
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

  // Registered after the TSFN, so it runs before the TSFN's own cleanup (hooks run in reverse order).
  static void onEnvCleanup(void* arg) {
    auto* self = static_cast<std::shared_ptr<Group>*>(arg);
    Group& g = **self;
    {
      std::lock_guard<std::mutex> lock(g.mutex);
      g.envAlive = false;
      g.stopping = true;
      g.exiting = true;
      g.wake.notify_one();
    }
    g.join();
    delete self;
  }
};

const napi_type_tag& groupTag() {
  static const napi_type_tag tag = {0x9e0c1a57d15c0de2ULL, 0x61005a11ed00ca5eULL};
  return tag;
}

std::shared_ptr<Group> group(const Args& a, size_t i) { return parse::groupArg<Group>(a, i, groupTag()); }

using collective::enqueueAsync;

// Waits (on the JavaScript thread) until the group's thread has queued the collective.
void runBlocking(const std::shared_ptr<Group>& g, const std::string& what, std::function<void(Group&)> run) {
  auto job = collective::blockingJob(g, what, std::move(run));
  auto done = job->done.get_future();
  g->push(job.get());
  done.wait();
  if (!job->error.empty()) throw std::runtime_error(job->error);
}

// ---- argument checks (the same rules and messages as the Gloo ops) ----

ncclDataType_t ncclType(DType dt) {
  switch (dt) {
    case DType::F32: return ncclFloat32;
    case DType::U8: return ncclUint8;
    case DType::I32: return ncclInt32;
  }
  return ncclFloat32;
}

ncclRedOp_t reduction(const std::string& op, const std::string& name, DType dt) {
  switch (parse::reduceOp(op, name, dt)) {
    case parse::ReduceOp::Sum: return ncclSum;
    case parse::ReduceOp::Avg: return ncclAvg;
    case parse::ReduceOp::Max: return ncclMax;
    case parse::ReduceOp::Min: return ncclMin;
  }
  throw TypeError(op + "(): unknown reduction");
}

// ---- the collectives, run on the group's thread ----

// Several tensors travel as one message: their calls are grouped, which NCCL fuses into one launch.
void allReduceOn(Group& g, const std::vector<TensorPtr>& xs, ncclRedOp_t op, const std::string& what) {
  auto deadline = Clock::now() + g.timeout;
  ncclComm_t comm = g.liveComm();
  g.settle(ncclGroupStart(), "ncclGroupStart", deadline);
  ncclResult_t r = ncclSuccess;
  for (const auto& x : xs) {
    if (!x->numel()) continue;
    r = ncclAllReduce(x->storage->data, x->storage->data, static_cast<size_t>(x->numel()), ncclType(x->dtype), op, comm,
                      g.stream);
    if (r != ncclSuccess && r != ncclInProgress) break;
  }
  ncclResult_t end = ncclGroupEnd();
  if (r != ncclSuccess && r != ncclInProgress) throw std::runtime_error("ncclAllReduce: " + ncclMessage(r, comm));
  g.settle(end, "ncclAllReduce", deadline);
  g.track(what);
}

void broadcastOn(Group& g, const std::vector<TensorPtr>& xs, int root, const std::string& what) {
  auto deadline = Clock::now() + g.timeout;
  ncclComm_t comm = g.liveComm();
  g.settle(ncclGroupStart(), "ncclGroupStart", deadline);
  ncclResult_t r = ncclSuccess;
  for (const auto& x : xs) {
    if (!x->numel()) continue;
    r = ncclBroadcast(x->storage->data, x->storage->data, static_cast<size_t>(x->numel()), ncclType(x->dtype), root,
                      comm, g.stream);
    if (r != ncclSuccess && r != ncclInProgress) break;
  }
  ncclResult_t end = ncclGroupEnd();
  if (r != ncclSuccess && r != ncclInProgress) throw std::runtime_error("ncclBroadcast: " + ncclMessage(r, comm));
  g.settle(end, "ncclBroadcast", deadline);
  g.track(what);
}

void allGatherOn(Group& g, const TensorPtr& x, const TensorPtr& out, const std::string& what) {
  if (!x->numel()) return;
  auto deadline = Clock::now() + g.timeout;
  ncclComm_t comm = g.liveComm();
  g.settle(ncclAllGather(x->storage->data, out->storage->data, static_cast<size_t>(x->numel()), ncclType(x->dtype),
                         comm, g.stream),
           "ncclAllGather", deadline);
  g.track(what);
}

}  // namespace

// processGroupCreate({rank, size, storeHost, storePort, prefix, timeoutMs, hostname?, iface?}) -> Promise<group>
// hostname/iface are Gloo's; NCCL picks its interfaces itself (NCCL_SOCKET_IFNAME).
SSQL_OP(processGroupCreate) {
  parse::GroupOptions opt = parse::groupOptions(a, false);
  int64_t port = opt.storePort;
  std::string host = opt.storeHost, prefix = opt.prefix;

  auto g = std::make_shared<Group>();
  g->rank = static_cast<int>(opt.rank);
  g->size = static_cast<int>(opt.size);
  g->timeout = Ms(opt.timeoutMs);
  g->stream = cuda::stream();  // selects the device and creates its stream on this thread
  g->device = cuda::currentDevice();
  g->tsfn = Tsfn::New(a.env(), "ssql.nccl", 0, 1, g.get());
  napi_add_env_cleanup_hook(a.env(), &Group::onEnvCleanup, new std::shared_ptr<Group>(g));
  g->start();
  return enqueueAsync(
      a.env(), g, "processGroupCreate",
      [=](Group& grp) {
        // A group that failed to form is of no further use: its thread ends after reporting.
        struct StopOnFailure {
          Group& g;
          bool ok = false;
          ~StopOnFailure() {
            if (!ok) g.stop();
          }
        } guard{grp};
        auto deadline = Clock::now() + grp.timeout;
        ncclUniqueId id;
        {
          StoreClient client(host, static_cast<int>(port), grp.timeout);
          const std::string key = prefix + "/nccl_id";
          if (grp.rank == 0) {
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
        ncclComm_t comm = nullptr;
        ncclResult_t r = ncclCommInitRankConfig(&comm, grp.size, id, grp.rank, &config);
        grp.comm = comm;  // a failure below aborts it
        if (!comm && r != ncclSuccess) throw std::runtime_error("ncclCommInitRank: " + ncclMessage(r, nullptr));
        grp.settle(r, "ncclCommInitRank (forming the group of " + std::to_string(grp.size) + ")", deadline);
        cuda::checkCuda(cudaMalloc(&grp.barrierBuf, sizeof(int32_t)), "cudaMalloc (barrier buffer)");
        guard.ok = true;
      },
      [g](Napi::Env e) { return parse::wrapGroup(e, g, groupTag()); });
}

// Stops the group's thread: collectives not yet queued reject; the communicator is finalized (or aborted when the
// group failed or finalizing outlasts the timeout).
SSQL_OP(processGroupDestroy) {
  auto g = group(a, 0);
  g->destroyed = true;
  g->stop();
  g->join();
  return a.env().Undefined();
}

SSQL_OP(allReduce_) {
  auto g = group(a, 0);
  auto xs = parse::sameDtypeTensors(a, 1, "tensors");
  ncclRedOp_t op = reduction("allReduce_", a.string(2, "op"), xs[0]->dtype);
  runBlocking(g, "allReduce_", [xs, op](Group& grp) { allReduceOn(grp, xs, op, "allReduce_"); });
  return a.env().Undefined();
}

SSQL_OP(allReduceAsync_) {
  auto g = group(a, 0);
  auto xs = parse::sameDtypeTensors(a, 1, "tensors");
  ncclRedOp_t op = reduction("allReduceAsync_", a.string(2, "op"), xs[0]->dtype);
  return enqueueAsync(a.env(), g, "allReduceAsync_", [xs, op](Group& grp) { allReduceOn(grp, xs, op, "allReduceAsync_"); });
}

SSQL_OP(broadcast_) {
  auto g = group(a, 0);
  auto xs = a.tensors(1, "tensors");
  int r = parse::rootArg(a, 2, g->size);
  runBlocking(g, "broadcast_", [xs, r](Group& grp) { broadcastOn(grp, xs, r, "broadcast_"); });
  return a.env().Undefined();
}

SSQL_OP(broadcastAsync_) {
  auto g = group(a, 0);
  auto xs = a.tensors(1, "tensors");
  int r = parse::rootArg(a, 2, g->size);
  return enqueueAsync(a.env(), g, "broadcastAsync_", [xs, r](Group& grp) { broadcastOn(grp, xs, r, "broadcastAsync_"); });
}

SSQL_OP(allGather) {
  auto g = group(a, 0);
  auto x = a.tensor(1, "x");
  auto out = parse::gatherOutput(x, g->size);
  runBlocking(g, "allGather", [x, out](Group& grp) { allGatherOn(grp, x, out, "allGather"); });
  return wrap(a.env(), out);
}

SSQL_OP(allGatherAsync) {
  auto g = group(a, 0);
  auto x = a.tensor(1, "x");
  auto out = parse::gatherOutput(x, g->size);
  return enqueueAsync(
      a.env(), g, "allGatherAsync", [x, out](Group& grp) { allGatherOn(grp, x, out, "allGatherAsync"); },
      [out](Napi::Env e) { return wrap(e, out); });
}

// Resolves once every rank has reached it and the work queued before it on this device has finished.
SSQL_OP(barrier) {
  auto g = group(a, 0);
  return enqueueAsync(a.env(), g, "barrier", [](Group& grp) {
    auto deadline = Clock::now() + grp.timeout;
    grp.settle(ncclAllReduce(grp.barrierBuf, grp.barrierBuf, 1, ncclInt32, ncclSum, grp.liveComm(), grp.stream),
               "ncclAllReduce (barrier)", deadline);
    grp.waitFor(grp.track("barrier"), "barrier", deadline);
  });
}
