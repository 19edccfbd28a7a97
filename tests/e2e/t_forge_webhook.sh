#!/bin/bash
# Forge webhooks at /hooks/NAME: GitHub, Gitea, GitLab and generic
# deliveries (real-format samples from tests/fixtures/webhooks/, pointed at
# a real local repository) start pipelines; bad signatures are refused
# without the body reaching the log; pings, other events, deletions,
# [skip ci] and `when:` rules start nothing; a redelivery is a no-op.
. "$(dirname "$0")/lib.sh"

FX="$S/tests/fixtures/webhooks"
SECRET="hook-secret-$$-xyz"

# post NAME BODYFILE HEADER... : prints "<status> <body>"
post() {
	local name=$1 file=$2
	shift 2
	local args=()
	for h in "$@"; do args+=(-H "$h"); done
	curl -s -o "$T/answer" -w '%{http_code}' -X POST -H 'Content-Type: application/json' "${args[@]}" \
		--data-binary "@$file" "$URL/hooks/$name"
	echo " $(cat "$T/answer")"
}

hmac() { # SECRET FILE → hex
	openssl dgst -sha256 -hmac "$1" -r <"$2" | cut -d' ' -f1
}

# payload FIXTURE REF SHA [MESSAGE [PATH]] → $T/payload.json, pointed at our repository
payload() {
	local msg=${4:-} path=${5:-}
	jq --arg ref "$2" --arg sha "$3" --arg msg "$msg" --arg path "$path" '
		.ref = $ref | .after = $sha
		| if .checkout_sha then .checkout_sha = $sha else . end
		| if (.head_commit | type) == "object" then .head_commit.id = $sha else . end
		| if (.commits | length) > 0 then .commits[-1].id = $sha else . end
		| if $msg != "" then (if (.head_commit | type) == "object" then .head_commit.message = $msg else . end)
		    | (if (.commits | length) > 0 then .commits[-1].message = $msg else . end) else . end
		| if $path != "" then .commits[-1].added = [] | .commits[-1].removed = []
		    | .commits[-1].modified = [$path]
		    | (if (.head_commit | type) == "object" then .head_commit.modified = [$path] else . end) else . end
	' "$FX/$1" >"$T/payload.json"
}

gh() { # EVENT DELIVERY [SECRET]
	post demo "$T/payload.json" "X-GitHub-Event: $1" "X-GitHub-Delivery: $2" \
		"X-Hub-Signature-256: sha256=$(hmac "${3:-$SECRET}" "$T/payload.json")"
}

npipes() { db 'SELECT count(*) FROM pipelines'; }

start_server
start_agent a1
make_repo demo
rm -f "$T/git/demo.git/hooks/post-receive" # deliveries come from our "forge" only
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - run: echo "built $ANVIL_REF"
YML
commit_push demo "first" >/dev/null
SHA=$(git -C "$T/src/demo" rev-parse HEAD)

out=$(anvil repo add demo "$T/git/demo.git" --forge github --secret "$SECRET")
grep -qF "$URL/hooks/demo" <<<"$out" || fail "repo add does not print the webhook URL: $out"
anvil repos | grep -E '^1 +demo +github' >/dev/null || fail "anvil repos lacks the forge: $(anvil repos)"
for path in /api/v1/repos /api/v1/repos/demo; do
	admin_api GET "$path" | grep -qF "$SECRET" && fail "$path shows the webhook secret"
done
anvil repos | grep -qF "$SECRET" && fail "anvil repos shows the secret"
ok "repo add prints the webhook URL; no answer shows the secret"

# Ping: 200, nothing started.
cp "$FX/github_ping.json" "$T/payload.json"
r=$(gh ping ping-1)
[[ $r == "200 "* ]] || fail "ping answered $r"
[ "$(npipes)" = 0 ] || fail "ping started a pipeline"
ok "ping answers 200"

# Signatures: missing or wrong → 401, and nothing of the body is logged.
MARK="body-marker-$$-do-not-log"
payload github_push.json refs/heads/main "$SHA" "$MARK"
r=$(post demo "$T/payload.json" "X-GitHub-Event: push" "X-GitHub-Delivery: bad-1")
[[ $r == "401 "* ]] || fail "unsigned push answered $r"
r=$(gh push bad-2 wrong-secret)
[[ $r == "401 "* ]] || fail "wrongly signed push answered $r"
r=$(post demo "$T/payload.json" "X-GitHub-Event: push" "X-Hub-Signature-256: sha256=")
[[ $r == "401 "* ]] || fail "empty signature answered $r"
grep -qF "$MARK" "$T/server.log" && fail "a refused body reached the server log"
[ "$(npipes)" = 0 ] || fail "a refused delivery started a pipeline"
r=$(post nosuch "$T/payload.json" "X-GitHub-Event: push")
[[ $r == "404 "* ]] || fail "unknown repository answered $r"
ok "missing or wrong signatures answer 401 and log nothing of the body"

# A push starts a pipeline; the redelivery answers the same pipeline.
payload github_push.json refs/heads/main "$SHA"
r=$(gh push delivery-1)
[[ $r == "201 "* ]] || fail "push answered $r"
P=$(jq -r .pipeline "$T/answer")
wait_until 60 pipeline_is "$P" success || fail "pipeline $P is $(pipeline_state "$P")"
[ "$(api "/api/v1/pipelines/$P" | jq -r '.event + " " + .ref + " " + .commit')" = "push refs/heads/main $SHA" ] ||
	fail "pipeline fields: $(api "/api/v1/pipelines/$P")"
r=$(gh push delivery-1)
[[ $r == "200 "* ]] || fail "redelivery answered $r"
[ "$(jq -r .pipeline "$T/answer")" = "$P" ] || fail "redelivery names another pipeline"
[ "$(npipes)" = 1 ] || fail "redelivery started a pipeline"
ok "push starts pipeline $P; a redelivery answers 200 with it"

r=$(gh issues other-1)
[[ $r == "202 "*'"ignored"'* ]] || fail "issues event answered $r"
cp "$FX/github_delete.json" "$T/payload.json"
r=$(gh push delete-1)
[[ $r == "202 "*deleted* ]] || fail "branch deletion answered $r"
payload github_push.json refs/heads/main "$SHA" "wip [skip ci]"
r=$(gh push skip-1)
[[ $r == "202 "*skip* ]] || fail "[skip ci] answered $r"
payload github_push.json refs/heads/main "$SHA" "wip [ci skip] too"
r=$(gh push skip-2)
[[ $r == "202 "* ]] || fail "[ci skip] answered $r"
[ "$(npipes)" = 1 ] || fail "an ignored delivery started a pipeline"
ok "other events, deletions and [skip ci] answer 202 and start nothing"

# Tags: a push of refs/tags/... is event tag.
git -C "$T/src/demo" tag -a v1.0.0 -m "release" && git -C "$T/src/demo" push -q origin v1.0.0
payload github_tag.json refs/tags/v1.0.0 "$SHA"
jq --arg t "$(git -C "$T/src/demo" rev-parse v1.0.0)" '.after = $t' "$T/payload.json" >"$T/p2" && mv "$T/p2" "$T/payload.json"
r=$(gh push tag-1)
[[ $r == "201 "* ]] || fail "tag push answered $r"
PT=$(jq -r .pipeline "$T/answer")
[ "$(api "/api/v1/pipelines/$PT" | jq -r '.event + " " + .commit')" = "tag $SHA" ] ||
	fail "tag pipeline: $(api "/api/v1/pipelines/$PT")"
ok "an annotated tag push is event tag on the tagged commit"

# when: rules, with the changed paths of the payload.
cat >"$T/src/demo/.anvil.yml" <<'YML'
when:
  branch: [main, "release/*"]
  path: ["src/**", Cargo.toml]
steps:
  - run: echo "src changed"
YML
commit_push demo "only src" >/dev/null
SHA2=$(git -C "$T/src/demo" rev-parse HEAD)
n=$(npipes)
payload github_push.json refs/heads/main "$SHA2" "docs" docs/usage.md
r=$(gh push when-1)
[[ $r == "202 "*"when rules do not match"* ]] || fail "non-matching paths answered $r"
payload github_push.json refs/heads/main "$SHA2" "code" src/net/tcp.c
r=$(gh push when-2)
[[ $r == "201 "* ]] || fail "matching paths answered $r"
git -C "$T/src/demo" push -q origin HEAD:refs/heads/feature 2>&1
payload github_push.json refs/heads/feature "$SHA2" "code" src/net/tcp.c
r=$(gh push when-3)
[[ $r == "202 "*"when rules do not match"* ]] || fail "branch outside the rules answered $r"
[ "$(npipes)" = $((n + 1)) ] || fail "when rules: expected one more pipeline"
ok "when: rules on branch and changed paths"

# Gitea: hex HMAC in X-Gitea-Signature.
anvil repo add demo-gitea "$T/git/demo.git" --forge gitea --secret "$SECRET" >/dev/null
payload gitea_push.json refs/heads/main "$SHA2" "gitea push" src/x.c
r=$(post demo-gitea "$T/payload.json" "X-Gitea-Event: push" "X-Gitea-Delivery: gt-1" \
	"X-Gitea-Signature: $(hmac "$SECRET" "$T/payload.json")")
[[ $r == "201 "* ]] || fail "gitea push answered $r"
r=$(post demo-gitea "$T/payload.json" "X-Gitea-Event: push" "X-Gitea-Delivery: gt-2" \
	"X-Gitea-Signature: $(hmac nope "$T/payload.json")")
[[ $r == "401 "* ]] || fail "gitea wrong signature answered $r"
ok "gitea push (X-Gitea-Signature)"

# GitLab: the secret itself in X-Gitlab-Token; Tag Push Hook.
anvil repo add demo-gitlab "$T/git/demo.git" --forge gitlab --secret "$SECRET" >/dev/null
payload gitlab_push.json refs/heads/main "$SHA2" "gitlab push" Cargo.toml
r=$(post demo-gitlab "$T/payload.json" "X-Gitlab-Event: Push Hook" "X-Gitlab-Event-UUID: gl-1" \
	"X-Gitlab-Token: $SECRET")
[[ $r == "201 "* ]] || fail "gitlab push answered $r"
r=$(post demo-gitlab "$T/payload.json" "X-Gitlab-Event: Push Hook" "X-Gitlab-Event-UUID: gl-2" \
	"X-Gitlab-Token: ${SECRET}x")
[[ $r == "401 "* ]] || fail "gitlab wrong token answered $r"
payload gitlab_tag.json refs/tags/v1.0.0 "$SHA"
r=$(post demo-gitlab "$T/payload.json" "X-Gitlab-Event: Tag Push Hook" "X-Gitlab-Event-UUID: gl-3" \
	"X-Gitlab-Token: $SECRET")
[[ $r == "201 "* ]] || fail "gitlab tag push answered $r"
[ "$(api "/api/v1/pipelines/$(jq -r .pipeline "$T/answer")" | jq -r .event)" = tag ] || fail "gitlab tag is not event tag"
r=$(post demo-gitlab "$T/payload.json" "X-Gitlab-Event: Push Event" "X-Gitlab-Token: $SECRET")
[[ $r == "200 "* ]] || fail "gitlab test hook answered $r"
ok "gitlab push and tag push (X-Gitlab-Token)"

# Generic: anvil's own X-Anvil-Signature.
anvil repo add demo-generic "$T/git/demo.git" --forge generic --secret "$SECRET" >/dev/null
payload generic_push.json refs/heads/main "$SHA2" "" src/main.c
r=$(post demo-generic "$T/payload.json" "X-Anvil-Event: push" "X-Anvil-Delivery: an-1" \
	"X-Anvil-Signature: sha256=$(hmac "$SECRET" "$T/payload.json")")
[[ $r == "201 "* ]] || fail "generic push answered $r"
ok "generic push (X-Anvil-Signature)"

# Delivery ids are unique per repository: the same id, correctly signed, on
# another repository starts that repository's pipeline; a replay there is
# a no-op answering it.
anvil repo add demo-b "$T/git/demo.git" --forge github --secret "$SECRET" >/dev/null
payload github_push.json refs/heads/main "$SHA" "same delivery id, other repository"
PA=$(db "SELECT p.id FROM pipelines p JOIN repos r ON r.id = p.repo_id WHERE r.name = 'demo' AND p.delivery = 'delivery-1'")
[ -n "$PA" ] || fail "no pipeline of demo holds delivery-1"
sig="X-Hub-Signature-256: sha256=$(hmac "$SECRET" "$T/payload.json")"
r=$(post demo-b "$T/payload.json" "X-GitHub-Event: push" "X-GitHub-Delivery: delivery-1" "$sig")
[[ $r == "201 "* ]] || fail "delivery-1 on demo-b answered $r (demo's pipeline is $PA)"
PB=$(jq -r .pipeline "$T/answer")
[ "$PB" != "$PA" ] || fail "demo-b got demo's pipeline"
[ "$(jq -r .existed "$T/answer")" = false ] || fail "demo-b's first delivery-1 existed: $r"
[ "$(api "/api/v1/pipelines/$PB" | jq -r .repo)" = demo-b ] || fail "pipeline $PB is not demo-b's"
r=$(post demo-b "$T/payload.json" "X-GitHub-Event: push" "X-GitHub-Delivery: delivery-1" "$sig")
[[ $r == "200 "* ]] || fail "replay on demo-b answered $r"
[ "$(jq -r .pipeline "$T/answer")" = "$PB" ] && [ "$(jq -r .existed "$T/answer")" = true ] ||
	fail "replay on demo-b answered $r, not pipeline $PB existed"
[ "$(db "SELECT count(*) FROM pipelines WHERE delivery = 'delivery-1'")" = 2 ] || fail "delivery-1 pipelines: not 2"
ok "the same delivery id on two repositories starts two pipelines; a replay on one is a no-op"

# A body over the cap is refused before it is read.
head -c 1100000 /dev/zero | tr '\0' 'a' >"$T/big"
r=$(post demo "$T/big" "X-GitHub-Event: push")
[[ $r == "413 "* ]] || fail "oversized body answered $r"
ok "body cap"
