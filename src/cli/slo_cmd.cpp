// ferry slo APP --env E: an app's SLO in an environment (docs/slo.md): attainment, error
// budget left, burn rates and alerts, the release gate, and the deployments that spent it.
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/http_types.h"
#include "slo/answer_text.h"

namespace ferry::cli {

void register_slo_commands(CLI::App& app, GlobalOptions& g) {
  struct Args {
    std::string app, env;
    int hours = 6;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("slo", "an app's SLO: attainment, error budget, burn rates");
  cmd->add_option("app", a->app)->required();
  cmd->add_option("--env,-e", a->env, "environment")->required();
  cmd->add_option("--hours", a->hours, "hours of burn chart in --json (1-168)")
      ->check(CLI::Range(1, 168));
  cmd->callback([a, &g] {
    Json r = api_call(g, "GET",
                      "/api/v1/slo/" + url_encode(a->app) + "/" + url_encode(a->env) +
                          "?hours=" + std::to_string(a->hours));
    if (g.json) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    std::cout << slo::answer_text(r);
  });
}

}  // namespace ferry::cli
