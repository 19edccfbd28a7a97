#!/bin/bash
# services: (issue 15): a cross-mode aarch64 job whose steps talk to a
# MariaDB and a Mosquitto service, both from Debian packages installed once
# into a derived host-arch tree (cached in /var/cache/anvil next to the
# toolroot, like tools:), reachable on 127.0.0.1 of the job's own network
# namespace; every service process is gone when the job ends (the processes
# are found by a mark in their environment, seen while the job runs). Then a
# host job whose service never becomes ready fails with the service's log in
# the job log, and its process is gone too, as it is after a cancel. Needs root, binfmt
# qemu-aarch64, the cached aarch64 rootfs and toolroot, and the Debian
# mirror on a cold cache (the first run installs mariadb-server: minutes).
# Last, a Rust test against both (the issue's case).
. "$(dirname "$0")/lib.sh"

TRIPLE=aarch64-unknown-linux-gnu
MARK="anvil-svc-$$-$RANDOM"
job_done() { local s; s=$(job_state "$1"); [ "$s" != queued ] && [ "$s" != running ]; }
# marked: pids of processes whose environment holds ANVIL_TEST_MARK=$MARK.
marked() {
	grep -alsxz "ANVIL_TEST_MARK=$MARK" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true
}
some_marked() { [ -n "$(marked)" ]; }

start_server
start_agent a1 --targets "host,$TRIPLE"
make_repo svc
GATE=$T/agent-a1/cache/svc/$TRIPLE
mkdir -p "$GATE"
chmod 755 "$T/agent-a1" "$T/agent-a1/cache" "$T/agent-a1/cache/svc"
chown "$(id -u anvil-build):$(id -g anvil-build)" "$GATE"

cat >"$T/src/svc/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
tools: [mariadb-client, mosquitto-clients]
services:
  db:
    packages: [mariadb-server]
    env: {ANVIL_TEST_MARK: MARK}
    command: |
      mariadb-install-db --no-defaults --datadir=/tmp/db --auth-root-authentication-method=normal >/dev/null
      exec mariadbd --no-defaults --datadir=/tmp/db --socket=/tmp/db.sock --bind-address=127.0.0.1 --port=3306
    ready: mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping
    ready_timeout: 120s
  mqtt:
    packages: [mosquitto, mosquitto-clients]
    env: {ANVIL_TEST_MARK: MARK}
    command: exec mosquitto -p 1883
    ready: mosquitto_pub -h 127.0.0.1 -t anvil/ready -n
steps:
  - name: sql
    run: mariadb -h 127.0.0.1 -u root -N -e "create database t; create table t.x (v int); insert into t.x values (41); select concat('answer=', v + 1) from t.x"
  - name: mqtt
    run: |
      mosquitto_pub -h 127.0.0.1 -t anvil/t -r -m "mqtt-$ANVIL_JOB_ID"
      mosquitto_sub -h 127.0.0.1 -t anvil/t -C 1 -W 10
  - name: gate
    run: while [ ! -e /cache/build/go ]; do sleep 0.1; done
YML
sed -i "s/ANVIL_TEST_MARK: MARK/ANVIL_TEST_MARK: $MARK/" "$T/src/svc/.anvil.yml"
T0=$SECONDS
commit_push svc "services" >/dev/null
J1=$(first_job "$(latest_pipeline)")
wait_until 1800 log_has "$J1" "step gate:" || fail "job $J1 did not reach its gate: $(api "/api/v1/jobs/$J1/log" | tail -n 30)"
some_marked || fail "no service process carries the mark while job $J1 runs"
ok "$((SECONDS - T0)) s: job $J1 has its services up: pids $(marked | tr '\n' ' ')"
touch "$GATE/go"
wait_until 300 job_done "$J1" || fail "job $J1 did not finish"
job_is "$J1" success || fail "job $J1 is $(job_state "$J1"): $(api "/api/v1/jobs/$J1/log" | tail -n 40)"
log_has "$J1" "answer=42" || fail "the sql step did not get its answer from MariaDB"
log_has "$J1" "mqtt-$J1" || fail "the mqtt step did not get its message back from Mosquitto"
log_has "$J1" "service db ready after" || fail "no readiness line for db"
[ -z "$(marked)" ] || fail "service processes outlived job $J1: $(marked)"
ok "$((SECONDS - T0)) s: job $J1 talked to MariaDB and Mosquitto; no service process left"

# A service that never becomes ready fails its job with its log.
cat >"$T/src/svc/.anvil.yml" <<'YML'
services:
  never:
    env: {ANVIL_TEST_MARK: MARK}
    command: echo never-ready-says-hello; exec sleep 600
    ready: echo not yet; false
    ready_timeout: 3s
steps:
  - echo this-step-must-not-run
YML
sed -i "s/ANVIL_TEST_MARK: MARK/ANVIL_TEST_MARK: $MARK/" "$T/src/svc/.anvil.yml"
T0=$SECONDS
commit_push svc "never ready" >/dev/null
J2=$(first_job "$(latest_pipeline)")
wait_until 120 job_done "$J2" || fail "job $J2 did not finish"
job_is "$J2" failed || fail "job $J2 is $(job_state "$J2"), not failed"
M=$(api "/api/v1/jobs/$J2" | jq -r .message)
[[ $M == "service never was not ready within 3 s"* ]] || fail "job $J2's message: $M"
log_has "$J2" "never| never-ready-says-hello" || fail "the service's log is not in job $J2's log"
log_has "$J2" "never| not yet" || fail "the last ready attempt's output is not in job $J2's log"
if log_has "$J2" "this-step-must-not-run"; then fail "a step ran although its service was not ready"; fi
[ -z "$(marked)" ] || fail "the service outlived job $J2: $(marked)"
ok "$((SECONDS - T0)) s: job $J2 failed: $M; its log shows the service's"

# A canceled job stops its services too.
cat >"$T/src/svc/.anvil.yml" <<'YML'
services:
  idle:
    env: {ANVIL_TEST_MARK: MARK}
    command: exec sleep 600
    ready: "true"
steps:
  - echo steps-started; exec sleep 600
YML
sed -i "s/ANVIL_TEST_MARK: MARK/ANVIL_TEST_MARK: $MARK/" "$T/src/svc/.anvil.yml"
T0=$SECONDS
commit_push svc "cancel" >/dev/null
J4=$(first_job "$(latest_pipeline)")
wait_until 60 log_has "$J4" "steps-started" || fail "job $J4 did not start its step"
some_marked || fail "job $J4's service is not running"
anvil cancel "$J4" >/dev/null || fail "anvil cancel failed"
wait_until 60 job_is "$J4" canceled || fail "job $J4 is $(job_state "$J4") after cancel"
[ -z "$(marked)" ] || fail "the service outlived the canceled job $J4: $(marked)"
ok "$((SECONDS - T0)) s: canceled job $J4 stopped its service"

# The issue's own case: a Rust test (tests/fixtures/svcclient: MariaDB's
# client protocol and MQTT over std::net) against both services, built with
# Debian's cargo and run under QEMU through the recipe's runner.
cp -r "$S/tests/fixtures/svcclient/." "$T/src/svc/"
cat >"$T/src/svc/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
tools: [cargo, librust-openssl-dev]
services:
  db:
    packages: [mariadb-server]
    command: |
      mariadb-install-db --no-defaults --datadir=/tmp/db --auth-root-authentication-method=normal >/dev/null
      exec mariadbd --no-defaults --datadir=/tmp/db --socket=/tmp/db.sock --bind-address=127.0.0.1 --port=3306
    ready: mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping
    ready_timeout: 120s
  mqtt:
    packages: [mosquitto, mosquitto-clients]
    command: exec mosquitto -p 1883
    ready: mosquitto_pub -h 127.0.0.1 -t anvil/ready -n
steps:
  - cargo test --offline --target "$ANVIL_TARGET" -- --nocapture --test-threads 1
YML
T0=$SECONDS
commit_push svc "rust against services" >/dev/null
J3=$(first_job "$(latest_pipeline)")
wait_until 900 job_done "$J3" || fail "job $J3 did not finish"
job_is "$J3" success || fail "job $J3 is $(job_state "$J3"): $(api "/api/v1/jobs/$J3/log" | tail -n 40)"
log_has "$J3" "test result: ok. 2 passed" || fail "the Rust tests did not pass in job $J3"
log_has "$J3" "mariadb version" || fail "the Rust test did not reach MariaDB"
log_has "$J3" "mqtt delivered 'hello from rust'" || fail "the Rust test did not get its MQTT message"
ok "$((SECONDS - T0)) s: job $J3: a Rust test (aarch64, under QEMU) talked to MariaDB and Mosquitto"
