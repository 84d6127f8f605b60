// run.image, run.pull and run.resources: ferry validate accepts exactly what the docker
// runtime (src/agent/docker_runtime.h) carries out and refuses the rest where it is written.
#include <gtest/gtest.h>

#include "config/parsers.h"
#include "config_test_util.h"
#include "core/agent_api.h"

namespace ferry::testing {
namespace {

// kMinimal with its run section replaced by `run` (indented 6 spaces, from line 10 on).
std::string with_run(const std::string& run) {
  std::string y = kMinimal;
  const std::string cmd = "      command: [\"./server\", \"--port\", \"${PORT}\"]\n";
  y.replace(y.find(cmd), cmd.size(), run);
  return y;
}

TEST(ContainerConfig, ImageWithPullAndResourcesIsAccepted) {
  auto r = check_config(with_run("      image: \"registry.local:5000/acme/web:1.2\"\n"
                                 "      command: [\"/web\", \"--port\", \"${PORT}\"]\n"
                                 "      pull: never\n"
                                 "      resources: {cpus: 0.5, memory: 256MB}\n"),
                        "ferry.yaml");
  ASSERT_TRUE(r.errors.empty()) << dump(r.errors);
  const RunSpec& run = r.config->apps.at(0).run;
  EXPECT_EQ(run.image, "registry.local:5000/acme/web:1.2");
  EXPECT_EQ(run.pull, PullPolicy::kNever);
  EXPECT_DOUBLE_EQ(run.cpus, 0.5);
  EXPECT_EQ(run.memory_bytes, 256LL << 20);
  // What reaches the agent keeps them (the release snapshot and the desired state).
  Json j = run;
  const RunSpec back = j.get<RunSpec>();
  EXPECT_EQ(back.pull, PullPolicy::kNever);
  EXPECT_DOUBLE_EQ(back.cpus, 0.5);
  EXPECT_EQ(back.memory_bytes, 256LL << 20);
}

TEST(ContainerConfig, ImageAloneDefaultsToPullMissingAndNoLimits) {
  auto r = check_config(with_run("      image: web\n"), "ferry.yaml");
  ASSERT_TRUE(r.errors.empty()) << dump(r.errors);
  EXPECT_EQ(r.config->apps.at(0).run.pull, PullPolicy::kMissing);
  EXPECT_EQ(r.config->apps.at(0).run.memory_bytes, 0);
}

TEST(ContainerConfig, PullAndResourcesWithoutImageAreRefused) {
  // The process runtime neither pulls nor limits: accepting these would promise that.
  EXPECT_CONFIG_ERROR(with_run("      command: [./server]\n      pull: always\n"),
                      "apps.web.run.pull", "containers only", 11);
  EXPECT_CONFIG_ERROR(with_run("      command: [./server]\n      resources: {cpus: 1}\n"),
                      "apps.web.run.resources", "containers (run.image) only", 11);
}

TEST(ContainerConfig, BadValuesNameFieldAndValue) {
  EXPECT_CONFIG_ERROR(with_run("      image: web\n      pull: sometimes\n"), "apps.web.run.pull",
                      "always", 11);
  EXPECT_CONFIG_ERROR(with_run("      image: web\n      resources: {cpus: 0}\n"),
                      "apps.web.run.resources.cpus", "", 11);
  EXPECT_CONFIG_ERROR(with_run("      image: web\n      resources: {memory: 1MB}\n"),
                      "apps.web.run.resources.memory", "\"1MB\" is not a size from 6MB", 11);
  EXPECT_CONFIG_ERROR(with_run("      image: web\n      resources: {memory: lots}\n"),
                      "apps.web.run.resources.memory", "\"lots\"", 11);
  EXPECT_CONFIG_ERROR(with_run("      image: web\n      cwd: srv\n"), "apps.web.run.cwd",
                      "absolute path inside the image", 11);
  EXPECT_CONFIG_ERROR(with_run("      image: web\n      resources: {disk: 1GB}\n"),
                      "apps.web.run.resources.disk", "", 11);
}

TEST(ContainerConfig, HostileImageReferencesAreRefused) {
  // The reference goes into dockerd's URLs and JSON: only the reference grammar passes.
  for (const char* bad :
       {"\"Web:1\"", "\"web:1/../../containers\"", "\"web?x=1\"", "\"web name\"", "\"-web\"",
        "\"web@sha256:abc\"", "\"web:\"", "\"a//b\"", "\"web#1\"", "\"web%2F\""}) {
    auto errs = errors_of(with_run(std::string("      image: ") + bad + "\n"));
    EXPECT_NE(find_error(errs, "apps.web.run.image", "is not an image reference"), nullptr)
        << bad << "\n"
        << dump(errs);
  }
  EXPECT_NE(find_error(errors_of(with_run("      image: \"" + std::string(300, 'a') + "\"\n")),
                       "apps.web.run.image", ""),
            nullptr);
}

TEST(ContainerConfig, ImageReferenceGrammar) {
  using config::valid_image_ref;
  EXPECT_TRUE(valid_image_ref("web"));
  EXPECT_TRUE(valid_image_ref("acme/web_app-2:v1.0"));
  EXPECT_TRUE(valid_image_ref("localhost:5000/web"));
  EXPECT_TRUE(valid_image_ref("Registry.Example.com/a/b:Tag_1"));
  EXPECT_TRUE(valid_image_ref("web@sha256:" + std::string(64, 'a')));
  EXPECT_FALSE(valid_image_ref("web@sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(valid_image_ref("web/"));
  EXPECT_FALSE(valid_image_ref("web_"));
  EXPECT_FALSE(valid_image_ref(""));
}

}  // namespace
}  // namespace ferry::testing
