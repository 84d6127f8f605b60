// The router's Picker on snapshots built by its Registry, without sockets: smooth weighted
// round-robin over releases, round-robin over a release's backends, and exclusions.
#include <gtest/gtest.h>

#include <map>

#include "router/route_table.h"

namespace ferry::routing {
namespace {

RouteBackend backend(const std::string& id, const std::string& release, uint16_t port) {
  RouteBackend b;
  b.id = id;
  b.release = release;
  b.port = port;
  return b;
}

std::shared_ptr<const Snapshot> snapshot(Registry& reg, std::map<std::string, int> weights,
                                         std::vector<RouteBackend> backends) {
  RouteTable t;
  t.weights = std::move(weights);
  t.backends = std::move(backends);
  return reg.build(std::move(t), 1, nullptr);
}

TEST(Picker, SplitsExactlyByWeightAndInterleaves) {
  Registry reg(1);
  auto s = snapshot(reg, {{"v1", 90}, {"v2", 10}},
                    {backend("a", "v1", 9001), backend("b", "v2", 9002)});
  Picker p;
  p.reset(*s);
  std::map<std::string, int> got;
  int longest_v1_run = 0, run = 0;
  for (int i = 0; i < 1000; ++i) {
    const int r = p.pick_release(*s);
    ASSERT_GE(r, 0);
    const std::string& name = s->releases[static_cast<size_t>(r)].name;
    ++got[name];
    run = name == "v1" ? run + 1 : 0;
    longest_v1_run = std::max(longest_v1_run, run);
  }
  EXPECT_EQ(got["v1"], 900);
  EXPECT_EQ(got["v2"], 100);
  EXPECT_LE(longest_v1_run, 9);  // smooth: v2 comes every tenth pick, not in a burst
}

TEST(Picker, NoWeightOrNoBackendMeansNoTraffic) {
  Registry reg(1);
  // v2 has weight but no ready backend; v3 has a backend but weight 0.
  auto s = snapshot(reg, {{"v1", 50}, {"v2", 50}, {"v3", 0}},
                    {backend("a", "v1", 9001), backend("c", "v3", 9003)});
  Picker p;
  p.reset(*s);
  for (int i = 0; i < 100; ++i) {
    const int r = p.pick_release(*s);
    ASSERT_GE(r, 0);
    EXPECT_EQ(s->releases[static_cast<size_t>(r)].name, "v1");
  }
  auto empty = snapshot(reg, {{"v1", 100}}, {});
  p.reset(*empty);
  EXPECT_EQ(p.pick_release(*empty), -1);
}

TEST(Picker, ExcludesTheReleaseAndBackendAlreadyTried) {
  Registry reg(1);
  auto s = snapshot(reg, {{"v1", 50}, {"v2", 50}},
                    {backend("a", "v1", 9001), backend("b", "v1", 9002), backend("c", "v2", 9003)});
  Picker p;
  p.reset(*s);
  const int v1 = s->find("v1");
  const int v2 = s->find("v2");
  ASSERT_GE(v1, 0);
  ASSERT_GE(v2, 0);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(p.pick_release(*s, v1), v2);
  // Round-robin over v1's two backends, and never the one excluded.
  BackendState* first = p.pick_backend(*s, v1);
  BackendState* second = p.pick_backend(*s, v1);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_NE(first->spec.id, second->spec.id);
  for (int i = 0; i < 10; ++i) {
    BackendState* other = p.pick_backend(*s, v1, first);
    ASSERT_NE(other, nullptr);
    EXPECT_NE(other->spec.id, first->spec.id);
  }
  // v2's only backend excluded: nothing left.
  BackendState* c = p.pick_backend(*s, v2);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(p.pick_backend(*s, v2, c), nullptr);
}

}  // namespace
}  // namespace ferry::routing
