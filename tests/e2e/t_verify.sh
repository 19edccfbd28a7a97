#!/bin/bash
# anvil-verify (the board-side release check, docs/releases.md) on the host,
# against releases signed by the real signify-openbsd: a good one verifies
# (and signify-openbsd agrees); a flipped byte in the manifest or in a file,
# another key, a missing file, a file not in the manifest, malformed input
# are each refused with exit 1 and one line on stderr naming the cause, and
# what signify-openbsd refuses anvil-verify refuses too. About a second.
. "$(dirname "$0")/lib.sh"

command -v signify-openbsd >/dev/null || fail "signify-openbsd missing (scripts/deps.sh test)"
V="$B/anvil-verify"
[ -x "$V" ] || fail "$V not built"
"$V" --version | grep -Eq '^anvil-verify [0-9.]+ src ' || fail "--version: $("$V" --version)"

R="$T/rel"
mkdir -p "$R/bin"
cd "$R"
signify-openbsd -G -n -p key.pub -s key.sec -c "anvil release key" >/dev/null
signify-openbsd -G -n -p other.pub -s other.sec >/dev/null
head -c 100000 /dev/urandom >app
echo '#!/bin/sh' >bin/tool
# release NAME_IN_MANIFEST...: manifest.json listing app and bin/tool (as
# <target>/<name>), SHA256SUMS of both, the signature by key.sec.
release() {
	local a t
	a=$(sha256sum app | cut -d' ' -f1)
	t=$(sha256sum bin/tool | cut -d' ' -f1)
	printf '{"version":"v1.0.0","files":[{"target":"x","path":"x/%s","size":1,"sha256":"%s"},{"target":"x","path":"x/bin/tool","size":1,"sha256":"%s"}]}\n' \
		"${1:-app}" "$a" "$t" >manifest.json
	printf '%s  app\n%s  bin/tool\n' "$a" "$t" >SHA256SUMS
	signify-openbsd -S -s key.sec -m manifest.json -x manifest.json.sig
}
verify() { "$V" -p "${1:-key.pub}" -m manifest.json -x manifest.json.sig -s SHA256SUMS; }
# refused WHAT PATTERN [KEY]: exit 1, one stderr line matching PATTERN.
refused() {
	local rc=0
	verify "${3:-key.pub}" >"$T/out" 2>"$T/err" || rc=$?
	[ $rc = 1 ] || fail "$1: exit $rc, want 1 ($(cat "$T/out" "$T/err"))"
	[ "$(wc -l <"$T/err")" = 1 ] || fail "$1: stderr is not one line: $(cat "$T/err")"
	[ ! -s "$T/out" ] || fail "$1: printed a verdict: $(cat "$T/out")"
	grep -Eq "^anvil-verify: refused: $2" "$T/err" || fail "$1: $(cat "$T/err"), want $2"
	ok "$1: $(cat "$T/err")"
}

release
out=$(verify) || fail "a good release is refused: $out"
kn=$(base64 -d < <(tail -n 1 key.pub) | od -An -tx1 -j2 -N8 | tr -d ' \n')
grep -q "manifest.json signed by key $kn (key.pub); release v1.0.0: 2 file(s), 100010 bytes match SHA256SUMS" <<<"$out" ||
	fail "verdict: $out"
signify-openbsd -V -q -p key.pub -m manifest.json -x manifest.json.sig || fail "signify-openbsd disagrees"
ok "signed by signify-openbsd: $out"

refused "another key" "manifest.json.sig by other.pub: signed by key $kn, not by key [0-9a-f]{16}$" other.pub
signify-openbsd -V -q -p other.pub -m manifest.json -x manifest.json.sig 2>/dev/null && fail "signify-openbsd accepts another key"

cp manifest.json manifest.orig
sed -i 's/v1.0.0/v1.0.1/' manifest.json
refused "manifest tampered" "manifest.json.sig by key.pub: signature verification failed$"
signify-openbsd -V -q -p key.pub -m manifest.json -x manifest.json.sig 2>/dev/null && fail "signify-openbsd accepts it"
cp manifest.orig manifest.json

cp app app.orig
printf 'X' | dd of=app bs=1 seek=5000 conv=notrunc 2>/dev/null
refused "file tampered" "app: sha256 [0-9a-f]{64}, SHA256SUMS says [0-9a-f]{64}$"
rm app
refused "file missing" "app: missing$"
cp app.orig app

release other-app
refused "file not in the manifest" "app: sha256 [0-9a-f]{64} is not in manifest.json$"
release

printf '%s  ../etc/passwd\n' "$(sha256sum app | cut -d' ' -f1)" >>SHA256SUMS
refused "SHA256SUMS escaping the release" "SHA256SUMS line 3: the name is not a plain relative path$"
release
echo 'untrusted comment: x' >manifest.json.sig
refused "malformed signature" "manifest.json.sig: signify file"
release
printf 'not json' >manifest.json
signify-openbsd -S -s key.sec -m manifest.json -x manifest.json.sig
refused "signed but not JSON" "manifest.json: not JSON"
release
rc=0
"$V" -p key.pub -m manifest.json >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "usage error exits $rc, want 2"
ok "usage error: exit 2"
