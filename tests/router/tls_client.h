// A keep-alive HTTPS client for the router tests: Boost.Asio's ssl::stream with SNI, a CA
// to verify the router's certificate, an optional client certificate and a bounded TLS
// version. Every operation is bounded in time (a stuck router fails the test, never hangs
// it): a transport or handshake failure is status 599, as in TestClient.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <string>

namespace ferry::testing_router {

class TlsTestClient {
 public:
  struct Options {
    std::string ca_file;              // verify the router's certificate against this CA
    std::string sni;                  // server name sent (and verified); empty: none
    std::string cert_file, key_file;  // a client certificate
    int max_version = 0;              // e.g. TLS1_1_VERSION; 0: the library's
    int min_version = 0;
  };

  TlsTestClient(uint16_t port, Options o) : port_(port), o_(std::move(o)), ctx_(make_ctx(o_)) {}

  // Connects and hand-shakes unless connected; false with `error` set when that fails.
  bool connect(std::string* error = nullptr) {
    if (stream_) return true;
    stream_.emplace(ioc_, ctx_);
    if (!o_.sni.empty()) SSL_set_tlsext_host_name(stream_->native_handle(), o_.sni.c_str());
    boost::system::error_code ec;
    stream_->next_layer().connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    if (!ec) {
      ec = run([&](auto done) {
        stream_->async_handshake(boost::asio::ssl::stream_base::client, done);
      });
    }
    if (ec) {
      if (error) *error = ec.message();
      close();
      return false;
    }
    return true;
  }

  boost::beast::http::response<boost::beast::http::string_body> get(
      const std::string& target, std::vector<std::pair<std::string, std::string>> headers = {}) {
    namespace http = boost::beast::http;
    http::response<http::string_body> failed;
    failed.result(599);
    if (!connect()) return failed;
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, o_.sni.empty() ? "127.0.0.1" : o_.sni);
    for (auto& [k, v] : headers) req.set(k, v);
    auto ec = run([&](auto done) {
      http::async_write(*stream_, req, [done](boost::system::error_code e, size_t) { done(e); });
    });
    http::response_parser<http::string_body> parser;
    if (!ec)
      ec = run([&](auto done) {
        http::async_read(*stream_, buf_, parser,
                         [done](boost::system::error_code e, size_t) { done(e); });
      });
    if (ec) {
      close();
      return failed;
    }
    auto res = parser.release();
    if (!res.keep_alive()) close();
    return res;
  }

  // The common name of the router's certificate on the open connection ("" when none).
  std::string peer_cn() {
    if (!stream_) return {};
    X509* peer = SSL_get1_peer_certificate(stream_->native_handle());
    if (!peer) return {};
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn - 1);
    X509_free(peer);
    return cn;
  }
  // The TLS version of the open connection, e.g. "TLSv1.3".
  std::string version() { return stream_ ? SSL_get_version(stream_->native_handle()) : ""; }
  bool connected() const { return stream_.has_value(); }

  void close() {
    if (!stream_) return;
    boost::system::error_code ec;
    stream_->next_layer().close(ec);
    stream_.reset();
    buf_.clear();
  }

 private:
  static boost::asio::ssl::context make_ctx(const Options& o) {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_client);
    SSL_CTX* c = ctx.native_handle();
    if (o.max_version != 0) {
      // Old versions need the lowest security level to be offered at all.
      SSL_CTX_set_cipher_list(c, "DEFAULT:@SECLEVEL=0");
      SSL_CTX_set_min_proto_version(c, TLS1_VERSION);
      SSL_CTX_set_max_proto_version(c, o.max_version);
    }
    if (o.min_version != 0) SSL_CTX_set_min_proto_version(c, o.min_version);
    if (!o.ca_file.empty()) {
      ctx.load_verify_file(o.ca_file);
      ctx.set_verify_mode(boost::asio::ssl::verify_peer);
    }
    if (!o.cert_file.empty()) {
      ctx.use_certificate_chain_file(o.cert_file);
      ctx.use_private_key_file(o.key_file, boost::asio::ssl::context::pem);
    }
    return ctx;
  }

  // Runs one asynchronous operation for at most 10 s; the socket is closed on a timeout.
  template <typename Start>
  boost::system::error_code run(Start start) {
    std::optional<boost::system::error_code> result;
    start([&result](boost::system::error_code ec) { result = ec; });
    ioc_.restart();
    ioc_.run_for(std::chrono::seconds(10));
    if (!result) {
      boost::system::error_code ignored;
      stream_->next_layer().close(ignored);
      ioc_.restart();
      ioc_.run_for(std::chrono::seconds(1));
      return boost::asio::error::timed_out;
    }
    return *result;
  }

  uint16_t port_;
  Options o_;
  boost::asio::io_context ioc_;
  boost::asio::ssl::context ctx_;
  std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> stream_;
  boost::beast::flat_buffer buf_;
};

}  // namespace ferry::testing_router
