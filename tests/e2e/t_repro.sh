#!/bin/bash
# Hermetic cross builds (issue 18): two agents whose toolroots differ (one
# from recipes without host_packages, one from the shipped recipes with
# cmake, autotools and texinfo) build the same commit of a C project for
# aarch64 to byte-identical artifacts: what a build sees comes from the
# recipe's toolroot and the target rootfs, not from the agent host.
. "$(dirname "$0")/lib.sh"

T1=aarch64-unknown-linux-gnu
mkdir -p "$T/recipes-lean"
sed '/^host_packages:/d' "$S/recipes/$T1.yml" >"$T/recipes-lean/$T1.yml"
cmp -s "$T/recipes-lean/$T1.yml" "$S/recipes/$T1.yml" && fail "the lean recipe is the shipped one"

start_server
make_repo cproj
cp -r "$S/tests/fixtures/cproj/." "$T/src/cproj/"
cat >"$T/src/cproj/.anvil.yml" <<YML
targets: [$T1]
steps:
  - run: make CC="\$CC" hello test_arch && ./test_arch && command -v cmake || echo "no cmake here"
artifacts: [hello, test_arch]
YML
job_done() { local s; s=$(job_state "$1"); [ "$s" != queued ] && [ "$s" != running ]; }

# build_on AGENT RECIPES: runs commit $C on that agent alone; sets J.
build_on() {
	start_agent "$1" --targets "$T1" --recipes "$2"
	local pid=$AGENT_PID
	wait_until 60 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents[] | select(.name==\"$1\") | .labels | index(\"target=$T1\")'" ||
		fail "agent $1 does not advertise $T1"
	if [ -z "${C:-}" ]; then
		commit_push cproj "reproducible" >/dev/null
		C=$(git -C "$T/src/cproj" rev-parse HEAD)
	else
		anvil trigger cproj --url "$T/git/cproj.git" --ref refs/heads/main --commit "$C" --event manual >/dev/null
	fi
	P=$(latest_pipeline)
	J=$(first_job "$P")
	wait_until 1500 job_done "$J" || fail "job on $1 did not finish"
	job_is "$J" success || { api "/api/v1/jobs/$J/log" | tail -n 30; fail "job on $1 is $(job_state "$J")"; }
	[ "$(api "/api/v1/pipelines/$P" | jq -r .commit)" = "$C" ] || fail "pipeline on $1 built another commit"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}

build_on lean "$T/recipes-lean"
J1=$J
build_on full "$S/recipes"
J2=$J
log_has "$J1" "no cmake here" || fail "the lean toolroot has cmake"
api "/api/v1/jobs/$J2/log" | grep "/usr/bin/cmake" >/dev/null || fail "the full toolroot has no cmake"
R1=$(api "/api/v1/jobs/$J1/log" | grep -m 1 -o 'toolroot [^ ,]*')
R2=$(api "/api/v1/jobs/$J2/log" | grep -m 1 -o 'toolroot [^ ,]*')
[ -n "$R1" ] && [ -n "$R2" ] && [ "$R1" != "$R2" ] || fail "the two agents did not use two toolroots ($R1 / $R2)"
for a in hello test_arch; do
	anvil artifact get "$J1" "$a" -o "$T/$a.1" >/dev/null
	anvil artifact get "$J2" "$a" -o "$T/$a.2" >/dev/null
	s1=$(sha256sum <"$T/$a.1" | cut -d' ' -f1)
	s2=$(sha256sum <"$T/$a.2" | cut -d' ' -f1)
	[ "$s1" = "$s2" ] || fail "$a differs between the agents: $s1 vs $s2"
	ok "$a: sha256 $s1 from both agents"
done
ok "two toolroots ($R1, $R2), one commit, byte-identical artifacts"
