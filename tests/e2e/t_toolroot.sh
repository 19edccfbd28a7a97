#!/bin/bash
# Hermetic cross builds (issue 18): a cross-mode step's / is the recipe's
# toolroot, not the agent host's /usr. The agent here serves aarch64 and
# armv7 from recipes whose toolroot holds only the cross compiler, make and
# pkg-config (no host_packages): an autotools project committed with its
# generated files, whose sources are newer than them (as a checkout may
# leave them), fails for want of aclocal without `tools:`, and builds and
# passes `make check` for both targets with
# `tools: [autoconf, automake, libtool, texinfo]`, configured with
# --host=$ANVIL_GNU_TRIPLE. The generated files themselves come from a first
# job with those tools (autoreconf), committed as a project would.
. "$(dirname "$0")/lib.sh"

TARGETS=aarch64-unknown-linux-gnu,armv7-unknown-linux-gnueabihf
mkdir -p "$T/recipes"
for t in ${TARGETS//,/ }; do
	sed '/^host_packages:/d' "$S/recipes/$t.yml" >"$T/recipes/$t.yml"
done
start_server
start_agent a1 --targets "$TARGETS" --recipes "$T/recipes"
wait_until 60 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents[0].labels | index(\"target=armv7-unknown-linux-gnueabihf\")'" ||
	fail "agent does not advertise both targets"

# job_done J: finished, whatever the state.
job_done() { local s; s=$(job_state "$1"); [ "$s" != queued ] && [ "$s" != running ]; }
job_of() { api "/api/v1/pipelines/$1" | jq -r ".jobs[] | select(.target==\"$2\") | .id"; }

make_repo greet
cp -r "$S/tests/fixtures/greet/." "$T/src/greet/"
cat >"$T/src/greet/.anvil.yml" <<'YML'
targets: [aarch64-unknown-linux-gnu]
tools: [autoconf, automake, libtool, texinfo]
steps:
  - run: autoreconf -fi && tar czf /tmp/gen.tgz --exclude=autom4te.cache --exclude=.git . && mv /tmp/gen.tgz .
artifacts: [gen.tgz]
YML
commit_push greet "sources" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 1500 job_done "$J" || fail "autoreconf job did not finish"
job_is "$J" success || { api "/api/v1/jobs/$J/log" | tail -n 30; fail "autoreconf job is $(job_state "$J")"; }
log_has "$J" "tools: 4 package(s)" || fail "tools not announced"
log_has "$J" ", toolroot /" || fail "the runner is not on a toolroot"
anvil artifact get "$J" gen.tgz -o "$T/gen.tgz" >/dev/null
tar xzf "$T/gen.tgz" --no-same-owner --no-overwrite-dir -C "$T/src/greet"
for f in configure Makefile.in aclocal.m4 missing texinfo.tex config.sub; do
	[ -f "$T/src/greet/$f" ] || fail "autoreconf made no $f"
done
ok "autoreconf ran in a toolroot derived with tools: [autoconf, automake, libtool, texinfo]"

# The build: sources touched after the generated files, so make reruns
# aclocal, automake, autoconf and makeinfo.
build_yml() {
	cat <<YML
targets: [aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf]
$1
steps:
  - name: configure
    run: touch configure.ac Makefile.am greet.texi && ./configure --host=\$ANVIL_GNU_TRIPLE
  - name: build
    run: make
  - name: check
    run: make check && cat check.sh.log
artifacts: [greet, greet.info]
YML
}
build_yml "" >"$T/src/greet/.anvil.yml"
commit_push greet "generated files, no tools" >/dev/null
P=$(latest_pipeline)
for t in ${TARGETS//,/ }; do
	J=$(job_of "$P" "$t")
	wait_until 900 job_done "$J" || fail "$t job without tools did not finish"
	job_is "$J" failed || { api "/api/v1/jobs/$J/log" | tail -n 30; fail "$t without tools: $(job_state "$J"), want failed"; }
	api "/api/v1/jobs/$J/log" | grep -E "aclocal-[0-9.]+: (command )?not found" >/dev/null ||
		{ api "/api/v1/jobs/$J/log" | tail -n 20; fail "$t without tools did not fail for want of aclocal"; }
	log_has "$J" "step build exited" || fail "$t without tools did not get to make"
done
ok "without tools: the toolroot has no autotools: 'aclocal-1.16: command not found' on both targets"

build_yml "tools: [autoconf, automake, libtool, texinfo]" >"$T/src/greet/.anvil.yml"
commit_push greet "with tools" >/dev/null
P=$(latest_pipeline)
elf_machine() { od -An -t u2 -j 18 -N 2 "$1" | tr -d ' '; }
for pair in 'aarch64-unknown-linux-gnu:183:aarch64-[a-z]*-?linux-gnu:aarch64' 'armv7-unknown-linux-gnueabihf:40:arm[a-z0-9]*-[a-z]*-?linux-gnueabihf:armv7l'; do
	IFS=: read -r t machine triple uname <<<"$pair"
	J=$(job_of "$P" "$t")
	wait_until 1500 job_done "$J" || fail "$t job with tools did not finish"
	job_is "$J" success || { api "/api/v1/jobs/$J/log" | tail -n 40; fail "$t with tools: $(job_state "$J")"; }
	# config.sub's canonical form of the recipe's gnu_triple
	api "/api/v1/jobs/$J/log" | grep -E "^checking host system type\.\.\. $triple\$" >/dev/null ||
		{ api "/api/v1/jobs/$J/log" | grep "system type" >&2; fail "$t: configure did not get --host=\$ANVIL_GNU_TRIPLE"; }
	api "/api/v1/jobs/$J/log" | grep -E "missing'? aclocal" >/dev/null || fail "$t: make did not regenerate"
	log_has "$J" "PASS: check.sh" || fail "$t: make check did not pass"
	log_has "$J" "hello from $uname" || fail "$t: greet did not run as $uname"
	anvil artifact get "$J" greet -o "$T/greet-$t" >/dev/null || fail "$t: no greet"
	[ "$(elf_machine "$T/greet-$t")" = "$machine" ] || fail "$t: greet e_machine $(elf_machine "$T/greet-$t") != $machine"
	anvil artifact get "$J" greet.info -o "$T/greet-$t.info" >/dev/null || fail "$t: no greet.info (makeinfo)"
	ok "$t: regenerated, built, make check passed (ran as $uname), e_machine $machine, greet.info made"
done
