#!/usr/bin/env bash
# Builds Katran's XDP balancer (balancer.bpf.c) from its upstream source, for
# `lb-bench --katran OUT_DIR`. Nothing of Katran is in this repository: the
# source is taken from the git directory given (a clone or bare mirror of
# github.com/facebookincubator/katran), at its HEAD, and only the compiled
# objects are written.
#
#   bench/katran/build.sh KATRAN_GIT_DIR OUT_DIR
#
# Writes two objects to OUT_DIR:
#   balancer.bpf.o         Katran's defaults (as build_bpf_modules_opensource.sh)
#   balancer-insert.bpf.o  the same with MAX_CONN_RATE raised, so that every new
#                          flow is recorded in the LRU (the default stops
#                          recording above 125,000 new flows/s per CPU)
# and katran-source.txt (the commit built and the compile command).
#
# Compiled as Katran's own Makefile-bpf does: clang -O2 -g -emit-llvm with its
# defines (-DDEBUG -D__KERNEL__), then llc -march=bpf. Needs clang and llc (Debian:
# apt-get install -y --no-install-recommends clang llvm libbpf-dev) and the
# kernel's UAPI headers (linux-libc-dev).
set -euo pipefail

die() {
    echo "bench/katran/build.sh: $*" >&2
    exit 1
}

[ $# -eq 2 ] || die "usage: bench/katran/build.sh KATRAN_GIT_DIR OUT_DIR"
git_dir=$1
out_dir=$2

command -v git >/dev/null || die "git not found"
command -v clang >/dev/null ||
    die "clang not found (apt-get install -y --no-install-recommends clang llvm libbpf-dev)"
command -v llc >/dev/null ||
    die "llc not found (apt-get install -y --no-install-recommends llvm)"
for h in linux/in.h linux/ip.h linux/ipv6.h linux/bpf.h asm/types.h; do
    echo "#include <$h>" | clang -E -x c - -o /dev/null 2>/dev/null ||
        die "header <$h> not found (apt-get install -y --no-install-recommends linux-libc-dev libbpf-dev)"
done
[ -d "$git_dir" ] || die "git dir $git_dir does not exist"
commit=$(git --git-dir="$git_dir" rev-parse --verify 'HEAD^{commit}' 2>/dev/null) ||
    die "$git_dir is not a git directory with a HEAD commit"
git --git-dir="$git_dir" cat-file -e "HEAD:katran/lib/bpf/balancer.bpf.c" 2>/dev/null ||
    die "$git_dir has no katran/lib/bpf/balancer.bpf.c at HEAD (not Katran's repository?)"

src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git --git-dir="$git_dir" archive "$commit" katran/lib/bpf katran/lib/linux_includes |
    tar -x -C "$src" || die "could not extract katran/lib/bpf from $git_dir"
# Makefile-bpf's include layout: Katran's own copies of bpf.h, bpf_helpers.h ...
# under include/, the tree root for "katran/lib/..." includes.
mkdir -p "$src/include"
cp "$src"/katran/lib/linux_includes/* "$src/include/"
mkdir -p "$out_dir"

# Katran's Makefile-bpf: DEBUGBPF, -D__KERNEL__ and its warning flags.
cflags=(-I"$src/include" -I"$src" -DDEBUG -D__KERNEL__ -Wno-unused-value
    -Wno-pointer-sign -Wno-compare-distinct-pointer-types -O2 -emit-llvm -c -g)

build() {
    local out=$1
    shift
    clang "${cflags[@]}" "$@" "$src/katran/lib/bpf/balancer.bpf.c" -o "$src/balancer.bc" ||
        die "clang failed on balancer.bpf.c ($*)"
    llc -march=bpf -filetype=obj "$src/balancer.bc" -o "$out_dir/$out" ||
        die "llc failed on balancer.bpf.c ($*)"
    echo "built $out_dir/$out"
}

build balancer.bpf.o
# 2^32 - 1 new flows per second per CPU: never reached, every new flow inserted.
build balancer-insert.bpf.o -DMAX_CONN_RATE=4294967295ULL

{
    echo "katran commit: $commit"
    echo "compiler: $(clang --version | head -n1)"
    echo "compile: clang ${cflags[*]//$src/SRC} [-DMAX_CONN_RATE=4294967295ULL] balancer.bpf.c | llc -march=bpf -filetype=obj"
} >"$out_dir/katran-source.txt"
