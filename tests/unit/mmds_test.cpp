// The metadata service: the store's answers and tokens, the HTTP parsing,
// and the interceptor's TCP exchange driven by a test guest's frames.
#include "mmds/mmds_interceptor.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <string>
#include <vector>

#include "mmds/http_request.hpp"
#include "mmds/metadata_store.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "packet/tcp.hpp"

namespace vnk::mmds {
namespace {

using namespace packet;
using Bytes = std::vector<std::byte>;

const nlohmann::json kDoc = nlohmann::json::parse(R"({"latest": {"meta-data": {"instance-id": "i-123",
  "network": {"mac": "02:00:00:00:00:01"}, "cpus": 2, "tags": ["a", "b"]}}})");

TEST(MetadataStoreTest, AnswersByPath) {
  MetadataStore s(kDoc, false);
  EXPECT_EQ(s.handle("GET", "/latest/meta-data/instance-id", "", "", 0).body, "i-123");
  EXPECT_EQ(s.handle("GET", "/latest/meta-data/", "", "", 0).body, "cpus\ninstance-id\nnetwork/\ntags/");
  EXPECT_EQ(s.handle("GET", "/latest/meta-data/cpus", "", "", 0).body, "2");
  EXPECT_EQ(s.handle("GET", "/latest/meta-data/tags/1", "", "", 0).body, "b");
  EXPECT_EQ(s.handle("GET", "/latest/meta-data/nope", "", "", 0).status, 404);
  EXPECT_EQ(s.handle("GET", "/latest/meta-data/tags/9", "", "", 0).status, 404);
  EXPECT_EQ(s.handle("POST", "/latest/meta-data/", "", "", 0).status, 405);
}

TEST(MetadataStoreTest, TokensAreIssuedCheckedAndExpire) {
  MetadataStore s(kDoc, true);
  EXPECT_EQ(s.handle("GET", "/latest/meta-data/instance-id", "", "", 0).status, 401);
  EXPECT_EQ(s.handle("PUT", "/latest/api/token", "", "", 0).status, 400);
  EXPECT_EQ(s.handle("PUT", "/latest/api/token", "21601", "", 0).status, 400);
  auto t = s.handle("PUT", "/latest/api/token", "10", "", 1000);
  ASSERT_EQ(t.status, 200);
  EXPECT_EQ(t.body.size(), 48u);
  EXPECT_EQ(s.handle("GET", "/latest/meta-data/instance-id", "", t.body, 5000).body, "i-123");
  EXPECT_EQ(s.handle("GET", "/latest/meta-data/instance-id", "", "forged", 5000).status, 401);
  EXPECT_EQ(s.handle("GET", "/latest/meta-data/instance-id", "", t.body, 11001).status, 401);  // expired
  EXPECT_EQ(s.tokens(), 0u);
}

// A document file in a private directory, rewritten in place or replaced.
class DocumentFile {
 public:
  DocumentFile() {
    char tmpl[] = "/tmp/vnk-mmds-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/doc.json";
  }
  ~DocumentFile() {
    std::remove(path_.c_str());
    std::remove((path_ + ".new").c_str());
    ::rmdir(dir_.c_str());
  }
  void edit_in_place(const std::string& text) const {
    std::FILE* f = std::fopen(path_.c_str(), "r+");
    if (f == nullptr) f = std::fopen(path_.c_str(), "w");
    std::fwrite(text.data(), 1, text.size(), f);
    ::ftruncate(::fileno(f), static_cast<off_t>(text.size()));
    std::fclose(f);
    bump_mtime();
  }
  void replace_by_rename(const std::string& text) const {
    std::FILE* f = std::fopen((path_ + ".new").c_str(), "w");
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    std::rename((path_ + ".new").c_str(), path_.c_str());
    bump_mtime();
  }
  const std::string& path() const { return path_; }

 private:
  // Two writes within one clock tick must still read as a change.
  void bump_mtime() const {
    static long tick = 0;
    timespec times[2] = {{0, UTIME_OMIT}, {1'000'000 + ++tick, 0}};
    ::utimensat(AT_FDCWD, path_.c_str(), times, 0);
  }
  std::string dir_;
  std::string path_;
};

std::string get(MetadataStore& s, std::string_view path) { return s.handle("GET", path, "", "", 0).body; }

TEST(MetadataStoreTest, RereadsTheDocumentWhenItIsEditedOrReplaced) {
  DocumentFile file;
  file.edit_in_place(R"({"v": "one"})");
  auto store = MetadataStore::open(file.path(), false);
  ASSERT_TRUE(store.has_value()) << store.error();
  EXPECT_EQ(get(*store, "/v"), "one");
  file.edit_in_place(R"({"v": "two"})");
  EXPECT_EQ(get(*store, "/v"), "two");
  file.replace_by_rename(R"({"v": "three"})");
  EXPECT_EQ(get(*store, "/v"), "three");
  file.edit_in_place(R"({"v": broken)");
  EXPECT_EQ(get(*store, "/v"), "three") << "a broken document keeps the previous one";
}

TEST(MetadataStoreTest, PinnedToItsFileSeesEditsButNotTheReplacedPath) {
  // The sandbox's view: the path is gone, the open file remains.
  DocumentFile file;
  file.edit_in_place(R"({"v": "one"})");
  auto store = MetadataStore::open(file.path(), false);
  ASSERT_TRUE(store.has_value()) << store.error();
  store->pin_file();
  file.edit_in_place(R"({"v": "two"})");
  EXPECT_EQ(get(*store, "/v"), "two");
  file.replace_by_rename(R"({"v": "three"})");
  EXPECT_EQ(get(*store, "/v"), "two");
}

TEST(HttpRequestTest, ParsesTheRequestLineAndTheImdsHeaders) {
  HttpRequest r;
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost: x\r\n", r), HttpParse::incomplete);
  ASSERT_EQ(parse_http_request("PUT /latest/api/token HTTP/1.1\r\nx-METADATA-token-ttl-seconds:  60 \r\n\r\n", r),
            HttpParse::complete);
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.path, "/latest/api/token");
  EXPECT_EQ(r.ttl, "60");
  EXPECT_EQ(parse_http_request("GET / HTTP/1.0\r\nContent-Length: 5\r\n\r\nab", r), HttpParse::incomplete);
  EXPECT_EQ(parse_http_request("garbage\r\n\r\n", r), HttpParse::bad);
  EXPECT_EQ(parse_http_request("GET nopath HTTP/1.0\r\n\r\n", r), HttpParse::bad);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.0\r\nContent-Length: 99999\r\n\r\n", r), HttpParse::bad);
}

class MmdsInterceptorTest : public ::testing::Test {
 protected:
  const MacAddress kGuestMac{{0x02, 0, 0, 0, 0, 1}};
  const MacAddress kGwMac{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
  const Ipv4Address kGuest = Ipv4Address::of(10, 0, 2, 15);

  bool send(std::uint16_t port, std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, std::string_view data = {}) {
    TcpFields t{port, 80, seq, ack, flags, 65535, {}, {}, false, {}};
    Bytes f(kEthernetHeaderSize + kIpv4HeaderSize + kTcpHeaderSize + data.size());
    write_ethernet(f, kGwMac, kGuestMac, ethertype::kIpv4);
    write_ipv4(std::span(f).subspan(kEthernetHeaderSize),
               Ipv4Fields{kGuest, MmdsInterceptor::kAddress, ip_proto::kTcp,
                          static_cast<std::uint16_t>(kTcpHeaderSize + data.size()), 1, 64, 0});
    auto seg = std::span(f).subspan(kEthernetHeaderSize + kIpv4HeaderSize);
    write_tcp(seg, t);
    std::copy(data.begin(), data.end(), reinterpret_cast<char*>(seg.data() + kTcpHeaderSize));
    Checksum sum;
    sum.add(seg);
    store_tcp_checksum(seg, sum, kGuest, MmdsInterceptor::kAddress, seg.size());
    const iovec iov{f.data(), f.size()};
    const net::NetHeader h{};
    return mmds.intercept_tx(net::TxFrame{h, std::span(&iov, 1), f.size(), std::span(f).first(std::min(f.size(), net::kTxHeadBytes))});
  }
  // Every frame waiting for the guest: (tcp header, payload).
  std::vector<std::pair<Tcp, std::string>> take() {
    std::vector<std::pair<Tcp, std::string>> out;
    while (mmds.rx_pending()) {
      Bytes b(2048);
      const iovec iov{b.data(), b.size()};
      auto r = mmds.receive(std::span(&iov, 1));
      b.resize(r.written);
      auto eth = parse_ethernet(b);
      auto ip = parse_ipv4(eth->payload);
      EXPECT_TRUE(ip);
      Checksum sum;
      add_ipv4_pseudo_header(sum, ip->src.value, ip->dst.value, ip_proto::kTcp, ip->payload_len);
      sum.add(ip->payload);
      EXPECT_EQ(sum.finish(), 0);
      auto tcp = *parse_tcp(*ip);
      out.emplace_back(tcp, std::string(reinterpret_cast<const char*>(ip->payload.data()) + tcp.header_len,
                                        tcp.payload_len));
    }
    return out;
  }
  // One HTTP exchange on a fresh connection; returns the response text.
  std::string exchange(std::uint16_t port, const std::string& request) {
    EXPECT_TRUE(send(port, 100, 0, tcp_flag::kSyn));
    auto synack = take();
    EXPECT_EQ(synack.size(), 1u);
    const std::uint32_t iss = synack[0].first.seq;
    send(port, 101, iss + 1, tcp_flag::kAck);
    send(port, 101, iss + 1, tcp_flag::kAck | tcp_flag::kPsh, request);
    std::string text;
    std::uint32_t fin_seq = 0;
    for (auto& [t, d] : take()) {
      text += d;
      if (t.has(tcp_flag::kFin)) fin_seq = t.seq;
    }
    EXPECT_NE(fin_seq, 0u);
    const auto after = static_cast<std::uint32_t>(101 + request.size());
    send(port, after, fin_seq + 1, tcp_flag::kAck | tcp_flag::kFin);
    take();
    return text;
  }
  MmdsInterceptor mmds{MetadataStore(kDoc, true), kGwMac};
};

TEST_F(MmdsInterceptorTest, ATokenThenAGetOverTcp) {
  const std::string put = exchange(40001, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n");
  ASSERT_TRUE(put.starts_with("HTTP/1.1 200 OK\r\n")) << put;
  const std::string token = put.substr(put.find("\r\n\r\n") + 4);
  EXPECT_EQ(token.size(), 48u);
  const std::string denied = exchange(40002, "GET /latest/meta-data/instance-id HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(denied.starts_with("HTTP/1.1 401")) << denied;
  const std::string ok =
      exchange(40003, "GET /latest/meta-data/instance-id HTTP/1.1\r\nX-metadata-token: " + token + "\r\n\r\n");
  EXPECT_TRUE(ok.ends_with("\r\n\r\ni-123")) << ok;
  EXPECT_EQ(mmds.counters().connections.get(), 3u);
  EXPECT_EQ(mmds.counters().unauthorized.get(), 1u);
  EXPECT_EQ(mmds.counters().tokens_issued.get(), 1u);
}

TEST_F(MmdsInterceptorTest, OtherTrafficPassesAndStrayPortsAreReset) {
  Bytes other(60);
  write_ethernet(other, kGwMac, kGuestMac, ethertype::kArp);
  const iovec iov{other.data(), other.size()};
  const net::NetHeader h{};
  EXPECT_FALSE(mmds.intercept_tx(net::TxFrame{h, std::span(&iov, 1), other.size(), std::span(other).first(std::min(other.size(), net::kTxHeadBytes))}));
  EXPECT_TRUE(send(40004, 5, 0, tcp_flag::kAck, "x"));  // no connection: RST
  auto r = take();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].first.has(tcp_flag::kRst));
}

}  // namespace
}  // namespace vnk::mmds
