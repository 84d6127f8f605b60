#!/usr/bin/env bash
# Checks deploy/systemd/*.service: systemd-analyze verify reports nothing (a misspelt
# directive is only a warning there, so any output fails), and the hardening keeps each
# unit's exposure score (systemd-analyze security, 0-100: 14 shows as 1.4) at or under
# its threshold.
# usage: check_units.sh SOURCE_DIR WORK_DIR FERRY_BINARY
set -u
src="$1"; work="$2"; bin="$3"
[ -x "$bin" ] || bin=/bin/true
mkdir -p "$work"
rc=0
for unit in ferry-server.service:20 ferry-agent.service:40; do
  name="${unit%%:*}"; limit="${unit##*:}"
  # verify wants the ExecStart binary to exist; point it at the one just built.
  sed "s#/usr/local/bin/ferry#$bin#g" "$src/deploy/systemd/$name" > "$work/$name"
  out=$(systemd-analyze verify "$work/$name" 2>&1)
  if [ -n "$out" ]; then echo "FAIL: systemd-analyze verify $name:"; echo "$out"; rc=1; fi
  if ! systemd-analyze security --offline=yes --threshold="$limit" "$work/$name" > "$work/$name.security" 2>&1; then
    echo "FAIL: $name exposure above $limit:"; grep -E "Overall|✗" "$work/$name.security"; rc=1
  else
    grep Overall "$work/$name.security"
  fi
done
exit $rc
