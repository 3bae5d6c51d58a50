// NCCL collectives for the distributed trainer: a communicator per process (one GPU each), in-place all-reduce and
// broadcast, and all-gather, all queued on the device's stream like every other op. Errors carry NCCL's message.
#include <nccl.h>

#include <cstring>
#include <string>

#include "../core/binding.h"
#include "runtime.h"

using namespace ssql;

namespace {

struct Comm {
  ncclComm_t comm = nullptr;
  int rank = 0, size = 0;
};

const napi_type_tag& commTag() {
  static const napi_type_tag tag = {0x5c0117ec7e0cc1a1ULL, 0x2d6e3f4a5b6c7d8eULL};
  return tag;
}

void checkNccl(ncclResult_t r, const char* what, ncclComm_t comm = nullptr) {
  if (r == ncclSuccess) return;
  std::string msg = std::string("NCCL error in ") + what + ": " + ncclGetErrorString(r);
  const char* detail = ncclGetLastError(comm);
  if (detail && *detail) msg += " (" + std::string(detail) + ")";
  throw cuda::CudaError(msg);
}

Comm* commArg(const Args& a, size_t i) {
  auto v = a.at(i, "comm");
  bool tagged = false;
  if (v.IsExternal()) napi_check_object_type_tag(a.env(), v, &commTag(), &tagged);
  if (!tagged) throw TypeError(a.where(i, "comm") + " must be a communicator from commInit()");
  auto* c = v.As<Napi::External<Comm>>().Data();
  if (!c->comm) throw TypeError(a.where(i, "comm") + " is a destroyed communicator");
  return c;
}

ncclDataType_t ncclType(DType dt) {
  switch (dt) {
    case DType::F32: return ncclFloat32;
    case DType::U8: return ncclUint8;
    case DType::I32: return ncclInt32;
  }
  return ncclFloat32;
}

}  // namespace

// A fresh NCCL unique id (128 bytes) for rank 0 to hand to every other rank.
SSQL_OP(commUniqueId) {
  cuda::stream();  // selects the device first
  ncclUniqueId id;
  checkNccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  auto out = Napi::Uint8Array::New(a.env(), sizeof(id.internal));
  std::memcpy(out.Data(), id.internal, sizeof(id.internal));
  return out;
}

// Joins the communicator of `worldSize` ranks; blocks until every rank has called it with the same id.
// A communicator dropped without commDestroy() is leaked rather than destroyed from a finalizer (that could hang).
SSQL_OP(commInit) {
  auto v = a.at(0, "uniqueId");
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw TypeError(a.where(0, "uniqueId") + " must be a Uint8Array from commUniqueId()");
  auto bytes = v.As<Napi::Uint8Array>();
  ncclUniqueId id;
  if (bytes.ElementLength() != sizeof(id.internal))
    throw RangeError(a.where(0, "uniqueId") + " must hold " + std::to_string(sizeof(id.internal)) + " bytes");
  std::memcpy(id.internal, bytes.Data(), sizeof(id.internal));
  int64_t rank = a.integer(1, "rank"), world = a.integer(2, "worldSize");
  if (world < 1 || world > (1 << 20) || rank < 0 || rank >= world)
    throw RangeError("commInit(): need 0 <= rank < worldSize, got rank " + std::to_string(rank) + " of " + std::to_string(world));
  cuda::stream();
  auto* c = new Comm();
  ncclResult_t r = ncclCommInitRank(&c->comm, static_cast<int>(world), id, static_cast<int>(rank));
  if (r != ncclSuccess) {
    delete c;
    checkNccl(r, "ncclCommInitRank");
  }
  c->rank = static_cast<int>(rank);
  c->size = static_cast<int>(world);
  auto ext = Napi::External<Comm>::New(a.env(), c, [](Napi::Env, Comm* p) { delete p; });
  napi_type_tag_object(a.env(), ext, &commTag());
  return ext;
}

// In place: x = sum (or mean) of x over all ranks.
SSQL_OP(ncclAllReduce_) {
  Comm* c = commArg(a, 0);
  auto x = a.tensor(1, "x");
  requireDtype(a.op, "x", *x, DType::F32);
  std::string op = a.string(2, "op");
  ncclRedOp_t red;
  if (op == "sum") red = ncclSum;
  else if (op == "avg") red = ncclAvg;
  else throw TypeError(a.where(2, "op") + " must be 'sum' or 'avg', got '" + op + "'");
  if (x->numel())
    checkNccl(ncclAllReduce(x->storage->data, x->storage->data, static_cast<size_t>(x->numel()), ncclFloat32, red, c->comm,
                            cuda::stream()),
              "ncclAllReduce", c->comm);
  return a.env().Undefined();
}

// In place: every rank's x becomes root's x.
SSQL_OP(ncclBroadcast_) {
  Comm* c = commArg(a, 0);
  auto x = a.tensor(1, "x");
  int64_t root = a.integer(2, "root");
  if (root < 0 || root >= c->size) throw RangeError("ncclBroadcast_(): root " + std::to_string(root) + " is not a rank");
  if (x->numel())
    checkNccl(ncclBroadcast(x->storage->data, x->storage->data, static_cast<size_t>(x->numel()), ncclType(x->dtype),
                            static_cast<int>(root), c->comm, cuda::stream()),
              "ncclBroadcast", c->comm);
  return a.env().Undefined();
}

// Returns [worldSize, ...x.shape] holding every rank's x in rank order.
SSQL_OP(ncclAllGather) {
  Comm* c = commArg(a, 0);
  auto x = a.tensor(1, "x");
  Shape shape = x->shape;
  shape.insert(shape.begin(), c->size);
  auto out = empty(x->dtype, shape);
  if (x->numel())
    checkNccl(ncclAllGather(x->storage->data, out->storage->data, static_cast<size_t>(x->numel()), ncclType(x->dtype),
                            c->comm, cuda::stream()),
              "ncclAllGather", c->comm);
  return wrap(a.env(), out);
}

// null, or the asynchronous error a communicator has hit (e.g. a peer died); pair with commAbort to fail fast.
SSQL_OP(commAsyncError) {
  Comm* c = commArg(a, 0);
  ncclResult_t state = ncclSuccess;
  checkNccl(ncclCommGetAsyncError(c->comm, &state), "ncclCommGetAsyncError", c->comm);
  if (state == ncclSuccess || state == ncclInProgress) return a.env().Null();
  std::string msg = ncclGetErrorString(state);
  const char* detail = ncclGetLastError(c->comm);
  if (detail && *detail) msg += " (" + std::string(detail) + ")";
  return Napi::String::New(a.env(), msg);
}

// Flushes queued collectives, then frees the communicator.
SSQL_OP(commDestroy) {
  Comm* c = commArg(a, 0);
  ncclComm_t comm = c->comm;
  c->comm = nullptr;
  checkNccl(ncclCommFinalize(comm), "ncclCommFinalize", comm);
  checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
  return a.env().Undefined();
}

// Frees the communicator at once, abandoning queued collectives (after a peer failed).
SSQL_OP(commAbort) {
  Comm* c = commArg(a, 0);
  ncclComm_t comm = c->comm;
  c->comm = nullptr;
  checkNccl(ncclCommAbort(comm), "ncclCommAbort");
  return a.env().Undefined();
}
