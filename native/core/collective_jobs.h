// The job queue plumbing both process-group backends share (native/cpu/gloo.cc, native/cuda/process_group.cc):
// a collective becomes a Job that the group's own thread runs in call order; an Async job's promise settles on the
// JavaScript thread through the group's thread-safe function, a blocking one is waited for by its caller.
// GroupBase holds the state every group has (queue, failure, thread-safe function); the backend derives from it.
#pragma once

#include <napi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace ssql {
namespace collective {

// Keeps a parameter out of template argument deduction, so that a lambda converts to the std::function.
template <typename T>
struct NonDeduced {
  using type = T;
};

template <typename Group>
struct Job {
  std::shared_ptr<Group> group;
  std::string what;                              // the op's name, for error messages
  std::function<void(Group&)> run;               // on the group's thread; throws on failure
  std::function<Napi::Value(Napi::Env)> result;  // on the JavaScript thread, after run succeeded
  std::unique_ptr<Napi::Promise::Deferred> deferred;
  bool blocking = false;
  std::promise<void> done;
  std::string error;
};

// The thread-safe function's callback: settles an Async job's promise on the JavaScript thread and frees the job.
template <typename Group>
void deliver(Napi::Env env, Napi::Function, Group*, Job<Group>* job) {
  std::unique_ptr<Job<Group>> owned(job);
  if (!env) return;  // the environment is shutting down
  Napi::HandleScope scope(env);
  Group& g = *job->group;
  if (--g.pendingAsync == 0) g.tsfn.Unref(env);
  if (!job->error.empty()) {
    job->deferred->Reject(Napi::Error::New(env, job->error).Value());
    return;
  }
  try {
    job->deferred->Resolve(job->result ? job->result(env) : env.Undefined());
  } catch (const Napi::Error& e) {
    job->deferred->Reject(e.Value());
  } catch (const std::exception& e) {
    job->deferred->Reject(Napi::Error::New(env, e.what()).Value());
  }
}

// What every process group holds, whatever its transport. Group derives from GroupBase<Group> and provides
// `static constexpr const char* kBackend` ("gloo", "nccl": in error messages and the thread-safe function's name),
// `start()` (its thread, whose loop pops `queue`), `join()` (waits for that thread, or returns at once) and
// `tryRunInline(Job&)` (runs a blocking job on the calling thread when it may, else returns false).
template <typename Group>
struct GroupBase : std::enable_shared_from_this<Group> {
  using Tsfn = Napi::TypedThreadSafeFunction<Group, Job<Group>, deliver<Group>>;

  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{0};

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Job<Group>*> queue;
  bool stopping = false;
  std::string broken;  // why the group failed; it refuses work from then on
  // Cleared (under `mutex`) by the environment cleanup hook, which runs before Node tears the TSFN down, so the
  // group's thread never touches a finalized TSFN when the process exits with the thread still busy.
  bool envAlive = true;
  // Set when the process exits: waits give up at once.
  std::atomic<bool> exiting{false};

  // Touched only by the JavaScript thread.
  Tsfn tsfn;
  int pendingAsync = 0;
  bool destroyed = false;

  void push(Job<Group>* job) {
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
    return op + " (" + Group::kBackend + ", rank " + std::to_string(rank) + " of " + std::to_string(size) + ")";
  }

  std::string brokenReason() {
    std::lock_guard<std::mutex> lock(mutex);
    return broken;
  }

  // Hands a job that has run (or failed) back: a blocking job to its waiting caller, which owns and deletes it; an
  // Async one to the JavaScript thread.
  void finish(Job<Group>* job) {
    if (job->blocking) {
      job->done.set_value();
      return;
    }
    std::lock_guard<std::mutex> lock(mutex);
    if (!envAlive || tsfn.BlockingCall(job) != napi_ok) delete job;
  }

  // The last thing the group's thread does.
  void releaseJavaScript() {
    std::lock_guard<std::mutex> lock(mutex);
    if (envAlive) tsfn.Release();
  }

  // Registered after the TSFN, so it runs before the TSFN's own cleanup (hooks run in reverse order).
  static void onEnvCleanup(void* arg) {
    auto* self = static_cast<std::shared_ptr<Group>*>(arg);
    Group& g = **self;
    g.exiting = true;
    {
      std::lock_guard<std::mutex> lock(g.mutex);
      g.envAlive = false;
      g.stopping = true;
      g.wake.notify_one();
    }
    g.join();
    delete self;
  }
};

template <typename Group>
Napi::Value enqueueAsync(Napi::Env env, const std::shared_ptr<Group>& g, const std::string& what,
                         std::function<void(typename NonDeduced<Group>::type&)> run,
                         std::function<Napi::Value(Napi::Env)> result = nullptr) {
  auto job = new Job<Group>;
  job->group = g;
  job->what = what;
  job->run = std::move(run);
  job->result = std::move(result);
  job->deferred = std::make_unique<Napi::Promise::Deferred>(env);
  Napi::Promise promise = job->deferred->Promise();
  // While collectives are in flight the group keeps the event loop alive; an idle group does not.
  if (g->pendingAsync++ == 0) g->tsfn.Ref(env);
  g->push(job);
  return promise;
}

// A job whose caller waits on job->done (the backend decides where it runs) and then rethrows job->error.
template <typename Group>
std::unique_ptr<Job<Group>> blockingJob(const std::shared_ptr<Group>& g, const std::string& what,
                                        std::function<void(typename NonDeduced<Group>::type&)> run) {
  auto job = std::make_unique<Job<Group>>();
  job->group = g;
  job->what = what;
  job->run = std::move(run);
  job->blocking = true;
  return job;
}

// Runs a collective for a plain (blocking) op: inline when the group allows it, else on the group's thread while
// the JavaScript thread waits; rethrows its failure.
template <typename Group>
void runBlocking(const std::shared_ptr<Group>& g, const std::string& what,
                 std::function<void(typename NonDeduced<Group>::type&)> run) {
  auto job = blockingJob(g, what, std::move(run));
  if (!g->tryRunInline(*job)) {
    auto done = job->done.get_future();
    g->push(job.get());
    done.wait();
  }
  if (!job->error.empty()) throw std::runtime_error(job->error);
}

}  // namespace collective
}  // namespace ssql
