// Gloo process groups for CPU tensors: the transport under the collective ops of core/collective_ops.h. Each group
// owns one thread that runs its collectives in the order JavaScript issued them, which is what keeps the ranks'
// calls matched; JavaScript gets a Promise (or, for the blocking variants, waits). Every failure, a peer that died
// included, surfaces as a thrown JavaScript error after at most the group's timeout, and the group refuses further
// work after a failure.
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include <cstring>
#include <mutex>
#include <thread>

#include "../core/binding.h"
#include "../core/collective_ops.h"
#include "../core/store_client.h"

using namespace ssql;

namespace {

using Ms = std::chrono::milliseconds;

// gloo::rendezvous::Store over the TCP store that rank 0 serves (lib/distributed/store.ts).
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

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

struct GlooReduction {
  ReduceFn fn;
  DType dtype;
  bool average;
};

size_t totalBytes(const std::vector<TensorPtr>& xs) {
  size_t n = 0;
  for (const auto& x : xs) n += x->bytes();
  return n;
}

struct Group : collective::GroupBase<Group> {
  using Job = collective::Job<Group>;
  using Reduction = GlooReduction;
  static constexpr const char* kBackend = "gloo";
  static constexpr bool kInterfaces = true;

  static const napi_type_tag& tag() {
    static const napi_type_tag t = {0x9e0c1a57d15c0de1ULL, 0x61005a11ed00cafeULL};
    return t;
  }

  // Touched only by the thread holding the `running` turn.
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::Context> context;
  uint32_t nextTag = 0;
  std::vector<char> scratch;

  bool running = false;  // a collective is executing (on the group's thread or inline): one at a time; under `mutex`

  void prepare(const parse::GroupOptions&) {}

  void start() {
    std::thread([self = shared_from_this()] { self->loop(); }).detach();
  }

  // The thread is detached: a collective in flight ends by its own timeout.
  void join() {}

  void destroy() { stop(); }

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
      finish(job);
    }
    context.reset();
    device.reset();
    releaseJavaScript();
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

  // ---- the transport, run on the group's thread ----

  void connect(const parse::GroupOptions& opt) {
    StoreClient client(opt.storeHost, static_cast<int>(opt.storePort), timeout);
    TcpStore store(client, timeout);
    gloo::rendezvous::PrefixStore prefixed(opt.prefix, store);
    gloo::transport::tcp::attr attr;
    if (!opt.iface.empty()) attr.iface = opt.iface;
    else if (!opt.hostname.empty()) attr.hostname = opt.hostname;
    device = gloo::transport::tcp::CreateDevice(attr);
    auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
    ctx->setTimeout(timeout);
    if (size > 1) ctx->connectFullMesh(prefixed, device);
    context = ctx;
  }

  static Reduction reduction(const std::string& op, const std::string& name, DType dt) {
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

  // Several tensors travel as one message (a gradient bucket): packed into the scratch buffer and back.
  char* packed(const std::vector<TensorPtr>& xs, size_t total, bool copyIn) {
    if (xs.size() == 1) return static_cast<char*>(xs[0]->storage->data);
    if (scratch.size() < total) scratch.resize(total);
    if (copyIn) {
      size_t off = 0;
      for (const auto& x : xs) {
        if (x->bytes()) std::memcpy(scratch.data() + off, x->storage->data, x->bytes());
        off += x->bytes();
      }
    }
    return scratch.data();
  }

  void unpack(const std::vector<TensorPtr>& xs) {
    if (xs.size() == 1) return;
    size_t off = 0;
    for (const auto& x : xs) {
      if (x->bytes()) std::memcpy(x->storage->data, scratch.data() + off, x->bytes());
      off += x->bytes();
    }
  }

  void allReduce(const std::vector<TensorPtr>& xs, Reduction r, const std::string&) {
    size_t bytes = totalBytes(xs);
    if (size == 1 || bytes == 0) return;
    char* buf = packed(xs, bytes, true);
    gloo::AllreduceOptions o(context);
    if (r.dtype == DType::F32) o.setOutput(reinterpret_cast<float*>(buf), bytes / 4);
    else o.setOutput(reinterpret_cast<int32_t*>(buf), bytes / 4);
    o.setReduceFunction(r.fn);
    o.setTag(nextTag++);
    o.setTimeout(timeout);
    gloo::allreduce(o);
    if (r.average) {
      float* p = reinterpret_cast<float*>(buf);
      float s = 1.0f / static_cast<float>(size);
      for (size_t i = 0, n = bytes / 4; i < n; ++i) p[i] *= s;
    }
    unpack(xs);
  }

  void broadcast(const std::vector<TensorPtr>& xs, int root, const std::string&) {
    size_t bytes = totalBytes(xs);
    if (size == 1 || bytes == 0) return;
    char* buf = packed(xs, bytes, rank == root);
    gloo::BroadcastOptions o(context);
    o.setOutput(buf, bytes);
    o.setRoot(root);
    o.setTag(nextTag++);
    o.setTimeout(timeout);
    gloo::broadcast(o);
    if (rank != root) unpack(xs);
  }

  void allGather(const TensorPtr& x, const TensorPtr& out, const std::string&) {
    size_t bytes = x->bytes();
    if (bytes == 0) return;
    if (size == 1) {
      std::memcpy(out->storage->data, x->storage->data, bytes);
      return;
    }
    gloo::AllgatherOptions o(context);
    o.setInput(static_cast<char*>(x->storage->data), bytes);
    o.setOutput(static_cast<char*>(out->storage->data), bytes * size);
    o.setTag(nextTag++);
    o.setTimeout(timeout);
    gloo::allgather(o);
  }

  void barrier() {
    if (size == 1) return;
    gloo::BarrierOptions o(context);
    o.setTag(nextTag++);
    o.setTimeout(timeout);
    gloo::barrier(o);
  }
};

}  // namespace

SSQL_COLLECTIVE_OPS(Group)
