// The server's kept-alive connections to an agent (agent/agent_connections.h) against test
// agents on loopback that count what they accept: one connection carries many calls; a
// connection the agent closed is replaced (an idempotent call sent again once, a POST never);
// revocation on either side ends a kept-alive connection; a silent agent costs its caller
// the deadline and nobody else anything; hostile answers (too large, garbage, trickled,
// unasked) are bounded and never read as the next call's answer.
#include "agent/agent_connections.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <list>
#include <thread>

#include "agent/http_agent_client.h"
#include "common/http_server.h"
#include "common/tls.h"

namespace ferry {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One accepted connection of a ScriptedAgent, plain or TLS, with blocking I/O.
class AgentSide {
 public:
  AgentSide(tcp::socket s, const std::shared_ptr<TlsContext>& tls) {
    if (tls) {
      tls_.emplace(std::move(s), tls->native());
      beast::error_code ec;
      tls_->handshake(asio::ssl::stream_base::server, ec);
      ok_ = !ec;
    } else {
      plain_.emplace(std::move(s));
    }
  }
  bool ok() const { return ok_; }
  // The next request's method and target ("" when the client closed or sent garbage).
  std::string read_request() {
    beast::error_code ec;
    http::request<http::string_body> req;
    if (tls_)
      http::read(*tls_, buf_, req, ec);
    else
      http::read(*plain_, buf_, req, ec);
    if (ec) return "";
    return std::string(req.method_string()) + " " + std::string(req.target());
  }
  bool write(std::string_view bytes) {
    beast::error_code ec;
    if (tls_)
      asio::write(*tls_, asio::buffer(bytes.data(), bytes.size()), ec);
    else
      asio::write(*plain_, asio::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }
  bool answer(std::string_view body) {
    return write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + std::string(body));
  }
  void close() {
    beast::error_code ec;
    tcp::socket& s = tls_ ? tls_->next_layer() : *plain_;
    s.shutdown(tcp::socket::shutdown_both, ec);  // the socket itself closes with this object
  }

 private:
  bool ok_ = true;
  std::optional<tcp::socket> plain_;
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  beast::flat_buffer buf_;
};

// A test agent on 127.0.0.1 that serves each connection on a thread of its own with
// `script(connection, index of the connection)` and counts the connections it accepted.
class ScriptedAgent {
 public:
  using Script = std::function<void(AgentSide&, int)>;
  explicit ScriptedAgent(Script script, std::shared_ptr<TlsContext> tls = nullptr)
      : script_(std::move(script)), tls_(std::move(tls)), acceptor_(ioc_) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    acceptor_.non_blocking(true);
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~ScriptedAgent() {
    stop_ = true;
    thread_.join();
    {
      std::lock_guard lk(mu_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);  // ends blocked reads
    }
    for (auto& t : conns_) t.join();
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  Endpoint endpoint() const { return Endpoint{"127.0.0.1", port_}; }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{acceptor_.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      beast::error_code ec;
      tcp::socket s(ioc_);
      acceptor_.accept(s, ec);
      if (ec) continue;
      s.non_blocking(false);
      const int index = accepted_++;
      std::lock_guard lk(mu_);
      fds_.push_back(s.native_handle());
      conns_.emplace_back([this, index, s = std::move(s)]() mutable {
        const int fd = s.native_handle();
        AgentSide side(std::move(s), tls_);
        if (side.ok()) script_(side, index);
        // Off the list while the descriptor is still ours: never shut down a reused number.
        std::lock_guard l(mu_);
        std::erase(fds_, fd);
      });
    }
  }

  Script script_;
  std::shared_ptr<TlsContext> tls_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::vector<int> fds_;
  std::list<std::thread> conns_;
  std::thread thread_;
};

// Answers every request with {"n": <requests so far>} on a kept-alive connection.
ScriptedAgent::Script counting(std::atomic<int>& requests) {
  return [&requests](AgentSide& c, int) {
    while (!c.read_request().empty()) {
      const int n = ++requests;
      if (!c.answer("{\"n\":" + std::to_string(n) + "}")) return;
    }
  };
}

struct Issued {
  TlsIdentity id;
  std::string serial;
};

Issued issue_for(const CertAuthority& ca, const std::string& cn) {
  auto key = make_private_key().value();
  auto cert = sign_csr(ca, make_csr(key, cn).value(), cn, 30).value();
  return Issued{TlsIdentity{cert, key, ca.cert_pem, {}}, cert_serial(cert).value()};
}

// A revocation file replaced whole (a new inode), as `ferry agents revoke` writes it.
struct RevokedFile {
  std::string path;
  RevokedFile() {
    path = (std::filesystem::temp_directory_path() /
            ("ferry-conn-revoked-" + std::to_string(::getpid()) + "-" +
             std::to_string(reinterpret_cast<uintptr_t>(this))))
               .string();
    write("");
  }
  ~RevokedFile() { std::filesystem::remove(path); }
  void write(const std::string& text) const {
    const std::string tmp = path + ".tmp";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, path);
  }
};

AgentConnectionOptions opts(int timeout_ms = 10'000) {
  AgentConnectionOptions o;
  o.timeout_ms = timeout_ms;
  o.max_response_bytes = 64 * 1024;
  return o;
}

Result<HttpResponse> get(AgentConnections& c, const std::shared_ptr<TlsContext>& tls = nullptr,
                         std::string_view target = "/v1/health") {
  return c.request(tls, "GET", target, {{"Authorization", "Bearer t"}}, "");
}

TEST(AgentConnections, OneKeptAliveConnectionCarriesManyPlainCalls) {
  std::atomic<int> requests{0};
  ScriptedAgent agent(counting(requests));
  AgentConnections conns(agent.endpoint(), opts());
  for (int i = 1; i <= 20; ++i) {
    auto r = get(conns);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->body, "{\"n\":" + std::to_string(i) + "}");
  }
  EXPECT_EQ(agent.accepted(), 1);
  EXPECT_EQ(conns.counts().opened, 1u);
  EXPECT_EQ(conns.counts().reused, 19u);
}

class AgentConnectionsTls : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = make_ca("ferry test CA", 30).value();
    agent_ = issue_for(ca_, "agent-a");
    server_ = issue_for(ca_, "ferry-server");
  }
  // The agent's server-role context (its revocation list: `revoked_path`).
  std::shared_ptr<TlsContext> agent_ctx(const std::string& revoked_path = "") {
    TlsIdentity id = agent_.id;
    id.revoked_path = revoked_path;
    return TlsContext::create(TlsContext::Role::kServer, id, kServerCertName).value();
  }
  // The server's client-role context pinned to agent-a.
  std::shared_ptr<TlsContext> server_ctx(const std::string& revoked_path = "") {
    TlsIdentity id = server_.id;
    id.revoked_path = revoked_path;
    return TlsContext::create(TlsContext::Role::kClient, id, "agent-a").value();
  }
  CertAuthority ca_;
  Issued agent_, server_;
};

TEST_F(AgentConnectionsTls, OneHandshakeCarriesManyCallsAndANewContextConnectsAfresh) {
  std::atomic<int> requests{0};
  ScriptedAgent agent(counting(requests), agent_ctx());
  AgentConnections conns(agent.endpoint(), opts());
  auto tls = server_ctx();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(get(conns, tls).ok());
  EXPECT_EQ(agent.accepted(), 1);
  EXPECT_EQ(requests.load(), 20);
  // A new server certificate (a new context): the connection made with the old one goes.
  auto renewed = server_ctx();
  ASSERT_TRUE(get(conns, renewed).ok());
  EXPECT_EQ(agent.accepted(), 2);
  EXPECT_EQ(conns.counts().open, 1u);
}

TEST(AgentConnections, AConnectionTheAgentClosedIsReplacedAndAnIdempotentCallSentAgainOnce) {
  // Connection 0 answers one call, then reads the next one and closes without answering
  // (an agent restarting just as the call arrives); later connections answer everything.
  std::atomic<int> requests{0};
  ScriptedAgent agent([&](AgentSide& c, int index) {
    if (index == 0) {
      if (c.read_request().empty()) return;
      ++requests;
      c.answer("{\"first\":true}");
      if (!c.read_request().empty()) ++requests;
      return;  // closed, unanswered
    }
    while (!c.read_request().empty()) {
      ++requests;
      c.answer("{\"fresh\":true}");
    }
  });
  AgentConnections conns(agent.endpoint(), opts());
  ASSERT_TRUE(conns.request(nullptr, "PUT", "/v1/apps/web", {}, "{}").ok());
  auto r = conns.request(nullptr, "PUT", "/v1/apps/web", {}, "{}");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body, "{\"fresh\":true}");
  EXPECT_EQ(agent.accepted(), 2);
  EXPECT_EQ(requests.load(), 3);
  EXPECT_EQ(conns.counts().retried, 1u);
}

TEST(AgentConnections, APostIsNeverSentTwice) {
  std::atomic<int> posts{0};
  ScriptedAgent agent([&](AgentSide& c, int) {
    if (c.read_request().empty()) return;
    c.answer("{}");
    if (c.read_request().rfind("POST", 0) == 0) ++posts;
    // closed, unanswered: the kill may have happened
  });
  AgentConnections conns(agent.endpoint(), opts());
  ASSERT_TRUE(get(conns).ok());
  auto r = conns.request(nullptr, "POST", "/v1/apps/web/kill", {}, "{\"instance\":\"x\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().message();
  EXPECT_EQ(posts.load(), 1);
  EXPECT_EQ(agent.accepted(), 1);
  EXPECT_EQ(conns.counts().retried, 0u);
}

TEST(AgentConnections, AnAgentThatClosesAfterEachAnswerCostsNoFailedCall) {
  // Every connection answers one call and closes (as a restarted agent's old process does):
  // a closed idle connection is noticed before anything is sent on it, or, when the close
  // comes while the call is sent, the call (idempotent) goes once more on a new connection.
  std::atomic<int> requests{0};
  std::atomic<int> closed{0};
  ScriptedAgent agent([&](AgentSide& c, int) {
    if (c.read_request().empty()) return;
    ++requests;
    c.answer("{}");
    c.close();
    ++closed;
  });
  AgentConnections conns(agent.endpoint(), opts());
  for (int i = 0; i < 10; ++i) {
    auto r = get(conns);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().message();
  }
  EXPECT_EQ(requests.load(), 10);
  EXPECT_EQ(agent.accepted(), 10);
  // A POST (never sent twice) after the agent closed: the close is seen first, no failure.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (closed.load() < 10 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(closed.load(), 10);
  auto post = conns.request(nullptr, "POST", "/v1/apps/web/kill", {}, "{}");
  ASSERT_TRUE(post.ok()) << post.status().message();
  EXPECT_EQ(agent.accepted(), 11);
  EXPECT_EQ(requests.load(), 11);
}

TEST_F(AgentConnectionsTls, AnAgentCertificateRevokedAfterTheHandshakeEndsTheKeptConnection) {
  // The attacker holds agent-a's key; the operator revokes its certificate on the server.
  // The kept-alive connection made before must not carry the next call (token, secrets).
  RevokedFile server_list;
  std::atomic<int> requests{0};
  ScriptedAgent agent(counting(requests), agent_ctx());
  AgentConnections conns(agent.endpoint(), opts());
  auto tls = server_ctx(server_list.path);
  ASSERT_TRUE(get(conns, tls).ok());
  server_list.write(agent_.serial + "\n");
  auto r = get(conns, tls);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("revoked"), std::string::npos) << r.status().message();
  EXPECT_EQ(requests.load(), 1);  // nothing more reached the agent
}

TEST_F(AgentConnectionsTls, TheServerCertificateRevokedOnTheAgentIsRefusedOnTheKeptConnection) {
  // The real agent listener (HttpServer) checks the peer's serial before each request: the
  // server's kept-alive connection gets no answer, and the new handshake is refused.
  RevokedFile agent_list;
  HttpServerOptions o;
  o.tls = agent_ctx(agent_list.path);
  HttpServer http(o);
  std::atomic<int> answered{0};
  http.route("GET", "/v1/health", [&](HttpRequest&) {
    ++answered;
    return HttpResponse::json(Json{{"ok", true}});
  });
  ASSERT_TRUE(http.start().ok());
  AgentConnections conns(Endpoint{"127.0.0.1", http.port()}, opts());
  auto tls = server_ctx();
  ASSERT_TRUE(get(conns, tls).ok());
  ASSERT_TRUE(get(conns, tls).ok());
  EXPECT_EQ(conns.counts().opened, 1u);
  agent_list.write(server_.serial + "\n");
  auto r = get(conns, tls);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(answered.load(), 2);
  http.stop();
}

TEST(AgentConnections, AnIdleKeptConnectionDoesNotHoldUpTheAgentsHotRestart) {
  // The agent's hot restart pauses its API and waits for open calls; an idle kept-alive
  // connection of the server is not a call: it ends at once, and the next call connects to
  // whoever listens then.
  HttpServer http(HttpServerOptions{});
  std::atomic<int> answered{0};
  http.route("GET", "/v1/health", [&](HttpRequest&) {
    ++answered;
    return HttpResponse::json(Json{{"ok", true}});
  });
  ASSERT_TRUE(http.start().ok());
  AgentConnections conns(Endpoint{"127.0.0.1", http.port()}, opts());
  ASSERT_TRUE(get(conns).ok());
  ASSERT_EQ(conns.counts().open, 1u);
  EXPECT_EQ(http.pause(120'000), 0) << "an idle kept-alive connection held up the handoff";
  http.resume();
  auto r = get(conns);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(answered.load(), 2);
  EXPECT_EQ(conns.counts().opened, 2u);
  http.stop();
}

TEST(AgentConnections, ASilentAgentCostsItsCallerTheDeadlineAndOtherAgentsNothing) {
  std::atomic<bool> release{false};
  ScriptedAgent silent([&](AgentSide& c, int) {
    c.read_request();
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  });
  std::atomic<int> requests{0};
  ScriptedAgent good(counting(requests));
  AgentConnections to_silent(silent.endpoint(), opts(2000));
  AgentConnections to_good(good.endpoint(), opts());
  std::atomic<bool> silent_done{false};
  const auto t0 = std::chrono::steady_clock::now();
  auto pending = std::async(std::launch::async, [&] {
    auto r = get(to_silent);
    silent_done = true;
    return r;
  });
  // Calls to the other agent are answered while the silent one's call still waits.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(get(to_good).ok());
  EXPECT_FALSE(silent_done.load()) << "a good agent's calls waited for the silent one";
  auto r = pending.get();
  const auto took = std::chrono::steady_clock::now() - t0;
  release = true;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded) << r.status().message();
  EXPECT_GE(took, std::chrono::milliseconds(2000));
  EXPECT_LT(took, std::chrono::seconds(30));
}

TEST(AgentConnections, AnAgentThatTricklesItsAnswerCannotStretchTheDeadline) {
  std::atomic<bool> stop{false};
  ScriptedAgent slow([&](AgentSide& c, int) {
    c.read_request();
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    for (char ch : head)
      if (stop || !c.write(std::string_view(&ch, 1))) return;
    while (!stop && c.write("x")) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  });
  AgentConnections conns(slow.endpoint(), opts(1500));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = get(conns);
  const auto took = std::chrono::steady_clock::now() - t0;
  stop = true;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded) << r.status().message();
  EXPECT_LT(took, std::chrono::seconds(30));
  EXPECT_EQ(conns.counts().open, 0u);
}

TEST(AgentConnections, TooLargeOrGarbageAnswersAreErrorsAndTheConnectionIsClosed) {
  ScriptedAgent agent([&](AgentSide& c, int) {
    const std::string req = c.read_request();
    if (req.find("/large") != std::string::npos) {
      c.write("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + std::string(1'000'000, 'x'));
    } else if (req.find("/garbage") != std::string::npos) {
      c.write("SSH-2.0-OpenSSH_9.2\r\n\x01\x02\x03 not http at all\r\n\r\n");
    } else if (req.find("/headers") != std::string::npos) {
      std::string many = "HTTP/1.1 200 OK\r\n";
      for (int i = 0; i < 20'000; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
      c.write(many + "Content-Length: 0\r\n\r\n");
    }
  });
  AgentConnections conns(agent.endpoint(), opts());
  for (const char* target : {"/large", "/garbage", "/headers"}) {
    auto r = get(conns, nullptr, target);
    ASSERT_FALSE(r.ok()) << target << " "
                         << (r.ok()
                                 ? std::to_string(r->status) + " " + std::to_string(r->body.size())
                                 : "");
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << target << ": " << r.status().message();
    EXPECT_NE(r.status().message().find(agent.endpoint().to_string()), std::string::npos);
  }
  EXPECT_EQ(conns.counts().open, 0u);
  EXPECT_EQ(agent.accepted(), 3);
}

TEST(AgentConnections, AnAnswerNobodyAskedForIsNeverReadAsTheNextCallsAnswer) {
  // The agent answers the first call twice (a smuggled second answer in the same write):
  // the connection is not reused, so the next call gets its own answer.
  std::atomic<int> requests{0};
  ScriptedAgent agent([&](AgentSide& c, int index) {
    while (!c.read_request().empty()) {
      ++requests;
      if (index == 0)
        c.write(
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
            "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"forged\":1}");
      else
        c.answer("{\"b\":2}");
    }
  });
  AgentConnections conns(agent.endpoint(), opts());
  auto first = get(conns);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->body, "{\"a\":1}");
  auto second = get(conns);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->body, "{\"b\":2}");
  EXPECT_EQ(agent.accepted(), 2);
}

TEST(AgentConnections, CallsAtOnceToOneAgentUseAtMostTheBoundOfConnections) {
  std::atomic<int> requests{0};
  ScriptedAgent agent([&](AgentSide& c, int) {
    while (!c.read_request().empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      c.answer("{\"n\":" + std::to_string(++requests) + "}");
    }
  });
  AgentConnectionOptions o = opts(60'000);
  o.max_connections = 2;
  AgentConnections conns(agent.endpoint(), o);
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i)
    callers.emplace_back([&] {
      for (int k = 0; k < 3; ++k)
        if (get(conns).ok()) ++ok;
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok.load(), 24);
  EXPECT_LE(agent.accepted(), 2);
  EXPECT_LE(conns.counts().open, 2u);
}

TEST(AgentConnections, TheAgentClientReusesItsConnectionForEveryCall) {
  std::atomic<int> requests{0};
  ScriptedAgent agent([&](AgentSide& c, int) {
    while (!c.read_request().empty()) {
      ++requests;
      c.answer("{\"ok\":true}");
    }
  });
  HttpAgentClient client(agent.endpoint(), "token", 10'000, "a");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(client.health().ok());
  EXPECT_EQ(requests.load(), 10);
  EXPECT_EQ(agent.accepted(), 1);
  EXPECT_EQ(client.connection_counts().reused, 9u);
}

}  // namespace
}  // namespace ferry
