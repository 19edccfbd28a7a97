#!/bin/bash
# `anvil-agent --targets auto` registers a qemu binfmt handler (host-wide,
# update-binfmts --enable) only for a target it will serve: a recipe whose
# rootfs is not in the cache is left out before its handler is touched.
# Uses riscv64, which nothing else here serves; its handler's state is put
# back as found when the test ends.
. "$(dirname "$0")/lib.sh"

H=/proc/sys/fs/binfmt_misc/qemu-riscv64
[ -e /proc/sys/fs/binfmt_misc/status ] || { echo "skip: binfmt_misc is not mounted"; exit 0; }
command -v update-binfmts >/dev/null || { echo "skip: no update-binfmts (binfmt-support)"; exit 0; }
update-binfmts --display qemu-riscv64 >/dev/null 2>&1 || { echo "skip: qemu-riscv64 is not a known binfmt format"; exit 0; }
was_enabled=0
[ -e "$H" ] && head -n 1 "$H" | grep -qx enabled && was_enabled=1
restore_binfmt() {
	if [ "$was_enabled" = 1 ]; then update-binfmts --enable qemu-riscv64 >/dev/null 2>&1 || true
	else update-binfmts --disable qemu-riscv64 >/dev/null 2>&1 || true; fi
}
trap 'restore_binfmt; e2e_cleanup' EXIT
update-binfmts --disable qemu-riscv64 >/dev/null 2>&1 || true
if [ -e "$H" ] && head -n 1 "$H" | grep -qx enabled; then fail "could not disable qemu-riscv64 to start from"; fi

mkdir -p "$T/recipes" "$T/cache"
cat >"$T/recipes/riscv64gc-unknown-linux-gnu.yml" <<'YML'
triple: riscv64gc-unknown-linux-gnu
debian_arch: riscv64
gnu_triple: riscv64-linux-gnu
qemu: qemu-riscv64-static
packages: [libc6-dev]
YML
start_server
start_agent a1 --targets auto --recipes "$T/recipes" --cache "$T/cache"
wait_until 60 bash -c "curl -s $URL/api/v1/agents | jq -e '.agents[0].name == \"a1\"'" || fail "agent did not register"
grep -q 'target unavailable target=riscv64gc-unknown-linux-gnu reason="no rootfs' "$T/agent-a1.log" ||
	fail "riscv64 was not left out for its missing rootfs: $(grep -i riscv "$T/agent-a1.log")"
if api /api/v1/agents | jq -e '.agents[0].labels | index("target=riscv64gc-unknown-linux-gnu")' >/dev/null; then
	fail "agent advertises riscv64 without a rootfs"
fi
if [ -e "$H" ] && head -n 1 "$H" | grep -qx enabled; then
	fail "agent enabled the qemu-riscv64 handler for a target it does not serve"
fi
ok "--targets auto: riscv64 (no rootfs) left out, its binfmt handler left disabled"
