// The Prometheus families the agent and the server compute from AppStatus
// (agent/status_metrics.h): the canary shield's and the pin header's counters are exposed
// per release, apart from the requests family the analysis reads.
#include "agent/status_metrics.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(StatusMetrics, ShieldedAndPinnedRequestsAreExposedPerRelease) {
  metrics::Registry registry;
  register_status_metrics(registry, {"app"}, [] {
    AppStatus st;
    st.app = "web";
    ReleaseStats stable;
    stable.release = "v1";
    stable.requests = 90;
    stable.status_2xx = 90;
    ReleaseStats canary;
    canary.release = "v2";
    canary.requests = 10;
    canary.status_5xx = 10;
    canary.shielded = 7;
    canary.pinned_requests = 4;
    st.releases = {stable, canary};
    return std::vector<StatusRow>{{{"web"}, st}};
  });
  const std::string text = registry.expose();
  EXPECT_NE(text.find(R"(ferry_router_shielded_total{app="web",release="v2"} 7)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(ferry_router_shielded_total{app="web",release="v1"} 0)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(ferry_router_pinned_requests_total{app="web",release="v2"} 4)"),
            std::string::npos)
      << text;
  // The shielded failures are still failures in the family the analysis reads.
  EXPECT_NE(text.find(R"(release="v2",code_class="5xx"} 10)"), std::string::npos) << text;
}

// HTTP/2 connections cut off for abuse reach /metrics by reason, from the agent's status as
// the server reads it (through its JSON form), for apps that terminate TLS only.
TEST(StatusMetrics, Http2AbuseIsExposedByReason) {
  AppStatus tls_app;
  tls_app.app = "web";
  tls_app.edge.tls = true;
  tls_app.edge.h2_abuse_rapid_reset = 3;
  tls_app.edge.h2_abuse_flood = 2;
  tls_app.edge.h2_abuse_protocol_error = 5;
  AppStatus carried = Json(tls_app).get<AppStatus>();
  EXPECT_EQ(carried.edge, tls_app.edge);
  AppStatus plain_app;
  plain_app.app = "api";
  metrics::Registry registry;
  register_status_metrics(registry, {"app"}, [carried, plain_app] {
    return std::vector<StatusRow>{{{"web"}, carried}, {{"api"}, plain_app}};
  });
  const std::string text = registry.expose();
  for (const char* sample : {R"(ferry_router_h2_abuse_total{app="web",reason="rapid_reset"} 3)",
                             R"(ferry_router_h2_abuse_total{app="web",reason="flood"} 2)",
                             R"(ferry_router_h2_abuse_total{app="web",reason="protocol_error"} 5)"})
    EXPECT_NE(text.find(sample), std::string::npos) << sample << "\n" << text;
  EXPECT_EQ(text.find(R"(ferry_router_h2_abuse_total{app="api")"), std::string::npos) << text;
}

}  // namespace
}  // namespace ferry
