// The metrics texts: Prometheus names, types and HELP from the counter
// lists; label escaping; the reader mapping both formats back to
// group.counter; and what the /metrics handler makes of a request head.
#include <gtest/gtest.h>

#include "cli/metrics_endpoint.hpp"
#include "cli/metrics_reader.hpp"
#include "cli/metrics_text.hpp"
#include "net/net_counters.hpp"

namespace vnk::cli {
namespace {

TEST(MetricsText, PrometheusNamesTypesAndHelpFromTheCounterList) {
  net::NetCounters c;
  c.tx_packets.add(3);
  MetricsGroup g = group_of("net", c);
  MetricsGroup server{"server", [](const auto& emit) { emit("link_up", 1); }, {}, {{"link_up", "1 while up"}}};
  const std::string text = render_prometheus({g, server}, "vm1");
  EXPECT_NE(text.find("# HELP vnetkit_net_tx_packets_total frames handed to the backend\n"
                      "# TYPE vnetkit_net_tx_packets_total counter\n"
                      "vnetkit_net_tx_packets_total{device=\"vm1\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE vnetkit_server_link_up gauge\nvnetkit_server_link_up{device=\"vm1\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("vnetkit_build_info{device=\"vm1\",version="), std::string::npos);
  EXPECT_EQ(counter_help("VNK_NET_COUNTERS", "tx_packets"), "frames handed to the backend");
  EXPECT_EQ(counter_help("VNK_NET_COUNTERS", "no_such_counter"), "");
}

TEST(MetricsText, LabelValuesAreEscapedAndReadBack) {
  MetricsGroup g{"net", [](const auto& emit) { emit("tx_packets", 7); }, {}, {}};
  const std::string text = render_prometheus({g}, "a\"b\\c\nd}e");
  EXPECT_NE(text.find("{device=\"a\\\"b\\\\c\\nd}e\"} 7"), std::string::npos) << text;
  auto s = parse_metrics(text);
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->at("net.tx_packets"), 7u);
}

TEST(MetricsText, FormatByExtension) {
  EXPECT_EQ(metrics_format_for("auto", "/run/m.prom"), MetricsFormat::prometheus);
  EXPECT_EQ(metrics_format_for("auto", "/run/m.json"), MetricsFormat::json);
  EXPECT_EQ(metrics_format_for("json", "/run/m.prom"), MetricsFormat::json);
  EXPECT_EQ(metrics_format_for("prometheus", "m"), MetricsFormat::prometheus);
}

TEST(MetricsReader, BothFormatsMapToGroupDotCounter) {
  auto j = parse_metrics(R"({"vhost_user": {"messages": 5}, "backend": {"drop_link_local": 2}})");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->at("vhost_user.messages"), 5u);
  auto p = parse_metrics(
      "# HELP x y\nvnetkit_vhost_user_messages_total{device=\"d\"} 5\nvnetkit_switch_guests_attached 2\n\n");
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->at("vhost_user.messages"), 5u);
  EXPECT_EQ(p->at("switch.guests_attached"), 2u);
  EXPECT_FALSE(parse_metrics("vnetkit_x{device=\"a\" 1\n"));
  EXPECT_FALSE(parse_metrics("vnetkit_x twelve\n"));
  EXPECT_FALSE(parse_metrics("[1, 2]"));
  // Out-of-range values are clamped, never converted out of range (found by fuzz_metrics_text).
  auto odd = parse_metrics("vnetkit_a 1e30\nvnetkit_b -3\nvnetkit_c nan\nvnetkit_d +Inf\n");
  ASSERT_TRUE(odd) << odd.error();
  EXPECT_EQ(odd->at("a"), UINT64_MAX);
  EXPECT_EQ(odd->at("b"), 0u);
  EXPECT_EQ(odd->at("c"), 0u);
}

TEST(MetricsEndpoint, RequestHeads) {
  using Kind = MetricsRequest::Kind;
  EXPECT_EQ(classify_request("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n").kind, Kind::metrics);
  EXPECT_EQ(classify_request("GET /metrics?x=1 HTTP/1.0\r\n\r\n").kind, Kind::metrics);
  const auto head = classify_request("HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(head.kind, Kind::metrics);
  EXPECT_TRUE(head.head_only);
  EXPECT_EQ(classify_request("GET / HTTP/1.1\r\n\r\n").kind, Kind::index);
  EXPECT_EQ(classify_request("GET /other HTTP/1.1\r\n\r\n").kind, Kind::not_found);
  EXPECT_EQ(classify_request("POST /metrics HTTP/1.1\r\n\r\n").kind, Kind::bad_method);
  EXPECT_EQ(classify_request("GET /metrics\r\n\r\n").kind, Kind::malformed);
  EXPECT_EQ(classify_request("GET /metrics SPDY/3\r\n\r\n").kind, Kind::malformed);
  EXPECT_EQ(classify_request("").kind, Kind::malformed);
}

TEST(MetricsEndpoint, ListenAddressesAreChecked) {
  auto render = [] { return std::string(); };
  EXPECT_FALSE(MetricsEndpoint::listen("nowhere", render));
  EXPECT_FALSE(MetricsEndpoint::listen("127.0.0.1", render));
  EXPECT_FALSE(MetricsEndpoint::listen("127.0.0.1:99999", render));
  auto e = MetricsEndpoint::listen("127.0.0.1:0", render);
  ASSERT_TRUE(e) << e.error();
  EXPECT_TRUE((*e)->where().starts_with("127.0.0.1:"));
  EXPECT_NE((*e)->where(), "127.0.0.1:0");
  auto v6 = MetricsEndpoint::listen("[::1]:0", render);
  if (v6) {
    EXPECT_TRUE((*v6)->where().starts_with("[::1]:"));
  }
}

}  // namespace
}  // namespace vnk::cli
