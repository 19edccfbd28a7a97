#!/bin/bash
# A pushed commit must not own the agent host (issue 13): a real server, a
# real root agent, real pushes whose steps attack the sandbox. Every attack
# must fail or be contained, and the agent must then run the next job
# normally.
# - host target (bubblewrap over the host's /usr): uid 0, capabilities,
#   seccomp/no_new_privs, /etc/shadow, remount, writes to /etc /usr /,
#   the server's tokens, the agent's /proc and environ, killing the agent,
#   ptrace, a new user namespace, loopback services, the rootfs cache, a
#   daemon left behind; the host uid of what a step writes;
# - limits: a fork bomb (pids), a memory hog (memory), a disk filler
#   (workspace) and a /tmp filler: each fails its job with a message naming
#   the limit, and leaves nothing running;
# - cross mode (aarch64): remount and writes of /sysroot (the cached rootfs
#   every job builds against), /etc/shadow; emulated mode: the rootfs's
#   shadow, uid 0.
# The Docker runner's containment is checked in t_docker.sh.
. "$(dirname "$0")/lib.sh"

TRIPLE=aarch64-unknown-linux-gnu
BUILD_UID=$(id -u anvil-build) || fail "no anvil-build user (scripts/deps.sh makes it)"
start_server
start_agent esc --targets "host,$TRIPLE" --memory 256M --pids 64 --tmp-size 32M --disk 64M
APID=$AGENT_PID

make_repo esc
# pipeline FILE-CONTENT: pushes it as .anvil.yml, waits for the pipeline to
# end; sets P and J (its first job).
n=0
pipeline() {
	n=$((n + 1))
	printf '%s\n' "$1" >"$T/src/esc/.anvil.yml"
	echo "$n" >"$T/src/esc/round"
	commit_push esc "round $n" >/dev/null
	P=$(latest_pipeline)
	J=$(first_job "$P")
	wait_until 600 job_ended ||
		fail "round $n: job $J did not end: $(api "/api/v1/jobs/$J" | jq -c '{state, message}')"
}
job_ended() { case $(job_state "$J") in success | failed | error | canceled) return 0 ;; esac; return 1; }
job_message() { api "/api/v1/jobs/$J" | jq -r .message; }
job_log() { api "/api/v1/jobs/$J/log"; }
no_leftover() {
	! pgrep -f "^$1$" >/dev/null || fail "$2: a process '$1' outlived its job: $(pgrep -af "^$1$")"
}

# ---- host target: containment checks, one step that must print all clear
SECRET_FILE="$T/data/admin.token"
pipeline "steps:
  - name: attacks
    run: |
      esc() { echo \"ESCAPED: \$*\"; exit 1; }
      [ \"\$(id -u)\" != 0 ] || esc 'runs as uid 0'
      grep -q '^CapEff:[[:space:]]*0000000000000000\$' /proc/self/status || esc \"capabilities \$(grep CapEff /proc/self/status)\"
      grep -q '^NoNewPrivs:[[:space:]]*1\$' /proc/self/status || esc 'no_new_privs is off'
      grep -q '^Seccomp:[[:space:]]*2\$' /proc/self/status || esc 'no seccomp filter'
      cat /etc/shadow >/dev/null 2>&1 && esc 'read /etc/shadow'
      for k in /etc/ssh/ssh_host_*_key; do [ -e \"\$k\" ] || continue; cat \"\$k\" >/dev/null 2>&1 && esc \"read \$k\"; done
      mount -o remount,bind,rw /etc 2>/dev/null && esc 'remounted /etc'
      mount -t tmpfs none /tmp 2>/dev/null && esc 'mounted a tmpfs'
      echo x >/etc/probe 2>/dev/null && esc 'wrote /etc'
      echo x >/usr/probe 2>/dev/null && esc 'wrote /usr'
      echo x >/probe 2>/dev/null && esc 'wrote /'
      cat $SECRET_FILE 2>/dev/null && esc 'read the admin token'
      cat $T/data/agent.token 2>/dev/null && esc 'read the agent token'
      ls $T/agent-esc >/dev/null 2>&1 && esc 'saw the agent work dir'
      cat /proc/$APID/environ >/dev/null 2>&1 && esc 'read the agent environ'
      kill -9 $APID 2>/dev/null && esc 'killed the agent'
      perl -e 'exit(syscall(101, 16, $APID, 0, 0) == -1 ? 0 : 1)' || esc 'ptrace attach to the agent'
      perl -e 'exit(syscall(101, 16, 1, 0, 0) == -1 ? 0 : 1)' || esc 'ptrace attach to the sandbox init'
      unshare -U true 2>/dev/null && esc 'made a user namespace'
      unshare -r true 2>/dev/null && esc 'became root of a user namespace'
      bash -c 'exec 3<>/dev/tcp/127.0.0.1/$PORT' 2>/dev/null && esc 'reached the server on loopback'
      touch /var/cache/anvil/probe 2>/dev/null && esc 'wrote the rootfs cache'
      ls /var/cache/anvil/rootfs >/dev/null 2>&1 && esc 'saw the rootfs cache'
      touch /cache/build/owner-probe
      setsid sleep 6071 >/dev/null 2>&1 < /dev/null &
      echo all-contained"
[ "$(api "/api/v1/jobs/$J" | jq -r .state)" = success ] ||
	fail "host containment: $(job_message); log: $(job_log | grep -E 'ESCAPED|exited' | head -5)"
job_log | grep -q all-contained || fail "host containment: the step did not reach its end"
owner=$(stat -c %u "$T/agent-esc/cache/esc/host/owner-probe")
[ "$owner" = "$BUILD_UID" ] || fail "a file a step wrote is owned by uid $owner on the host, not anvil-build ($BUILD_UID)"
[ ! -e /etc/probe ] && [ ! -e /usr/probe ] && [ ! -e /probe ] || fail "a probe file reached the host"
kill -0 "$APID" || fail "the agent died"
no_leftover 'sleep 6071' "a setsid daemon"
ok "host target: not root (host uid $BUILD_UID), no capabilities, seccomp, no host secrets, no remount, no writes, no agent, no loopback, no user namespace, no daemon left"

# ---- fork bomb: contained by the job's pids limit
pipeline "steps:
  - name: bomb
    run: i=0; while [ \$i -lt 400 ]; do sleep 6072 & i=\$((i+1)); done; wait"
[ "$(api "/api/v1/jobs/$J" | jq -r .state)" = failed ] || fail "fork bomb: job $(api "/api/v1/jobs/$J" | jq -c '{state,message}')"
job_message | grep -q 'process limit 64 reached' || fail "fork bomb: message '$(job_message)' does not name the limit"
wait_until 10 sh -c "! pgrep -f '^sleep 6072\$'" || no_leftover 'sleep 6072' "fork bomb"
ok "fork bomb: job failed with '$(job_message)', nothing left running"

# ---- memory hog: contained by the job's memory limit
pipeline "steps:
  - name: hog
    run: perl -e '\$x = \"a\" x (900 * 1024 * 1024); print length(\$x)'"
[ "$(api "/api/v1/jobs/$J" | jq -r .state)" = failed ] || fail "memory hog: job $(api "/api/v1/jobs/$J" | jq -c '{state,message}')"
job_message | grep -q 'memory limit 256 MiB reached' || fail "memory hog: message '$(job_message)' does not name the limit"
ok "memory hog: job failed with '$(job_message)'"

# ---- disk filler (files in the workspace), then /tmp
pipeline "steps:
  - name: fill
    run: for i in 1 2 3 4 5 6 7 8; do dd if=/dev/zero of=fill-\$i bs=1M count=15 2>/dev/null; done; sleep 30"
[ "$(api "/api/v1/jobs/$J" | jq -r .state)" = failed ] || fail "disk filler: job $(api "/api/v1/jobs/$J" | jq -c '{state,message}')"
job_message | grep -q 'disk limit 64 MiB reached' || fail "disk filler: message '$(job_message)' does not name the limit"
ok "disk filler: job failed with '$(job_message)'"
pipeline "steps:
  - name: bigfile
    run: dd if=/dev/zero of=one bs=1M count=200"
[ "$(api "/api/v1/jobs/$J" | jq -r .state)" = failed ] || fail "one big file: job $(api "/api/v1/jobs/$J" | jq -c '{state,message}')"
pipeline "steps:
  - name: tmp
    run: dd if=/dev/zero of=/tmp/fill bs=1M count=100 || echo tmp-is-capped"
job_log | grep -q tmp-is-capped || fail "/tmp filler: 100 MB fitted in a 32 MiB /tmp"
ok "one file over the disk cap fails its job; /tmp holds at most its 32 MiB"

# ---- cross mode: the cached rootfs at /sysroot, the host's /etc
ROOTFS=$(ls -d /var/cache/anvil/rootfs/$TRIPLE-* 2>/dev/null | grep -v '\.' | head -1)
pipeline "targets: [$TRIPLE]
steps:
  - name: attacks
    run: |
      esc() { echo \"ESCAPED: \$*\"; exit 1; }
      [ \"\$(id -u)\" != 0 ] || esc 'runs as uid 0'
      mount -o remount,bind,rw /sysroot 2>/dev/null && esc 'remounted /sysroot'
      echo x >/sysroot/anvil-escape-probe 2>/dev/null && esc 'wrote /sysroot'
      echo x >/sysroot/usr/lib/anvil-escape-probe 2>/dev/null && esc 'wrote /sysroot/usr/lib'
      cat /etc/shadow >/dev/null 2>&1 && esc 'read /etc/shadow'
      cat /sysroot/etc/shadow >/dev/null 2>&1 && esc 'read the rootfs shadow'
      unshare -U true 2>/dev/null && esc 'made a user namespace'
      echo all-contained"
[ "$(api "/api/v1/jobs/$J" | jq -r .state)" = success ] ||
	fail "cross containment: $(job_message); log: $(job_log | grep -E 'ESCAPED|exited|runner' | head -5)"
[ -z "$ROOTFS" ] || [ ! -e "$ROOTFS/anvil-escape-probe" ] || fail "the cached rootfs was written"
ok "cross mode: /sysroot (the cached rootfs) and host secrets out of reach"

pipeline "targets: [$TRIPLE]
mode: emulated
steps:
  - name: attacks
    run: |
      [ \"\$(id -u)\" != 0 ] || { echo 'ESCAPED: uid 0'; exit 1; }
      cat /etc/shadow >/dev/null 2>&1 && { echo 'ESCAPED: shadow'; exit 1; }
      echo x >/etc/probe 2>/dev/null && { echo 'ESCAPED: wrote /etc'; exit 1; }
      echo all-contained-\$(uname -m)"
[ "$(api "/api/v1/jobs/$J" | jq -r .state)" = success ] ||
	fail "emulated containment: $(job_message); log: $(job_log | grep -E 'ESCAPED|exited' | head -5)"
job_log | grep -q all-contained-aarch64 || fail "emulated: the step did not run under aarch64"
ok "emulated mode: not root, the rootfs read-only"

# ---- the agent is unharmed: the next job runs normally
pipeline "steps:
  - run: echo next-job-fine > out.txt && cat out.txt
artifacts: [out.txt]"
[ "$(api "/api/v1/jobs/$J" | jq -r .state)" = success ] || fail "the job after the attacks: $(job_message)"
kill -0 "$APID" || fail "the agent is gone"
ok "the agent then finishes the next job normally"
