#!/bin/bash
# Issue 15: a job's workspace has its submodules checked out (recursively),
# each fetched through the server from a repository the server knows. A
# .gitmodules URL is only a name to look up: a path or file:// URL to
# another repository on the box, a "../" climb out of the forge, an unknown
# host or a transport each fail the job naming the submodule, and nothing of
# the repository they point at reaches the agent or the log.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
git() { command git -c protocol.file.allow=always "$@"; }

# A repository the server knows (registered, never built), with a nested one.
for r in lib deep; do
	git init -q -b main "$T/src/$r" 2>/dev/null || { mkdir -p "$T/src" "$T/git"; git init -q -b main "$T/src/$r"; }
	mkdir -p "$T/git"
	git init -q --bare -b main "$T/git/$r.git"
	git -C "$T/src/$r" remote add origin "$T/git/$r.git"
	anvil repo add "$r" "$T/git/$r.git" >/dev/null
done
echo deep-content-7 >"$T/src/deep/DEEP"
git -C "$T/src/deep" add -A && git -C "$T/src/deep" commit -q -m deep && git -C "$T/src/deep" push -q origin main
echo sub-content-42 >"$T/src/lib/VERSION"
git -C "$T/src/lib" submodule -q add ../deep.git inner
git -C "$T/src/lib" add -A && git -C "$T/src/lib" commit -q -m lib && git -C "$T/src/lib" push -q origin main

# A repository on the box the server does not know, holding a secret.
git init -q -b main "$T/secret"
echo topsecret-5150 >"$T/secret/SECRET"
git -C "$T/secret" add -A && git -C "$T/secret" commit -q -m s
git clone -q --bare "$T/secret" "$T/secret.git"
SECRET_BLOB=$(git -C "$T/secret" rev-parse HEAD:SECRET)
SECRET_HEAD=$(git -C "$T/secret" rev-parse HEAD)

make_repo app
git -C "$T/src/app" submodule -q add ../lib.git lib
cat >"$T/src/app/.anvil.yml" <<'YML'
steps:
  - cat lib/VERSION lib/inner/DEEP
  - echo "sub-head=$(git -C lib rev-parse HEAD)"
  - git status --porcelain | wc -l | sed 's/^/dirty=/'
YML
commit_push app "with a submodule" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 60 pipeline_is "$P" success || fail "pipeline $P is $(pipeline_state "$P"): $(api "/api/v1/jobs/$J/log")"
log_has "$J" sub-content-42 || fail "the step did not read the submodule's file"
log_has "$J" deep-content-7 || fail "the nested submodule is not checked out"
log_has "$J" "sub-head=$(git -C "$T/src/lib" rev-parse HEAD)" || fail "the submodule is not at its commit"
log_has "$J" "dirty=0" || fail "the parent's status is not clean: $(api "/api/v1/jobs/$J/log" | grep dirty=)"
ok "a submodule and a nested one are checked out from the server's copies"

# A pull request from a fork may move a submodule's commit but not point it
# at another repository the server knows: its .gitmodules is the fork's.
SECRET_HOOK="hook-$$"
anvil repo add app "$T/git/app.git" --forge github --secret "$SECRET_HOOK" >/dev/null
git init -q -b main "$T/src/other"
echo other-content >"$T/src/other/OTHER"
git -C "$T/src/other" add -A && git -C "$T/src/other" commit -q -m other
git init -q --bare -b main "$T/git/other.git"
git -C "$T/src/other" push -q "$T/git/other.git" main
anvil repo add other "$T/git/other.git" >/dev/null
git -C "$T/src/app" checkout -q -b pr
git -C "$T/src/app" config -f .gitmodules submodule.lib.url ../other.git
git -C "$T/src/app" update-index --cacheinfo "160000,$(git -C "$T/src/other" rev-parse HEAD),lib"
printf 'steps:\n  - cat lib/OTHER\n' >"$T/src/app/.anvil.yml"
git -C "$T/src/app" add .gitmodules .anvil.yml && git -C "$T/src/app" commit -q -m "lib is other now"
git -C "$T/src/app" push -q origin HEAD:refs/pull/9/head
PR_HEAD=$(git -C "$T/src/app" rev-parse HEAD)
git -C "$T/src/app" checkout -q -f main
pr() { # DELIVERY HEAD_REPO
	jq --arg sha "$PR_HEAD" --arg h "$2" '.number = 9 | .pull_request.head.sha = $sha | .pull_request.head.repo.full_name = $h' \
		"$S/tests/fixtures/webhooks/github_pull_request.json" >"$T/payload.json"
	local sig
	sig=$(openssl dgst -sha256 -hmac "$SECRET_HOOK" -r <"$T/payload.json" | cut -d' ' -f1)
	curl -s -X POST -H 'Content-Type: application/json' -H "X-GitHub-Event: pull_request" -H "X-GitHub-Delivery: $1" \
		-H "X-Hub-Signature-256: sha256=$sig" --data-binary "@$T/payload.json" "$URL/hooks/app" | jq -r .pipeline
}
P=$(pr f-1 mallory/demo)
J=$(first_job "$P")
wait_until 60 pipeline_is "$P" failed || fail "fork PR pipeline $P is $(pipeline_state "$P")"
msg=$(api "/api/v1/jobs/$J" | jq -r .message)
[[ $msg == *"submodule 'lib' (lib): a pull request from a fork may use only the submodule repositories of its base branch, and other is not one"* ]] ||
	fail "fork PR message: $msg"
P=$(pr f-2 octo-org/demo)
J=$(first_job "$P")
wait_until 60 pipeline_is "$P" success || fail "same-repository PR pipeline $P is $(pipeline_state "$P"): $(api "/api/v1/jobs/$J/log")"
log_has "$J" other-content || fail "the same-repository PR did not get the other repository"
ok "a fork's pull request may not point a submodule at another known repository; a branch's may"

# Hostile .gitmodules: each URL points at the secret repository (or
# elsewhere); the gitlink names the secret's commit.
hostile() {
	local url=$1 want=$2
	git -C "$T/src/app" config -f .gitmodules submodule.lib.url "$url"
	git -C "$T/src/app" update-index --cacheinfo "160000,$SECRET_HEAD,lib"
	git -C "$T/src/app" add .gitmodules
	git -C "$T/src/app" commit -q -m "hostile $url"
	git -C "$T/src/app" push -q origin HEAD:refs/heads/main >/dev/null
	P=$(latest_pipeline)
	J=$(first_job "$P")
	wait_until 60 pipeline_is "$P" failed || fail "$url: pipeline $P is $(pipeline_state "$P")"
	msg=$(api "/api/v1/jobs/$J" | jq -r .message)
	case "$msg" in *"submodule 'lib' (lib): "*"$want"*) ;; *) fail "$url: message is: $msg" ;; esac
	! log_has "$J" topsecret || fail "$url: the secret is in the log"
	ok "$url: $msg"
}
# A repository registered inside the server's data directory (where scratch
# uploads live) is not shared either.
git clone -q --bare "$T/secret" "$T/data/private.git"
anvil repo add private "$T/data/private.git" >/dev/null
hostile "file://$T/secret.git" "is not a repository this server knows"
hostile "$T/data/private.git" "is not a repository this server knows"
hostile "$T/secret.git" "is not a repository this server knows"
hostile "../../secret.git" "is not a repository this server knows"
hostile "../../../../../../../../../../../secret.git" "not a repository URL anvil accepts"
hostile "https://evil.invalid/x/lib.git" "is not a repository this server knows"
hostile "ext::sh -c cat% /etc/shadow" "not a repository URL anvil accepts"
# A known repository bound to an agent pool the parent's jobs are not.
anvil repo add other "$T/git/other.git" --agents site=vault >/dev/null
hostile "../other.git" "repository other is bound to agents (site=vault) this repository's jobs are not"

# Nothing of the secret repository is in any mirror, the server's or the
# agent's, nor in a workspace.
for m in "$T"/data/mirrors/*.git "$T"/agent-a1/mirrors/*.git; do
	[ -d "$m" ] || continue
	! git --git-dir="$m" cat-file -e "$SECRET_BLOB" 2>/dev/null || fail "the secret's blob is in $m"
done
! grep -r topsecret-5150 "$T/agent-a1" >/dev/null 2>&1 || fail "the secret is in the agent's work dir"

# `submodules: false` skips them, whatever .gitmodules says.
printf 'submodules: false\nsteps:\n  - test ! -e lib/VERSION && echo no-submodule\n' >"$T/src/app/.anvil.yml"
commit_push app "no submodules" >/dev/null
P=$(latest_pipeline)
J=$(first_job "$P")
wait_until 60 pipeline_is "$P" success || fail "submodules: false: pipeline is $(pipeline_state "$P"): $(api "/api/v1/jobs/$J/log")"
log_has "$J" no-submodule || fail "submodules: false still checked out"
ok "submodules: false skips them"

# The agent route: a job's agent reads the submodules its spec lists, and
# no other repository the server knows.
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
MT=$(curl -s -X POST -H "Authorization: Bearer $(cat "$T/data/agent.token")" "$URL/api/v1/agents/register" \
	-d '{"name":"mallory","labels":["target=host"]}' | jq -r .token)
git -C "$T/src/app" config -f .gitmodules submodule.lib.url ../lib.git
git -C "$T/src/app" update-index --cacheinfo "160000,$(git -C "$T/src/lib" rev-parse HEAD),lib"
printf 'steps:\n  - "true"\n' >"$T/src/app/.anvil.yml"
commit_push app "lib again" >/dev/null
claim=$(curl -s -X POST -H "Authorization: Bearer $MT" "$URL/api/v1/agents/claim" -d '{"wait_ms":5000}')
J=$(jq -r .job.id <<<"$claim")
[ "$(jq -r '.job.submodules | map(.path + " " + .repo + " " + .fetch) | join(",")' <<<"$claim")" = \
	"lib lib /api/v1/agents/jobs/$J/sub/lib,lib/inner deep /api/v1/agents/jobs/$J/sub/deep" ] ||
	fail "claim's submodules: $(jq -c .job.submodules <<<"$claim")"
code() { curl -s --path-as-is -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $MT" "$URL/api/v1/agents/jobs/$J/sub/$1"; }
[ "$(code 'lib/info/refs?service=git-upload-pack')" = 200 ] || fail "the listed submodule is not served"
for r in other app secret ../lib; do
	c=$(code "$r/info/refs?service=git-upload-pack")
	[[ $c == 40[345] ]] || fail "sub/$r answered $c"
done
[ "$(code 'lib/HEAD')" = 404 ] || fail "sub/lib/HEAD is served"
ok "an agent reads only the submodules its job's spec lists"
