#!/bin/bash
# Pull and merge requests: a GitHub pull_request, a Gitea pull_request and a
# GitLab Merge Request Hook delivery (tests/fixtures/webhooks/, pointed at a real repository whose
# refs/pull/7/head and refs/merge-requests/3/head hold the heads) build the
# head commit with event pull_request and report its status on the head; a
# fork's request gets only the secrets set with --pull-requests; closed or metadata-only updates, bad
# signatures, bad SHAs and `when:` rules start nothing.
. "$(dirname "$0")/lib.sh"

FX="$S/tests/fixtures/webhooks"
SECRET="pr-hook-secret-$$"

post() { # NAME HEADER... (body: $T/payload.json) → "<status> <body>"
	local name=$1
	shift
	local args=()
	for h in "$@"; do args+=(-H "$h"); done
	curl -s -o "$T/answer" -w '%{http_code}' -X POST -H 'Content-Type: application/json' "${args[@]}" \
		--data-binary "@$T/payload.json" "$URL/hooks/$name"
	echo " $(cat "$T/answer")"
}
gh() { # DELIVERY [SECRET]
	local sig
	sig=$(openssl dgst -sha256 -hmac "${2:-$SECRET}" -r <"$T/payload.json" | cut -d' ' -f1)
	post demo "X-GitHub-Event: pull_request" "X-GitHub-Delivery: $1" "X-Hub-Signature-256: sha256=$sig"
}
gt() { # DELIVERY [SECRET]: Gitea signs with a bare hex HMAC-SHA256
	local sig
	sig=$(openssl dgst -sha256 -hmac "${2:-$SECRET}" -r <"$T/payload.json" | cut -d' ' -f1)
	post gt "X-Gitea-Event: pull_request" "X-Gitea-Delivery: $1" "X-Gitea-Signature: $sig"
}
gl() { post gl "X-Gitlab-Event: Merge Request Hook" "X-Gitlab-Event-UUID: $1" "X-Gitlab-Token: ${2:-$SECRET}"; }
pipeline_of() { sed -n 's/^20[01] .*"pipeline": *\([0-9]*\).*/\1/p' <<<"$1"; }
job_final() { case "$(job_state "$1")" in success | failed | error | canceled) return 0 ;; esac; return 1; }
ran() { # PIPELINE TEXT: its job ended in success and its log holds TEXT
	local j
	j=$(first_job "$1")
	wait_until 60 job_final "$j" || fail "job $j of pipeline $1 is $(job_state "$j")"
	job_is "$j" success || fail "job $j: $(job_state "$j"): $(api "/api/v1/jobs/$j/log")"
	log_has "$j" "$2" || fail "job $j's log lacks '$2': $(api "/api/v1/jobs/$j/log")"
}

rm -f "$T/recv.port"
python3 "$S/tests/e2e/forge_receiver.py" "$T/recv.port" "$T/statuses.jsonl" 0 >>"$T/receiver.log" 2>&1 &
PIDS+=("$!")
wait_until 60 test -s "$T/recv.port" || fail "receiver did not start"
start_server
start_agent a1

# Two repositories, each with main and a request head where the forge keeps it.
for r in demo gl gt; do
	make_repo "$r"
	rm -f "$T/git/$r.git/hooks/post-receive"
	cat >"$T/src/$r/.anvil.yml" <<'YML'
when: {event: [push, pull_request], branch: [main]}
steps:
  - run: 's=${DEPLOY_KEY:+set}; echo "event=$ANVIL_EVENT ref=$ANVIL_REF secret=${s:-unset} pr=${PR_TOKEN:+set}."'
YML
	commit_push "$r" base >/dev/null
	git -C "$T/src/$r" checkout -q -b feature
	echo poller >"$T/src/$r/poller.c"
	git -C "$T/src/$r" add -A
	git -C "$T/src/$r" commit -q -m "Add the modbus poller"
done
git -C "$T/src/demo" push -q origin HEAD:refs/pull/7/head
git -C "$T/src/gl" push -q origin HEAD:refs/merge-requests/3/head
git -C "$T/src/gt" push -q origin HEAD:refs/pull/12/head
HEAD_GT=$(git -C "$T/src/gt" rev-parse HEAD)
HEAD_GH=$(git -C "$T/src/demo" rev-parse HEAD)
HEAD_GL=$(git -C "$T/src/gl" rev-parse HEAD)
anvil repo add demo "$T/git/demo.git" --forge github --secret "$SECRET" --status-token tok \
	--api-url "http://127.0.0.1:$(cat "$T/recv.port")" >/dev/null
anvil repo add gl "$T/git/gl.git" --forge gitlab --secret "$SECRET" >/dev/null
anvil repo add gt "$T/git/gt.git" --forge gitea --secret "$SECRET" --status-token gtok \
	--api-url "http://127.0.0.1:$(cat "$T/recv.port")/api/v1" >/dev/null
for r in demo gl gt; do echo "k3y-$$" | anvil secret set "$r" DEPLOY_KEY >/dev/null; done
echo "pr-$$" | anvil secret set demo PR_TOKEN --pull-requests >/dev/null
anvil secrets demo | grep -qx 'PR_TOKEN  (pull requests from forks too)' || fail "secrets: $(anvil secrets demo)"

# GitHub: a pull request from a branch of the same repository.
jq --arg sha "$HEAD_GH" '.pull_request.head.sha = $sha' "$FX/github_pull_request.json" >"$T/payload.json"
r=$(gh "" wrong-secret)
[[ $r == "401 "* ]] || fail "a wrong signature answered $r"
r=$(gh d-1)
[[ $r == "201 "* ]] || fail "pull_request opened answered $r"
P=$(pipeline_of "$r")
pj=$(api "/api/v1/pipelines/$P")
[ "$(jq -r '.event + " " + .ref + " " + .commit' <<<"$pj")" = "pull_request refs/pull/7/head $HEAD_GH" ] ||
	fail "pipeline $P: $pj"
ran "$P" "event=pull_request ref=refs/pull/7/head secret=set pr=set."
J=$(first_job "$P")
statuses_of() { jq -r --arg u "$URL/jobs/$J" 'select(.body.target_url == $u) | .path' "$T/statuses.jsonl"; }
wait_until 20 grep -q '"success"' "$T/statuses.jsonl" || fail "no success status: $(cat "$T/statuses.jsonl")"
[ "$(statuses_of | sort -u)" = "/repos/git/demo/statuses/$HEAD_GH" ] || fail "statuses went to $(statuses_of)"
r=$(gh d-1)
[[ $r == "200 "* ]] && jq -e .existed "$T/answer" >/dev/null || fail "a redelivery answered $r"
ok "GitHub pull_request opened: head $HEAD_GH built as pull_request, status on the head, redelivery a no-op"

# The same request from a fork: the secret is withheld.
jq '.action = "synchronize" | .pull_request.head.repo.full_name = "mallory/demo"' "$T/payload.json" >"$T/p2"
mv "$T/p2" "$T/payload.json"
r=$(gh d-2)
[[ $r == "201 "* ]] || fail "a fork's synchronize answered $r"
ran "$(pipeline_of "$r")" "secret=unset pr=set."
grep -q "event=secrets_withheld job=$(first_job "$(pipeline_of "$r")") n=1" "$T/server.log" ||
	fail "no secrets_withheld logged"
ok "a fork's pull request runs without the repository's secrets but those set with --pull-requests"

n=$(db 'SELECT count(*) FROM pipelines')
jq '.action = "closed"' "$T/payload.json" >"$T/p2" && mv "$T/p2" "$T/payload.json"
r=$(gh d-3)
[[ $r == "202 "*"ignored: action closed"* ]] || fail "closed answered $r"
jq '.action = "opened" | .pull_request.head.sha = "../../etc/passwd"' "$T/payload.json" >"$T/p2"
mv "$T/p2" "$T/payload.json"
r=$(gh d-4)
[[ $r == "400 "*"head commit"* ]] || fail "a bad head SHA answered $r"
jq --arg sha "$HEAD_GH" '.pull_request.head.sha = $sha | .number = "7; rm -rf /"' "$T/payload.json" >"$T/p2"
mv "$T/p2" "$T/payload.json"
r=$(gh d-5)
[[ $r == "400 "* ]] || fail "a bad number answered $r"
[ "$(db 'SELECT count(*) FROM pipelines')" = "$n" ] || fail "an ignored or bad delivery started a pipeline"
ok "closed → 202 ignored; bad SHA and number → 400; nothing started"

# GitLab: a merge request opened, then a title edit (no oldrev), then one
# targeting a branch the when: rules do not list.
jq --arg sha "$HEAD_GL" '.object_attributes.last_commit.id = $sha' "$FX/gitlab_merge_request.json" >"$T/payload.json"
r=$(gl g-0 wrong)
[[ $r == "401 "* ]] || fail "a wrong GitLab token answered $r"
r=$(gl g-1)
[[ $r == "201 "* ]] || fail "Merge Request Hook open answered $r"
P=$(pipeline_of "$r")
[ "$(api "/api/v1/pipelines/$P" | jq -r '.event + " " + .commit')" = "pull_request $HEAD_GL" ] ||
	fail "MR pipeline: $(api "/api/v1/pipelines/$P")"
ran "$P" "event=pull_request ref=refs/merge-requests/3/head secret=set"
jq '.object_attributes.action = "update"' "$T/payload.json" >"$T/p2" && mv "$T/p2" "$T/payload.json"
r=$(gl g-2)
[[ $r == "202 "*"ignored: action update"* ]] || fail "a title update answered $r"
jq '.object_attributes.oldrev = "1111111111111111111111111111111111111111" | .object_attributes.target_branch = "dev"' \
	"$T/payload.json" >"$T/p2" && mv "$T/p2" "$T/payload.json"
r=$(gl g-3)
[[ $r == "202 "*"when rules do not match"* ]] || fail "an MR into dev answered $r"
ok "GitLab merge request: open built as pull_request; metadata update ignored; when: branch matches the target"

# Gitea: a pull request from a branch of the same repository, signed with a
# bare hex HMAC in X-Gitea-Signature; the status goes to Gitea's own API
# shape (/api/v1/repos/OWNER/REPO/statuses/SHA, "token" auth).
jq --arg sha "$HEAD_GT" '.pull_request.head.sha = $sha' "$FX/gitea_pull_request.json" >"$T/payload.json"
r=$(gt t-0 wrong-secret)
[[ $r == "401 "* ]] || fail "a wrong Gitea signature answered $r"
r=$(gt t-1)
[[ $r == "201 "* ]] || fail "Gitea pull_request opened answered $r"
P=$(pipeline_of "$r")
[ "$(api "/api/v1/pipelines/$P" | jq -r '.event + " " + .ref + " " + .commit')" = "pull_request refs/pull/12/head $HEAD_GT" ] ||
	fail "Gitea PR pipeline: $(api "/api/v1/pipelines/$P")"
ran "$P" "event=pull_request ref=refs/pull/12/head secret=set"
J=$(first_job "$P")
gt_status() { jq -c --arg u "$URL/jobs/$J" 'select(.body.target_url == $u and .body.state == "success")' "$T/statuses.jsonl"; }
gt_has_status() { [ -n "$(gt_status)" ]; } # re-read on every try (a $(...) argument would be read once)
wait_until 30 gt_has_status || fail "no Gitea success status: $(cat "$T/statuses.jsonl")"
[ "$(gt_status | jq -r '.path + " " + .authorization' | sort -u)" = "/api/v1/repos/git/gt/statuses/$HEAD_GT token gtok" ] ||
	fail "Gitea status: $(gt_status)"
r=$(gt t-1)
[[ $r == "200 "* ]] && jq -e .existed "$T/answer" >/dev/null || fail "a Gitea redelivery answered $r"
# Gitea says "synchronized" (GitHub "synchronize") for a push to the head.
jq '.action = "synchronized"' "$T/payload.json" >"$T/p2" && mv "$T/p2" "$T/payload.json"
r=$(gt t-2)
[[ $r == "201 "* ]] || fail "Gitea synchronized answered $r"
ok "Gitea pull_request opened and synchronized: head $HEAD_GT built as pull_request, status on Gitea's statuses API"
