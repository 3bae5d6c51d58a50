// Gloo process groups for CPU tensors (lib/tensor/native/collective.ts). Each group owns one thread that runs its
// collectives in the order JavaScript issued them, which is what keeps the ranks' calls matched; JavaScript gets a
// Promise (or, for the blocking variants, waits). Every failure, a peer that died included, surfaces as a thrown
// JavaScript error after at most the group's timeout, and the group refuses further work after a failure.
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "../core/binding.h"
#include "../core/collective_args.h"
#include "../core/collective_jobs.h"
#include "../core/store_client.h"

using namespace ssql;

namespace {

using Ms = std::chrono::milliseconds;

// gloo::rendezvous::Store over the TCP store that rank 0 serves (lib/dist/store.ts).
class TcpStore : public gloo::rendezvous::Store {
 public:
  TcpStore(StoreClient& client, Ms timeout) : client_(client), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override { client_.set(key, data); }
  std::vector<char> get(const std::string& key) override { return client_.get(key, timeout_); }
  void wait(const std::vector<std::string>& keys) override { client_.wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const Ms& timeout) override { client_.wait(keys, timeout); }

 private:
  StoreClient& client_;
  Ms timeout_;
};

struct Group;

using Job = collective::Job<Group>;
using Tsfn = Napi::TypedThreadSafeFunction<Group, Job, collective::deliver<Group>>;

struct Group : std::enable_shared_from_this<Group> {
  int rank = 0;
  int size = 1;
  Ms timeout{0};

  // Touched only by the thread holding the `running` turn.
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::Context> context;
  uint32_t tag = 0;
  std::vector<char> scratch;

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Job*> queue;
  bool stopping = false;
  bool running = false;  // a collective is executing (on the group's thread or inline): one at a time
  std::string broken;
  // Cleared (under `mutex`) by an environment cleanup hook that runs before Node tears the TSFN down, so the
  // group's thread never touches a finalized TSFN when the process exits with the thread still busy.
  bool envAlive = true;

  // Touched only by the JavaScript thread.
  Tsfn tsfn;
  int pendingAsync = 0;
  bool destroyed = false;

  void start() {
    std::thread([self = shared_from_this()] { self->loop(); }).detach();
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

  std::string label(const std::string& op) const {
    return op + " (gloo, rank " + std::to_string(rank) + " of " + std::to_string(size) + ")";
  }

  void loop() {
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return !running && (stopping || !queue.empty()); });
        if (queue.empty()) break;
        job = queue.front();
        queue.pop_front();
        if (stopping) job->error = label(job->what) + ": the process group was destroyed before the collective ran";
        else if (!broken.empty()) job->error = label(job->what) + ": the process group failed earlier: " + broken;
        else running = true;
      }
      if (job->error.empty()) execute(*job);
      if (job->blocking) job->done.set_value();  // the waiting JavaScript thread deletes the job
      else callJavaScript(job);
    }
    context.reset();
    device.reset();
    std::lock_guard<std::mutex> lock(mutex);
    if (envAlive) tsfn.Release();
  }

  // Runs a job that holds the `running` turn, on whichever thread took it; gives the turn back.
  void execute(Job& job) {
    std::string failure;
    try {
      job.run(*this);
    } catch (const std::exception& e) {
      failure = e.what();
      job.error = label(job.what) + ": " + failure;
    }
    std::lock_guard<std::mutex> lock(mutex);
    if (!failure.empty() && broken.empty()) broken = failure;
    running = false;
    wake.notify_one();
  }

  // A blocking collective with nothing queued or running runs on the calling (JavaScript) thread: two thread
  // hand-offs fewer, which is most of a small collective's latency on a busy machine. Returns false when the
  // job must wait its turn on the group's thread instead.
  bool tryRunInline(Job& job) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (running || !queue.empty() || stopping || !broken.empty()) return false;
      running = true;
    }
    execute(job);
    return true;
  }

  void callJavaScript(Job* job) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!envAlive || tsfn.BlockingCall(job) != napi_ok) delete job;
  }

  // Registered after the TSFN, so it runs before the TSFN's own cleanup (hooks run in reverse order).
  static void onEnvCleanup(void* arg) {
    auto* self = static_cast<std::shared_ptr<Group>*>(arg);
    {
      std::lock_guard<std::mutex> lock((*self)->mutex);
      (*self)->envAlive = false;
      (*self)->stopping = true;
      (*self)->wake.notify_one();
    }
    delete self;
  }
};

const napi_type_tag& groupTag() {
  static const napi_type_tag tag = {0x9e0c1a57d15c0de1ULL, 0x61005a11ed00cafeULL};
  return tag;
}

std::shared_ptr<Group> group(const Args& a, size_t i) { return parse::groupArg<Group>(a, i, groupTag()); }

using collective::enqueueAsync;

void runBlocking(const std::shared_ptr<Group>& g, const std::string& what, std::function<void(Group&)> run) {
  auto job = collective::blockingJob(g, what, std::move(run));
  if (!g->tryRunInline(*job)) {
    auto done = job->done.get_future();
    g->push(job.get());
    done.wait();
  }
  if (!job->error.empty()) throw std::runtime_error(job->error);
}

// ---- the collectives, run on the group's thread ----

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

struct Reduction {
  ReduceFn fn;
  DType dtype;
  bool average;
};

Reduction reduction(const std::string& op, const std::string& name, DType dt) {
  parse::ReduceOp r = parse::reduceOp(op, name, dt);
  bool f = dt == DType::F32;
  switch (r) {
    case parse::ReduceOp::Sum:
    case parse::ReduceOp::Avg:
      return {f ? static_cast<ReduceFn>(&gloo::sum<float>) : static_cast<ReduceFn>(&gloo::sum<int32_t>), dt,
              r == parse::ReduceOp::Avg};
    case parse::ReduceOp::Max:
      return {f ? static_cast<ReduceFn>(&gloo::max<float>) : static_cast<ReduceFn>(&gloo::max<int32_t>), dt, false};
    case parse::ReduceOp::Min:
      return {f ? static_cast<ReduceFn>(&gloo::min<float>) : static_cast<ReduceFn>(&gloo::min<int32_t>), dt, false};
  }
  throw TypeError(op + "(): unknown reduction");
}

// Several tensors travel as one message (a gradient bucket): packed into the group's scratch buffer and back.
char* packed(Group& g, const std::vector<TensorPtr>& xs, size_t total, bool copyIn) {
  if (xs.size() == 1) return static_cast<char*>(xs[0]->storage->data);
  if (g.scratch.size() < total) g.scratch.resize(total);
  if (copyIn) {
    size_t off = 0;
    for (const auto& x : xs) {
      if (x->bytes()) std::memcpy(g.scratch.data() + off, x->storage->data, x->bytes());
      off += x->bytes();
    }
  }
  return g.scratch.data();
}

void unpack(Group& g, const std::vector<TensorPtr>& xs) {
  if (xs.size() == 1) return;
  size_t off = 0;
  for (const auto& x : xs) {
    if (x->bytes()) std::memcpy(x->storage->data, g.scratch.data() + off, x->bytes());
    off += x->bytes();
  }
}

size_t totalBytes(const std::vector<TensorPtr>& xs) {
  size_t n = 0;
  for (const auto& x : xs) n += x->bytes();
  return n;
}

void allReduceOn(Group& g, const std::vector<TensorPtr>& xs, Reduction r) {
  size_t bytes = totalBytes(xs);
  if (g.size == 1 || bytes == 0) return;
  char* buf = packed(g, xs, bytes, true);
  gloo::AllreduceOptions o(g.context);
  if (r.dtype == DType::F32) o.setOutput(reinterpret_cast<float*>(buf), bytes / 4);
  else o.setOutput(reinterpret_cast<int32_t*>(buf), bytes / 4);
  o.setReduceFunction(r.fn);
  o.setTag(g.tag++);
  o.setTimeout(g.timeout);
  gloo::allreduce(o);
  if (r.average) {
    float* p = reinterpret_cast<float*>(buf);
    float s = 1.0f / static_cast<float>(g.size);
    for (size_t i = 0, n = bytes / 4; i < n; ++i) p[i] *= s;
  }
  unpack(g, xs);
}

void broadcastOn(Group& g, const std::vector<TensorPtr>& xs, int root) {
  size_t bytes = totalBytes(xs);
  if (g.size == 1 || bytes == 0) return;
  char* buf = packed(g, xs, bytes, g.rank == root);
  gloo::BroadcastOptions o(g.context);
  o.setOutput(buf, bytes);
  o.setRoot(root);
  o.setTag(g.tag++);
  o.setTimeout(g.timeout);
  gloo::broadcast(o);
  if (g.rank != root) unpack(g, xs);
}

void allGatherOn(Group& g, const TensorPtr& x, const TensorPtr& out) {
  size_t bytes = x->bytes();
  if (bytes == 0) return;
  if (g.size == 1) {
    std::memcpy(out->storage->data, x->storage->data, bytes);
    return;
  }
  gloo::AllgatherOptions o(g.context);
  o.setInput(static_cast<char*>(x->storage->data), bytes);
  o.setOutput(static_cast<char*>(out->storage->data), bytes * g.size);
  o.setTag(g.tag++);
  o.setTimeout(g.timeout);
  gloo::allgather(o);
}

}  // namespace

// processGroupCreate({rank, size, storeHost, storePort, prefix, timeoutMs, hostname?, iface?}) -> Promise<group>
SSQL_OP(processGroupCreate) {
  parse::GroupOptions opt = parse::groupOptions(a, true);
  int64_t port = opt.storePort;
  std::string host = opt.storeHost, prefix = opt.prefix, hostname = opt.hostname, iface = opt.iface;

  auto g = std::make_shared<Group>();
  g->rank = static_cast<int>(opt.rank);
  g->size = static_cast<int>(opt.size);
  g->timeout = Ms(opt.timeoutMs);
  g->tsfn = Tsfn::New(a.env(), "ssql.gloo", 0, 1, g.get());
  napi_add_env_cleanup_hook(a.env(), &Group::onEnvCleanup, new std::shared_ptr<Group>(g));
  g->start();
  Napi::Env env = a.env();
  return enqueueAsync(
      env, g, "processGroupCreate",
      [=](Group& grp) {
        // A group that failed to form is of no further use: its thread ends after reporting.
        struct StopOnFailure {
          Group& g;
          bool ok = false;
          ~StopOnFailure() {
            if (ok) return;
            std::lock_guard<std::mutex> lock(g.mutex);
            g.stopping = true;
          }
        } guard{grp};
        StoreClient client(host, static_cast<int>(port), grp.timeout);
        TcpStore store(client, grp.timeout);
        gloo::rendezvous::PrefixStore prefixed(prefix, store);
        gloo::transport::tcp::attr attr;
        if (!iface.empty()) attr.iface = iface;
        else if (!hostname.empty()) attr.hostname = hostname;
        grp.device = gloo::transport::tcp::CreateDevice(attr);
        auto ctx = std::make_shared<gloo::rendezvous::Context>(grp.rank, grp.size);
        ctx->setTimeout(grp.timeout);
        if (grp.size > 1) ctx->connectFullMesh(prefixed, grp.device);
        grp.context = ctx;
        guard.ok = true;
      },
      [g](Napi::Env e) { return parse::wrapGroup(e, g, groupTag()); });
}

SSQL_OP(processGroupDestroy) {
  auto g = group(a, 0);
  g->destroyed = true;
  g->stop();
  return a.env().Undefined();
}

SSQL_OP(allReduce_) {
  auto g = group(a, 0);
  auto xs = parse::sameDtypeTensors(a, 1, "tensors");
  Reduction r = reduction("allReduce_", a.string(2, "op"), xs[0]->dtype);
  runBlocking(g, "allReduce_", [xs, r](Group& grp) { allReduceOn(grp, xs, r); });
  return a.env().Undefined();
}

SSQL_OP(allReduceAsync_) {
  auto g = group(a, 0);
  auto xs = parse::sameDtypeTensors(a, 1, "tensors");
  Reduction r = reduction("allReduceAsync_", a.string(2, "op"), xs[0]->dtype);
  return enqueueAsync(a.env(), g, "allReduceAsync_", [xs, r](Group& grp) { allReduceOn(grp, xs, r); });
}

SSQL_OP(broadcast_) {
  auto g = group(a, 0);
  auto xs = a.tensors(1, "tensors");
  int r = parse::rootArg(a, 2, g->size);
  runBlocking(g, "broadcast_", [xs, r](Group& grp) { broadcastOn(grp, xs, r); });
  return a.env().Undefined();
}

SSQL_OP(broadcastAsync_) {
  auto g = group(a, 0);
  auto xs = a.tensors(1, "tensors");
  int r = parse::rootArg(a, 2, g->size);
  return enqueueAsync(a.env(), g, "broadcastAsync_", [xs, r](Group& grp) { broadcastOn(grp, xs, r); });
}

SSQL_OP(allGather) {
  auto g = group(a, 0);
  auto x = a.tensor(1, "x");
  auto out = parse::gatherOutput(x, g->size);
  runBlocking(g, "allGather", [x, out](Group& grp) { allGatherOn(grp, x, out); });
  return wrap(a.env(), out);
}

SSQL_OP(allGatherAsync) {
  auto g = group(a, 0);
  auto x = a.tensor(1, "x");
  auto out = parse::gatherOutput(x, g->size);
  return enqueueAsync(
      a.env(), g, "allGatherAsync", [x, out](Group& grp) { allGatherOn(grp, x, out); },
      [out](Napi::Env e) { return wrap(e, out); });
}

SSQL_OP(barrier) {
  auto g = group(a, 0);
  return enqueueAsync(a.env(), g, "barrier", [](Group& grp) {
    if (grp.size == 1) return;
    gloo::BarrierOptions o(grp.context);
    o.setTag(grp.tag++);
    o.setTimeout(grp.timeout);
    gloo::barrier(o);
  });
}
