// The job queue plumbing both process-group backends share (native/cpu/gloo.cc, native/cuda/process_group.cc):
// a collective becomes a Job that the group's own thread runs in call order; an Async job's promise settles on the
// JavaScript thread through the group's thread-safe function, a blocking one is waited for by its caller.
//
// Group must provide: `Tsfn tsfn` (a Napi::TypedThreadSafeFunction<Group, Job<Group>, deliver<Group>>),
// `int pendingAsync` (touched only on the JavaScript thread) and `void push(Job<Group>*)`.
#pragma once

#include <napi.h>

#include <functional>
#include <future>
#include <memory>
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

}  // namespace collective
}  // namespace ssql
