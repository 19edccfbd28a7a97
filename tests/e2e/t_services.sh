#!/bin/bash
# services: (issue 15): a cross-mode aarch64 job whose Rust test (the
# issue's case: tests/fixtures/svcclient, built with Debian's cargo, run
# under QEMU) talks to a MariaDB and a Mosquitto service, both from Debian
# packages installed once into derived host-arch trees (cached in
# /var/cache/anvil next to the toolroot, like tools:), on 127.0.0.1 of the
# job's own network namespace; every service process is gone when the job
# ends (found by a mark in their environment, seen while the job runs).
# Then a host job whose service never becomes ready fails with the
# service's log in the job log, and a canceled job stops its service; no
# process survives either. Needs root, binfmt qemu-aarch64, the cached
# aarch64 rootfs and toolroot, the cached tools: [cargo,
# librust-openssl-dev] tree (t_rust), and the Debian mirror on a cold cache
# (the first run installs mariadb-server and mosquitto: about 75 s).
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

# The issue's own case: a Rust test (tests/fixtures/svcclient: MariaDB's
# client protocol and MQTT over std::net) against both services, built with
# Debian's cargo and run under QEMU through the recipe's runner; a last step
# waits at a gate so that the services are seen running.
cp -r "$S/tests/fixtures/svcclient/." "$T/src/svc/"
cat >"$T/src/svc/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
tools: [cargo, librust-openssl-dev]
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
  - name: rust
    run: cargo test --offline --target "$ANVIL_TARGET" -- --nocapture --test-threads 1
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
log_has "$J1" "test result: ok. 2 passed" || fail "the Rust tests did not pass in job $J1"
log_has "$J1" "mariadb version" || fail "the Rust test did not reach MariaDB"
log_has "$J1" "mqtt delivered 'hello from rust'" || fail "the Rust test did not get its MQTT message"
log_has "$J1" "service db ready after" || fail "no readiness line for db"
[ -z "$(marked)" ] || fail "service processes outlived job $J1: $(marked)"
ok "$((SECONDS - T0)) s: job $J1: a Rust test (aarch64, under QEMU) talked to MariaDB and Mosquitto; no service process left"

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
J3=$(first_job "$(latest_pipeline)")
wait_until 60 log_has "$J3" "steps-started" || fail "job $J3 did not start its step"
some_marked || fail "job $J3's service is not running"
anvil cancel "$J3" >/dev/null || fail "anvil cancel failed"
wait_until 60 job_is "$J3" canceled || fail "job $J3 is $(job_state "$J3") after cancel"
[ -z "$(marked)" ] || fail "the service outlived the canceled job $J3: $(marked)"
ok "$((SECONDS - T0)) s: canceled job $J3 stopped its service"

