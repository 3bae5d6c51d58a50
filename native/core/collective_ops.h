// The collective ops of lib/tensor/native/collective.ts, written once for both process-group backends: argument
// checks (collective_args.h), the group's life cycle and the plain / Async forms (collective_jobs.h). A backend
// supplies only its transport, as a Group type deriving from collective::GroupBase<Group> that also provides:
//   static constexpr bool kInterfaces               whether processGroupCreate reads options.hostname / iface
//   static const napi_type_tag& tag()                the handle's type tag
//   void prepare(const parse::GroupOptions&)         on the JavaScript thread, before the group's thread starts
//   void connect(const parse::GroupOptions&)         on the group's thread: rendezvous, forms the communicator
//   void destroy()                                   processGroupDestroy (after `destroyed` is set)
//   using Reduction; static Reduction reduction(const std::string& op, const std::string& name, DType)
//   void allReduce(const std::vector<TensorPtr>&, Reduction, const std::string& what)   (on the group's thread,
//   void broadcast(const std::vector<TensorPtr>&, int root, const std::string& what)      as are the next two)
//   void allGather(const TensorPtr& x, const TensorPtr& out, const std::string& what)
//   void barrier()
// and then registers the ops with SSQL_COLLECTIVE_OPS(Group) (native/cpu/gloo.cc, native/cuda/process_group.cc).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "binding.h"
#include "collective_args.h"
#include "collective_jobs.h"

namespace ssql {
namespace collective {

template <typename Group>
std::shared_ptr<Group> groupOf(const Args& a) {
  return parse::groupArg<Group>(a, 0, Group::tag());
}

// processGroupCreate({rank, size, storeHost, storePort, prefix, timeoutMs, hostname?, iface?}) -> Promise<group>
template <typename Group>
Napi::Value create(const Args& a) {
  parse::GroupOptions opt = parse::groupOptions(a, Group::kInterfaces);
  auto g = std::make_shared<Group>();
  g->rank = static_cast<int>(opt.rank);
  g->size = static_cast<int>(opt.size);
  g->timeout = std::chrono::milliseconds(opt.timeoutMs);
  g->prepare(opt);
  g->tsfn = GroupBase<Group>::Tsfn::New(a.env(), std::string("ssql.") + Group::kBackend, 0, 1, g.get());
  napi_add_env_cleanup_hook(a.env(), &Group::onEnvCleanup, new std::shared_ptr<Group>(g));
  g->start();
  return enqueueAsync(
      a.env(), g, "processGroupCreate",
      [opt](Group& grp) {
        try {
          grp.connect(opt);
        } catch (...) {
          grp.stop();  // a group that failed to form is of no further use: its thread ends after reporting
          throw;
        }
      },
      [g](Napi::Env e) { return parse::wrapGroup(e, g, Group::tag()); });
}

template <typename Group>
Napi::Value destroy(const Args& a) {
  auto g = groupOf<Group>(a);
  g->destroyed = true;
  g->destroy();
  return a.env().Undefined();
}

// A plain op waits for its collective (collective_jobs.h: runBlocking); an Async one returns a promise. run gets the
// group and the op's name; `result` makes the value either returns (undefined without it).
template <typename Group>
Napi::Value submit(const Args& a, const std::shared_ptr<Group>& g, bool async,
                   std::function<void(typename NonDeduced<Group>::type&, const std::string&)> run,
                   std::function<Napi::Value(Napi::Env)> result = nullptr) {
  std::string what = a.op;
  auto job = [run = std::move(run), what](Group& grp) { run(grp, what); };
  if (async) return enqueueAsync(a.env(), g, what, std::move(job), std::move(result));
  runBlocking(g, what, std::move(job));
  return result ? result(a.env()) : a.env().Undefined();
}

// Several tensors of one dtype travel as one message (a gradient bucket).
template <typename Group>
Napi::Value allReduce(const Args& a, bool async) {
  auto g = groupOf<Group>(a);
  auto xs = parse::sameDtypeTensors(a, 1, "tensors");
  auto r = Group::reduction(a.op, a.string(2, "op"), xs[0]->dtype);
  return submit(a, g, async, [xs, r](Group& grp, const std::string& what) { grp.allReduce(xs, r, what); });
}

template <typename Group>
Napi::Value broadcast(const Args& a, bool async) {
  auto g = groupOf<Group>(a);
  auto xs = a.tensors(1, "tensors");
  int root = parse::rootArg(a, 2, g->size);
  return submit(a, g, async, [xs, root](Group& grp, const std::string& what) { grp.broadcast(xs, root, what); });
}

// Every rank's x concatenated along dim 0 in rank order.
template <typename Group>
Napi::Value allGather(const Args& a, bool async) {
  auto g = groupOf<Group>(a);
  auto x = a.tensor(1, "x");
  auto out = parse::gatherOutput(x, g->size);
  return submit(
      a, g, async, [x, out](Group& grp, const std::string& what) { grp.allGather(x, out, what); },
      [out](Napi::Env e) { return wrap(e, out); });
}

template <typename Group>
Napi::Value barrier(const Args& a) {
  auto g = groupOf<Group>(a);
  return enqueueAsync(a.env(), g, "barrier", [](Group& grp) { grp.barrier(); });
}

}  // namespace collective
}  // namespace ssql

// Registers the collective ops of this addon over the backend's Group (see the top of this file).
#define SSQL_COLLECTIVE_OPS(Group)                                                                 \
  SSQL_OP(processGroupCreate) { return ssql::collective::create<Group>(a); }                      \
  SSQL_OP(processGroupDestroy) { return ssql::collective::destroy<Group>(a); }                    \
  SSQL_OP(allReduce_) { return ssql::collective::allReduce<Group>(a, false); }                    \
  SSQL_OP(allReduceAsync_) { return ssql::collective::allReduce<Group>(a, true); }                \
  SSQL_OP(broadcast_) { return ssql::collective::broadcast<Group>(a, false); }                    \
  SSQL_OP(broadcastAsync_) { return ssql::collective::broadcast<Group>(a, true); }                \
  SSQL_OP(allGather) { return ssql::collective::allGather<Group>(a, false); }                     \
  SSQL_OP(allGatherAsync) { return ssql::collective::allGather<Group>(a, true); }                 \
  SSQL_OP(barrier) { return ssql::collective::barrier<Group>(a); }
