# Installs the browser test's one npm package (playwright-core, pinned in
# package-lock.json) into DIR/node_modules, outside the source tree. Does nothing when
# the pinned version is already there, so only the first run needs the registry.
#   cmake -DSRC=tests/web -DDIR=build/web-test -DNPM=/usr/bin/npm -P npm_install.cmake
file(MAKE_DIRECTORY ${DIR})
file(READ ${SRC}/package-lock.json lock)
string(JSON want GET "${lock}" packages node_modules/playwright-core version)
set(have "")
if(EXISTS ${DIR}/node_modules/playwright-core/package.json)
  file(READ ${DIR}/node_modules/playwright-core/package.json pkg)
  string(JSON have GET "${pkg}" version)
endif()
if(have STREQUAL want)
  message(STATUS "playwright-core ${have} already in ${DIR}")
  return()
endif()
configure_file(${SRC}/package.json ${DIR}/package.json COPYONLY)
configure_file(${SRC}/package-lock.json ${DIR}/package-lock.json COPYONLY)
execute_process(
  COMMAND ${NPM} ci --no-audit --no-fund --ignore-scripts --loglevel=error
  WORKING_DIRECTORY ${DIR}
  RESULT_VARIABLE rc
  TIMEOUT 240)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "npm ci in ${DIR} failed (${rc}): the browser test needs playwright-core ${want}")
endif()
message(STATUS "installed playwright-core ${want} in ${DIR}")
