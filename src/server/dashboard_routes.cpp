// The web dashboard's routes (filled in by the dashboard work).
#include "server/control_plane.h"

namespace ferry {

void add_dashboard_routes(HttpServer&, ControlPlane&) {}

}  // namespace ferry
