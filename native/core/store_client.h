// Blocking client of the rendezvous store served by lib/distributed/store.ts (same wire format), for native code that
// must rendezvous off the JavaScript thread: Gloo's address exchange, NCCL's unique id. Header-only so that both
// addons can use it.
//
// Frames are little-endian:
//   request:  u32 bodyLength | u32 requestId | u8 command | u32 timeoutMs | u32 count | count x (u32 length | bytes)
//   response: u32 bodyLength | u32 requestId | u8 status  | u32 count | count x (u32 length | bytes)
#pragma once

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ssql {

class StoreClient {
 public:
  using Ms = std::chrono::milliseconds;
  enum Command : uint8_t { kSet = 1, kGet = 2, kAdd = 3, kWait = 4, kCheck = 5, kDelete = 6 };
  enum Status : uint8_t { kOk = 0, kTimeout = 1, kError = 2 };

  // Retries until the store answers or `connectTimeout` passes (rank 0 may start listening after the others).
  StoreClient(const std::string& host, int port, Ms connectTimeout) : where_(host + ":" + std::to_string(port)) {
    auto deadline = std::chrono::steady_clock::now() + connectTimeout;
    std::string last;
    while (true) {
      fd_ = tryConnect(host, port, last);
      if (fd_ >= 0) break;
      if (std::chrono::steady_clock::now() >= deadline)
        throw std::runtime_error("could not reach the rendezvous store at " + where_ + " within " +
                                 seconds(connectTimeout) + " s: " + last);
      std::this_thread::sleep_for(Ms(100));
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~StoreClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  StoreClient(const StoreClient&) = delete;
  StoreClient& operator=(const StoreClient&) = delete;

  void set(const std::string& key, const std::vector<char>& value) {
    request(kSet, Ms(0), {bytes(key), value});
  }
  // Waits up to `timeout` for the key to be set.
  std::vector<char> get(const std::string& key, Ms timeout) {
    auto r = request(kGet, timeout, {bytes(key)});
    if (r.size() != 1) throw std::runtime_error("rendezvous store at " + where_ + ": malformed reply to get");
    return r[0];
  }
  void wait(const std::vector<std::string>& keys, Ms timeout) {
    std::vector<std::vector<char>> args;
    for (const auto& k : keys) args.push_back(bytes(k));
    request(kWait, timeout, args);
  }

 private:
  int fd_ = -1;
  uint32_t nextId_ = 1;
  std::string where_;

  static std::vector<char> bytes(const std::string& s) { return std::vector<char>(s.begin(), s.end()); }
  static std::string seconds(Ms t) {
    std::ostringstream o;
    o << t.count() / 1000.0;
    return o.str();
  }

  static int tryConnect(const std::string& host, int port, std::string& why) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (rc != 0) {
      why = std::string("cannot resolve '") + host + "': " + gai_strerror(rc);
      return -1;
    }
    int fd = -1;
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
      why = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
    freeaddrinfo(res);
    return fd;
  }

  static void put32(std::vector<char>& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  static uint32_t get32(const char* p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
    return v;
  }

  void writeAll(const std::vector<char>& buf) {
    size_t off = 0;
    while (off < buf.size()) {
      ssize_t n = ::send(fd_, buf.data() + off, buf.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error("lost the connection to the rendezvous store at " + where_ + " (rank 0 gone?)");
      off += static_cast<size_t>(n);
    }
  }
  void readAll(char* p, size_t len, std::chrono::steady_clock::time_point deadline) {
    size_t off = 0;
    while (off < len) {
      auto left = std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) throw std::runtime_error("the rendezvous store at " + where_ + " did not answer in time");
      pollfd pfd{fd_, POLLIN, 0};
      int pr = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
      if (pr < 0 && errno == EINTR) continue;
      if (pr == 0) continue;
      ssize_t n = ::recv(fd_, p + off, len - off, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error("lost the connection to the rendezvous store at " + where_ + " (rank 0 gone?)");
      off += static_cast<size_t>(n);
    }
  }

  std::vector<std::vector<char>> request(uint8_t cmd, Ms timeout, const std::vector<std::vector<char>>& args) {
    uint32_t id = nextId_++;
    std::vector<char> body;
    put32(body, id);
    body.push_back(static_cast<char>(cmd));
    put32(body, static_cast<uint32_t>(timeout.count()));
    put32(body, static_cast<uint32_t>(args.size()));
    for (const auto& a : args) {
      put32(body, static_cast<uint32_t>(a.size()));
      body.insert(body.end(), a.begin(), a.end());
    }
    std::vector<char> frame;
    put32(frame, static_cast<uint32_t>(body.size()));
    frame.insert(frame.end(), body.begin(), body.end());
    writeAll(frame);

    // The server answers by `timeout` at the latest; the margin covers a slow network.
    auto deadline = std::chrono::steady_clock::now() + timeout + Ms(30000);
    char head[4];
    readAll(head, 4, deadline);
    std::vector<char> reply(get32(head));
    readAll(reply.data(), reply.size(), deadline);
    if (reply.size() < 9 || get32(reply.data()) != id)
      throw std::runtime_error("rendezvous store at " + where_ + ": malformed reply");
    uint8_t status = static_cast<uint8_t>(reply[4]);
    uint32_t count = get32(reply.data() + 5);
    std::vector<std::vector<char>> out;
    size_t off = 9;
    for (uint32_t i = 0; i < count; ++i) {
      if (off + 4 > reply.size()) throw std::runtime_error("rendezvous store at " + where_ + ": malformed reply");
      uint32_t n = get32(reply.data() + off);
      off += 4;
      if (off + n > reply.size()) throw std::runtime_error("rendezvous store at " + where_ + ": malformed reply");
      out.emplace_back(reply.data() + off, reply.data() + off + n);
      off += n;
    }
    if (status == kOk) return out;
    std::string detail;
    for (const auto& o : out) detail += (detail.empty() ? "" : ", ") + std::string(o.begin(), o.end());
    if (status == kTimeout)
      throw std::runtime_error("rendezvous store at " + where_ + ": timed out after " + seconds(timeout) +
                               " s waiting for keys: " + detail);
    throw std::runtime_error("rendezvous store at " + where_ + ": " + detail);
  }
};

}  // namespace ssql
