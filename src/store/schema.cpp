#include "store/schema.h"

#include "core/deployment_state.h"

namespace ferry::schema {

std::string final_states_sql() {
  std::string out;
  for (auto s : final_deployment_states()) {
    if (!out.empty()) out += ", ";
    out += "'";
    out += to_string(s);
    out += "'";
  }
  return out;
}

std::string one_active_index_sql() {
  return "CREATE UNIQUE INDEX " + std::string(kOneActiveIndex) +
         " ON deployments (app, env) WHERE state NOT IN (" + final_states_sql() + ")";
}

Status active_deployment_exists(std::string_view app, std::string_view env) {
  return failed_precondition("another deployment of " + std::string(app) + " to " +
                             std::string(env) + " is in progress; wait for it or abort it");
}

}  // namespace ferry::schema
