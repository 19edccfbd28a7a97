#!/bin/bash
# Releases: a pushed tag runs a tag pipeline whose success records a signed
# release (SHA256SUMS that sha256sum -c accepts, a manifest signify-openbsd
# verifies); `anvil release create` tags a succeeded pipeline's commit in the
# bare repository and its tag pipeline runs; refusals (failed pipeline, tag
# at another commit); a tampered blob is caught by `release download`; key
# rotation keeps old releases verifiable.
. "$(dirname "$0")/lib.sh"

command -v signify-openbsd >/dev/null || fail "signify-openbsd missing (scripts/deps.sh test)"
start_server
start_agent a1
make_repo demo
# This repository's hook sends tags as event tag (the fixture's says push).
cat >"$T/git/demo.git/hooks/post-receive" <<HOOK
#!/bin/sh
while read old new ref; do
	[ "\$new" = 0000000000000000000000000000000000000000 ] && continue
	case "\$ref" in refs/tags/*) ev=tag ;; *) ev=push ;; esac
	# An annotated tag's new id names the tag object: send its commit.
	commit=\$(git rev-parse "\$new^{commit}")
	ANVIL_SERVER="$URL" ANVIL_TOKEN_FILE="$T/data/admin.token" \
		"$B/anvil" trigger demo --url "$T/git/demo.git" --ref "\$ref" --commit "\$commit" --event \$ev
done
HOOK
cat >"$T/src/demo/.anvil.yml" <<'YML'
steps:
  - name: build
    run: |
      cc -O2 -o hello hello.c
      ./hello
artifacts: [hello]
YML
cat >"$T/src/demo/hello.c" <<'C'
#include <stdio.h>
int main(void) { puts("hello release"); return 0; }
C
commit_push demo "first" >/dev/null
P1=$(latest_pipeline)
wait_until 60 pipeline_is "$P1" success || fail "pipeline $P1 is $(pipeline_state "$P1")"
C1=$(git -C "$T/src/demo" rev-parse HEAD)
ok "push pipeline $P1 succeeded"

[ -s "$T/data/release.key" ] && [ "$(stat -c %a "$T/data/release.key")" = 600 ] || fail "release.key missing or not 0600"
K1=$(api /api/v1/release-keys | jq -r '.keys[0].keynum')
[ "$(api /api/v1/release-keys | jq -r '.keys[0].public_key')" = "$(cat "$T/data/release.pub")" ] ||
	fail "published key differs from release.pub"
ok "release key $K1 generated (0600), published"

release_signed() {
	[ "$(api "/api/v1/releases/demo/$1" | jq -r .signed)" = true ]
}

# 1. A pushed tag → tag pipeline → release.
git -C "$T/src/demo" tag -a v1.0.0 -m "v1.0.0"
git -C "$T/src/demo" push -q origin v1.0.0
PT=$(latest_pipeline)
[ "$(api "/api/v1/pipelines/$PT" | jq -r .event)" = tag ] || fail "tag push made no tag pipeline"
wait_until 60 pipeline_is "$PT" success || fail "tag pipeline $PT is $(pipeline_state "$PT")"
wait_until 10 release_signed v1.0.0 || fail "release v1.0.0 not recorded and signed"
[ "$(db "SELECT count(*) FROM releases WHERE version = 'v1.0.0' AND commit_sha = '$C1'")" = 1 ] ||
	fail "releases row missing"
api /api/v1/releases/demo/v1.0.0 | jq -e '.files | length == 1 and .[0].path == "host/hello"' >/dev/null ||
	fail "release files: $(api /api/v1/releases/demo/v1.0.0)"
anvil releases | grep -q "v1.0.0" || fail "anvil releases lacks v1.0.0"
anvil release show v1.0.0 | grep -q "host/hello" || fail "anvil release show lacks the file"
page=$(curl -s "$URL/releases")
grep -q "v1.0.0" <<<"$page" && grep -q "host/hello" <<<"$page" && grep -q "manifest.json.sig" <<<"$page" ||
	fail "the /releases page does not list v1.0.0 with its file"
ok "tag v1.0.0 → pipeline $PT → release recorded and signed; shown on /releases"

out=$(anvil release download v1.0.0 --target host -o "$T/dl") || fail "download failed: $out"
grep -q "verified" <<<"$out" || fail "download did not report verification: $out"
(cd "$T/dl" && sha256sum -c SHA256SUMS) >/dev/null || fail "sha256sum -c failed"
signify-openbsd -V -p "$T/data/release.pub" -m "$T/dl/manifest.json" -x "$T/dl/manifest.json.sig" >/dev/null ||
	fail "signify-openbsd rejects the manifest"
signify-openbsd -V -p "$T/dl/anvil-release.pub" -m "$T/dl/manifest.json" -x "$T/dl/manifest.json.sig" >/dev/null ||
	fail "signify-openbsd rejects the manifest with the downloaded key"
chmod +x "$T/dl/host/hello"
[ "$("$T/dl/host/hello")" = "hello release" ] || fail "downloaded binary does not run"
sed 's/"v1.0.0"/"v1.0.1"/' "$T/dl/manifest.json" >"$T/forged.json"
! signify-openbsd -V -p "$T/data/release.pub" -m "$T/forged.json" -x "$T/dl/manifest.json.sig" >/dev/null 2>&1 ||
	fail "signify accepts a forged manifest"
ok "download verified; sha256sum -c and signify-openbsd -V accept it, a forged manifest is refused"

# 2. anvil release create on a succeeded pipeline: tag in the bare repo, tag pipeline runs.
out=$(anvil release create v1.1.0 --pipeline "$P1" --message "second release") || fail "release create: $out"
[ "$(git -C "$T/git/demo.git" rev-parse 'v1.1.0^{commit}')" = "$C1" ] || fail "tag v1.1.0 not at $C1 in the bare repo"
[ "$(git -C "$T/git/demo.git" cat-file -t v1.1.0)" = tag ] || fail "v1.1.0 is not an annotated tag"
git -C "$T/git/demo.git" cat-file -p v1.1.0 | grep -q "second release" || fail "tag message missing"
wait_until 60 release_signed v1.1.0 || fail "release v1.1.0 not made by its tag pipeline"
out=$(anvil release create v1.1.0 --pipeline "$P1") || fail "repeated release create failed: $out"
grep -q "already there" <<<"$out" || fail "repeated create not idempotent: $out"
ok "release create tagged $C1, pushed, tag pipeline made v1.1.0; repeat is idempotent"

# 3. Refusals: a failed pipeline; a tag at another commit.
echo 'int broken(' >"$T/src/demo/hello.c"
commit_push demo "broken" >/dev/null
PF=$(latest_pipeline)
wait_until 60 pipeline_is "$PF" failed || fail "pipeline $PF is $(pipeline_state "$PF")"
code=$(admin_api POST /api/v1/releases -o "$T/ans.json" -w '%{http_code}' -d "{\"version\":\"v1.2.0\",\"pipeline\":$PF}")
[ "$code" = 409 ] || fail "release of a failed pipeline answered $code: $(cat "$T/ans.json")"
! anvil release create v1.2.0 --pipeline "$PF" 2>"$T/err.txt" || fail "CLI accepted a failed pipeline"
grep -q "only a pipeline that succeeded" "$T/err.txt" || fail "unclear refusal: $(cat "$T/err.txt")"
git -C "$T/git/demo.git" rev-parse -q --verify refs/tags/v1.2.0 >/dev/null && fail "v1.2.0 was created"
printf '#include <stdio.h>\nint main(void) { puts("hello release 2"); return 0; }\n' >"$T/src/demo/hello.c"
commit_push demo "fixed" >/dev/null
P3=$(latest_pipeline)
wait_until 60 pipeline_is "$P3" success || fail "pipeline $P3 is $(pipeline_state "$P3")"
code=$(admin_api POST /api/v1/releases -o "$T/ans.json" -w '%{http_code}' -d "{\"version\":\"v1.0.0\",\"pipeline\":$P3}")
[ "$code" = 409 ] || fail "tag at another commit answered $code"
jq -r .error "$T/ans.json" | grep -q "exists at commit $C1" || fail "unclear conflict: $(cat "$T/ans.json")"
ok "refused: failed pipeline (409), tag at another commit (409)"

# 4. A tampered blob is detected; nothing is reported as verified.
SHA=$(api /api/v1/releases/demo/v1.0.0 | jq -r '.files[0].sha256')
BLOB="$T/data/blobs/${SHA:0:2}/$SHA"
cp "$BLOB" "$T/blob.orig"
chmod u+w "$BLOB"
printf 'X' | dd of="$BLOB" bs=1 seek=100 conv=notrunc 2>/dev/null
if out=$(anvil release download v1.0.0 --target host -o "$T/dl2" 2>&1); then
	fail "tampered blob downloaded without error: $out"
fi
grep -q "sha256 mismatch for host/hello" <<<"$out" || fail "tamper not named: $out"
grep -q "verified" <<<"$out" && fail "tampered download reported verified: $out"
[ ! -e "$T/dl2/host/hello" ] || fail "tampered file left in place"
cp "$T/blob.orig" "$BLOB"
ok "tampered blob detected by release download"

# 5. Key rotation: old releases still verify, new ones use the new key.
cp "$T/data/release.pub" "$T/old.pub"
out=$(anvil release rotate-key) || fail "rotate-key: $out"
K2=$(api /api/v1/release-keys | jq -r '.keys[] | select(.current) | .keynum')
[ "$K2" != "$K1" ] || fail "key did not change"
[ "$(api /api/v1/release-keys | jq '.keys | length')" = 2 ] || fail "old key not listed"
[ -s "$T/data/release-$K1.pub" ] || fail "old public key file missing"
anvil release download v1.0.0 --target host -o "$T/dl3" | grep -q "key $K1" || fail "old release no longer verifies"
signify-openbsd -V -p "$T/data/release-$K1.pub" -m "$T/dl3/manifest.json" -x "$T/dl3/manifest.json.sig" >/dev/null ||
	fail "signify rejects the old release with the old key"
anvil release create v1.3.0 --pipeline "$P3" >/dev/null || fail "release create v1.3.0"
wait_until 60 release_signed v1.3.0 || fail "release v1.3.0 not signed"
anvil release download v1.3.0 --target host -o "$T/dl4" --pubkey "$T/data/release.pub" | grep -q "key $K2" ||
	fail "new release not signed by the new key"
signify-openbsd -V -p "$T/data/release.pub" -m "$T/dl4/manifest.json" -x "$T/dl4/manifest.json.sig" >/dev/null ||
	fail "signify rejects the new release"
! signify-openbsd -V -p "$T/old.pub" -m "$T/dl4/manifest.json" -x "$T/dl4/manifest.json.sig" >/dev/null 2>&1 ||
	fail "the old key verifies a new release"
! anvil release download v1.0.0 --target host -o "$T/dl5" --pubkey "$T/data/release.pub" 2>"$T/err.txt" ||
	fail "a pinned key accepted a release signed by another key"
grep -q "signed by key $K1" "$T/err.txt" || fail "pinned-key refusal unclear: $(cat "$T/err.txt")"
ok "rotation: old release verifies with key $K1, new one with $K2; a pinned key refuses the other"

# 6. The release pattern: a tag outside it makes no release.
anvil release pattern demo 'rel-*' | grep -q "demo rel-\*" || fail "pattern not set"
git -C "$T/src/demo" tag v9.9.9
git -C "$T/src/demo" push -q origin v9.9.9
P9=$(latest_pipeline)
wait_until 60 pipeline_is "$P9" success || fail "pipeline $P9 is $(pipeline_state "$P9")"
[ "$(api /api/v1/releases/demo/v9.9.9 | jq -r .code)" = not_found ] || fail "a tag outside the pattern made a release"
ok "release pattern rel-* keeps v9.9.9 from becoming a release"

# 7. Restart: the key is loaded, not regenerated.
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
start_server
[ "$(api /api/v1/release-keys | jq -r '.keys[] | select(.current) | .keynum')" = "$K2" ] || fail "key changed on restart"
ok "restart keeps key $K2"

# 8. Push credentials from the repository's secrets: `release create` to an
# ssh:// remote served by a throwaway sshd on 127.0.0.91 (key auth only).
# ANVIL_GIT_* secrets are the server's: a job does not get them.
anvil secret set demo ANVIL_GIT_TOKEN <<<"push-token-not-for-jobs" >/dev/null || fail "secret set"
anvil secret set demo PLAIN <<<"for-jobs" >/dev/null || fail "secret set"
printf 'steps:\n  - run: echo "git-secrets=$(env | grep -c ^ANVIL_GIT_) plain=$PLAIN"\n' >"$T/src/demo/.anvil.yml"
commit_push demo "env check" >/dev/null
PE=$(latest_pipeline)
wait_until 60 pipeline_is "$PE" success || fail "pipeline $PE is $(pipeline_state "$PE")"
log_has "$(first_job "$PE")" "git-secrets=0 plain=***" || fail "job env: $(api "/api/v1/jobs/$(first_job "$PE")/log")"
anvil secret rm demo ANVIL_GIT_TOKEN >/dev/null
ok "ANVIL_GIT_* secrets are not in a job's environment (other secrets are)"

SSHD="$T/sshd"
mkdir -p "$SSHD"
ssh-keygen -q -t ed25519 -N '' -f "$SSHD/host" && ssh-keygen -q -t ed25519 -N '' -f "$SSHD/other_host"
ssh-keygen -q -t ed25519 -N '' -f "$SSHD/id" && ssh-keygen -q -t ed25519 -N '' -f "$SSHD/stranger"
cp "$SSHD/id.pub" "$SSHD/authorized_keys"
SSH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.91", 0)); print(s.getsockname()[1])')
cat >"$SSHD/sshd_config" <<CFG
ListenAddress 127.0.0.91
Port $SSH_PORT
HostKey $SSHD/host
AuthorizedKeysFile $SSHD/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
CFG
/usr/sbin/sshd -D -f "$SSHD/sshd_config" -E "$T/sshd.log" &
PIDS+=("$!")
git clone -q --bare "$T/git/demo.git" "$T/remote.git"
wait_until 10 bash -c "ssh-keyscan -p $SSH_PORT 127.0.0.91 2>/dev/null | grep -q ssh-ed25519" || fail "sshd did not start"
anvil repo add demo "ssh://root@127.0.0.91:$SSH_PORT$T/remote.git" >/dev/null || fail "repo add (ssh url)"
remote_tag() { git -C "$T/remote.git" rev-parse -q --verify "refs/tags/$1^{commit}"; }
create_fails_with() { # create_fails_with VERSION TEXT: refused, naming TEXT, nothing pushed
	! anvil release create "$1" --pipeline "$P3" 2>"$T/err.txt" >/dev/null || fail "release create $1 succeeded"
	grep -qF -- "$2" "$T/err.txt" || fail "release create $1: '$(cat "$T/err.txt")' does not say '$2'"
	! remote_tag "$1" >/dev/null || fail "tag $1 reached the remote"
}
anvil secret set demo ANVIL_GIT_SSH_HOST_KEY <"$SSHD/host.pub" >/dev/null
create_fails_with rel-1.4.0 "set the repository's secret ANVIL_GIT_SSH_KEY"
anvil secret set demo ANVIL_GIT_SSH_KEY <"$SSHD/stranger" >/dev/null
create_fails_with rel-1.4.0 "the repository refused the key in secret ANVIL_GIT_SSH_KEY"
anvil secret set demo ANVIL_GIT_SSH_KEY <"$SSHD/id" >/dev/null
anvil secret set demo ANVIL_GIT_SSH_HOST_KEY <<<"$(ssh-keygen -lf "$SSHD/other_host.pub" | cut -d' ' -f2)" >/dev/null
create_fails_with rel-1.4.0 "host key mismatch for 127.0.0.91: pinned $(ssh-keygen -lf "$SSHD/other_host.pub" | cut -d' ' -f2), got $(ssh-keygen -lf "$SSHD/host.pub" | cut -d' ' -f2)"
anvil secret rm demo ANVIL_GIT_SSH_HOST_KEY >/dev/null
create_fails_with rel-1.4.0 "unknown remote ssh hostkey (pin the repository's host key in its secret ANVIL_GIT_SSH_HOST_KEY"
ok "ssh remote refused: no key, a key the remote does not take, another host key pinned, no pin (not in known_hosts); nothing pushed"

anvil secret set demo ANVIL_GIT_SSH_HOST_KEY <"$SSHD/host.pub" >/dev/null
C3=$(api "/api/v1/pipelines/$P3" | jq -r .commit)
out=$(anvil release create rel-1.4.0 --pipeline "$P3" --message "over ssh") || fail "release create over ssh: $out"
grep -q "created and pushed" <<<"$out" || fail "release create over ssh: $out"
[ "$(remote_tag rel-1.4.0)" = "$C3" ] || fail "tag rel-1.4.0 is not at $C3 in the ssh remote"
[ "$(git -C "$T/remote.git" cat-file -t rel-1.4.0)" = tag ] || fail "rel-1.4.0 is not an annotated tag"
out=$(anvil release create rel-1.4.0 --pipeline "$P3") || fail "repeated release create over ssh: $out"
grep -q "already there" <<<"$out" || fail "repeat over ssh not idempotent: $out"
[ -z "$(find "$T/data" -name '*.pushkey.*')" ] || fail "the key file was left behind"
ok "ssh remote with ANVIL_GIT_SSH_KEY and the pinned host key: rel-1.4.0 pushed at $C3, repeat idempotent, no key file left"

# 9. A token is never sent over plain http: a remote that asks for basic
# auth (a loopback server answering 401 and noting any Authorization header)
# gets none, and the refusal says why.
anvil secret set demo ANVIL_GIT_TOKEN <<<"push-token" >/dev/null
cat >"$T/auth401.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[2], "a") as f:
            f.write("request %s auth=%s\n" % (self.path, self.headers.get("Authorization", "-")))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.91", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_port))
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
python3 "$T/auth401.py" "$T/auth401.port" "$T/auth401.seen" &
PIDS+=("$!")
wait_until 60 test -s "$T/auth401.port" || fail "the 401 server did not start"
anvil repo add demo "http://127.0.0.91:$(cat "$T/auth401.port")/demo.git" >/dev/null || fail "repo add (http url)"
create_fails_with rel-1.5.0 "push credentials are only sent to https:// remotes"
grep -q "^request /demo.git/info/refs" "$T/auth401.seen" || fail "libgit2 never asked the http remote"
! grep -v "auth=-$" "$T/auth401.seen" || fail "a credential was sent over http"
ok "an http:// remote asking for credentials gets no token: refused, nothing sent"
