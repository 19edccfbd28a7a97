#!/bin/bash
# Issue 15: variables on a manual trigger (anvil trigger -e KEY=VAL, the
# API's "variables", the pipeline page's Run again form) reach every step's
# environment over the pipeline file's env, are recorded with the pipeline,
# never replace a secret or anvil's own variables, and bad names are refused.
. "$(dirname "$0")/lib.sh"

start_server
start_agent a1
make_repo demo
cat >"$T/src/demo/.anvil.yml" <<'YML'
env:
  GREETING: from-file
steps:
  - echo "one greeting=$GREETING spaced=[$SPACED] token=$TOKEN"
  - echo "two greeting=$GREETING commit=$ANVIL_COMMIT"
YML
commit_push demo "vars"
P0=$(latest_pipeline)
wait_until 60 pipeline_is "$P0" success || fail "first pipeline is $(pipeline_state "$P0")"
printf 's3cret-value' | anvil secret set demo TOKEN >/dev/null || fail "secret set failed"
SHA=$(git -C "$T/src/demo" rev-parse HEAD)

out=$(anvil trigger demo --url "$T/git/demo.git" --ref refs/heads/main -e GREETING=hello \
	--var 'SPACED=a b' -e TOKEN=evil) || fail "trigger with variables failed: $out"
P=$(echo "$out" | grep -o 'pipeline [0-9]*' | grep -o '[0-9]*')
J=$(first_job "$P")
wait_until 60 pipeline_is "$P" success || fail "pipeline is $(pipeline_state "$P")"
log_has "$J" "one greeting=hello spaced=[a b] token=***" || fail "step one did not see the variables: $(api "/api/v1/jobs/$J/log")"
log_has "$J" "two greeting=hello commit=$SHA" || fail "step two did not see the variable"
if log_has "$J" evil; then fail "a variable replaced a secret"; fi
[ "$(api "/api/v1/pipelines/$P" | jq -c .variables)" = '{"GREETING":"hello","SPACED":"a b","TOKEN":"evil"}' ] ||
	fail "pipeline variables are $(api "/api/v1/pipelines/$P" | jq -c .variables)"
anvil show "$P" | grep -q "GREETING=hello" || fail "anvil show does not list the variables"
[ "$(api "/api/v1/pipelines/$P0" | jq -c .variables)" = '{}' ] || fail "a push pipeline has variables"
ok "trigger -e: every step sees the variables, secrets and ANVIL_* stay, recorded on the pipeline"

for bad in LD_PRELOAD=/tmp/x ANVIL_COMMIT=0 PATH=/tmp 1X=y 'A-B=c' BASH_ENV=/x; do
	if anvil trigger demo --url "$T/git/demo.git" --ref refs/heads/main -e "$bad" >"$T/o" 2>"$T/e"; then
		fail "trigger accepted the variable $bad"
	fi
	grep -q "variable" "$T/e" || fail "refusal of $bad does not say why: $(cat "$T/e")"
done
long=$(head -c 5000 /dev/zero | tr '\0' x)
code=$(admin_api POST /api/v1/trigger -o "$T/r.json" -w '%{http_code}' -H 'Content-Type: application/json' \
	-d "{\"repo\":\"demo\",\"url\":\"$T/git/demo.git\",\"ref\":\"refs/heads/main\",\"variables\":{\"V\":\"$long\"}}")
[ "$code" = 400 ] || fail "a 5000-byte value answered $code"
code=$(admin_api POST /api/v1/trigger -o "$T/r.json" -w '%{http_code}' -H 'Content-Type: application/json' \
	-d "{\"repo\":\"demo\",\"url\":\"$T/git/demo.git\",\"ref\":\"refs/heads/main\",\"variables\":{\"V\":1}}")
[ "$code" = 400 ] || fail "a number value answered $code"
code=$(admin_api POST /api/v1/trigger -o "$T/r.json" -w '%{http_code}' -H 'Content-Type: application/json' \
	-d "{\"repo\":\"demo\",\"url\":\"$T/git/demo.git\",\"ref\":\"refs/heads/main\",\"variables\":{\"V\":\"a\\u0000b\"}}")
[ "$code" = 400 ] || fail "a value with NUL answered $code"
[ "$(latest_pipeline)" = "$P" ] || fail "a refused trigger made a pipeline"
ok "bad variable names and values are refused with a reason"

# The pipeline page's Run again form.
curl -s -o /dev/null -c "$T/jar" --data-urlencode "token=$(cat "$T/data/admin.token")" "$URL/login"
page=$(curl -s -b "$T/jar" "$URL/pipelines/$P")
echo "$page" | grep -q 'id="variables"' || fail "the pipeline page does not show its variables"
csrf=$(echo "$page" | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | sed 's/.*value="\([0-9a-f]*\)"/\1/')
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$T/jar" --data-urlencode "csrf=$csrf" \
	--data-urlencode $'variables=GREETING=from-ui\r\n\r\nSPACED=x' "$URL/pipelines/$P/run")
[ "$code" = 303 ] || fail "Run again answered $code"
P2=$(latest_pipeline)
[ "$P2" != "$P" ] || fail "Run again made no pipeline"
wait_until 60 pipeline_is "$P2" success || fail "UI pipeline is $(pipeline_state "$P2")"
log_has "$(first_job "$P2")" "one greeting=from-ui spaced=[x]" || fail "the UI's variables did not reach the step"
[ "$(api "/api/v1/pipelines/$P2" | jq -r .event)" = manual ] || fail "Run again is not a manual pipeline"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "$T/jar" --data-urlencode "csrf=$csrf" \
	--data-urlencode 'variables=LD_PRELOAD=x' "$URL/pipelines/$P/run")
[ "$code" = 400 ] || fail "Run again with LD_PRELOAD answered $code"
ok "the pipeline page's Run again form takes variables"
