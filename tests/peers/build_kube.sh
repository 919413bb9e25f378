#!/usr/bin/env bash
# Builds a real Kubernetes control plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl),
# etcd and kwok from the Go module proxy, through the wrapper modules beside this script (kube/, etcd/, kwok/),
# into a cache directory outside the repository:
#
#   ${QUEUESCALE_PEERS_CACHE:-$HOME/.cache/queuescale/peers}/kube-<version>/bin/
#
# Idempotent: when every binary is there with a stamp matching the inputs (the wrapper modules' go.mod/go.sum,
# SCRIPT_VERSION, the Go version and platform), it exits at once. Otherwise it builds into a temporary directory
# beside the cache and renames it into place, so an interrupted build never leaves half a cache.
#
# Prints progress on stderr and, on success, the bin directory on stdout (one line).
#
# Usage: tests/peers/build_kube.sh [--check]   (--check: exit 0 if the cache is complete, 1 if not; no build)
# Environment: QUEUESCALE_PEERS_CACHE, GO (default: go on PATH, else /usr/local/go/bin/go),
#              QUEUESCALE_PEERS_BUILD_P (parallel compile jobs, default 2).
set -euo pipefail

# The whole script is one function, called on the last line: bash parses it in full before running it, so
# editing this file during a (long) build cannot derail the build under way.
main() {
  # Bump when the build itself changes (flags, tags, binary list): it invalidates every cache.
  SCRIPT_VERSION=1

  HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  MODULES=(kube etcd kwok)
  BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)

  log() { printf '[build_kube %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
  die() { printf 'build_kube: ERROR: %s\n' "$*" >&2; exit 1; }

  # The version a wrapper module requires of a module, read from its go.mod (no go command: keeps the warm path fast).
  required_version() { # <module dir> <module path>
    local v
    v=$(awk -v m="$2" '($1 == m && $2 ~ /^v/) {print $2; exit} ($1 == "require" && $2 == m) {print $3; exit}' \
      "$HERE/$1/go.mod")
    [[ -n $v ]] || die "$1/go.mod does not require $2"
    printf '%s' "$v"
  }

  KUBE_VERSION=$(required_version kube k8s.io/kubernetes)
  ETCD_VERSION=$(required_version etcd go.etcd.io/etcd/server/v3)
  KWOK_VERSION=$(required_version kwok sigs.k8s.io/kwok)

  CACHE_ROOT=${QUEUESCALE_PEERS_CACHE:-$HOME/.cache/queuescale/peers}
  DEST=$CACHE_ROOT/kube-$KUBE_VERSION
  STAMP=$DEST/stamp

  if [[ -z ${GO:-} ]]; then
    GO=$(command -v go || true)
    [[ -n $GO ]] || GO=/usr/local/go/bin/go
  fi

  # Everything the binaries depend on, one line each. The toolchain line comes from $GOROOT/VERSION when it can
  # (reading a file is cheaper than starting the go command).
  inputs() {
    local goroot goversion
    goroot=$(dirname "$(dirname "$(readlink -f "$GO" 2>/dev/null || echo "$GO")")")
    if [[ -r $goroot/VERSION ]]; then
      goversion=$(head -n1 "$goroot/VERSION")
    else
      goversion=$("$GO" env GOVERSION 2>/dev/null || echo unknown)
    fi
    echo "script=$SCRIPT_VERSION"
    echo "go=$goversion $(uname -s)/$(uname -m)"
    echo "kubernetes=$KUBE_VERSION etcd=$ETCD_VERSION kwok=$KWOK_VERSION"
    (cd "$HERE" && sha256sum kube/go.mod kube/go.sum etcd/go.mod etcd/go.sum kwok/go.mod kwok/go.sum)
  }

  cache_complete() {
    local b
    [[ -f $STAMP ]] || return 1
    for b in "${BINARIES[@]}"; do [[ -x $DEST/bin/$b ]] || return 1; done
    [[ "$(cat "$STAMP")" == "$(inputs)" ]]
  }

  if cache_complete; then
    echo "$DEST/bin"
    exit 0
  fi
  if [[ ${1:-} == --check ]]; then
    exit 1
  fi

  [[ -x $GO ]] || command -v "$GO" >/dev/null || die "no go command (set GO=/path/to/go)"
  mkdir -p "$CACHE_ROOT"

  # One build at a time per version; a second caller waits, then finds the cache complete.
  exec 9>"$CACHE_ROOT/.kube-$KUBE_VERSION.lock"
  if ! flock -n 9; then
    log "another build of kube-$KUBE_VERSION is running; waiting for it"
    flock 9
  fi
  if cache_complete; then
    echo "$DEST/bin"
    exit 0
  fi

  export GOTOOLCHAIN=local          # never fetch another toolchain: the go lines must suit the installed Go
  export CGO_ENABLED=0
  export GOFLAGS="-mod=readonly -buildvcs=false -p=${QUEUESCALE_PEERS_BUILD_P:-2}"  # go.sum is committed: use it as is
  export GOWORK=off

  # Leftovers of a build that was killed outright (SIGKILL skips the trap below): safe to drop under the lock.
  rm -rf "$CACHE_ROOT/.kube-$KUBE_VERSION.tmp."* "$CACHE_ROOT/.kube-$KUBE_VERSION.old."*
  TMP=$(mktemp -d "$CACHE_ROOT/.kube-$KUBE_VERSION.tmp.XXXXXX")
  cleanup() { rm -rf "$TMP"; }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -p "$TMP/bin"

  # Fetch each wrapper module's dependencies first, so that a refusal from the proxy is reported as such, naming
  # the module and version, rather than surfacing as a compile error.
  download() { # <module dir>
    local out
    log "fetching the modules of tests/peers/$1 (go mod download)"
    if ! out=$(cd "$HERE/$1" && "$GO" mod download 2>&1); then
      printf '%s\n' "$out" >&2
      die "could not fetch a module that tests/peers/$1 needs (refused by the Go module proxy $("$GO" env GOPROXY), or not matching go.sum):
$(printf '%s\n' "$out" | grep -oE '[A-Za-z0-9._~/-]+@v[0-9][^:[:space:]]*(: [^[:cntrl:]]*)?' | sort -u | sed 's/^/    /')"
    fi
  }

  # The commit time of a module version, as the proxy records it: a reproducible build date.
  module_time() { # <module dir> <module@version>
    (cd "$HERE/$1" && "$GO" mod download -json "$2" 2>/dev/null) |
      sed -n 's/^[[:space:]]*"Time": "\([^"]*\)".*/\1/p' | head -n1
  }

  build() { # <module dir> <ldflags> <packages...>
    local dir=$1 ldflags=$2 start=$SECONDS
    shift 2
    log "building $* (tests/peers/$dir)"
    (cd "$HERE/$dir" && "$GO" build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" -o "$TMP/bin/" "$@") ||
      die "go build failed in tests/peers/$dir for: $*"
    log "built in $((SECONDS - start)) s"
  }

  START=$SECONDS
  log "kube-$KUBE_VERSION: building into $DEST (inputs changed or cache missing)"
  for m in "${MODULES[@]}"; do download "$m"; done

  # Version stamps, as kubernetes' hack/lib/version.sh sets them (there is no git commit to name: the proxy's zip
  # has none, so gitCommit/gitTreeState stay unset, as in any build without git).
  minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
  major=${KUBE_VERSION#v}; major=${major%%.*}
  kube_date=$(module_time kube "k8s.io/kubernetes@$KUBE_VERSION")
  kube_ldflags="all=-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    kube_ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    [[ -z $kube_date ]] || kube_ldflags+=" -X $pkg.buildDate=$kube_date"
  done

  build kube "$kube_ldflags" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  # etcd's version is a constant of go.etcd.io/etcd/api/v3/version; only GitSHA is stamped (with the tag: no commit).
  build etcd "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" go.etcd.io/etcd/server/v3
  [[ -x $TMP/bin/v3 ]] && mv "$TMP/bin/v3" "$TMP/bin/etcd"
  [[ -x $TMP/bin/server ]] && mv "$TMP/bin/server" "$TMP/bin/etcd"
  # kwok's version is a variable already set to the release in pkg/consts.
  build kwok "-s -w" sigs.k8s.io/kwok/cmd/kwok

  for b in "${BINARIES[@]}"; do [[ -x $TMP/bin/$b ]] || die "the build did not produce $b"; done
  inputs >"$TMP/stamp"

  # Swap in: move any stale cache aside, rename the new one into place, then drop the stale one.
  OLD=
  if [[ -e $DEST ]]; then
    OLD="$CACHE_ROOT/.kube-$KUBE_VERSION.old.$$"
    mv "$DEST" "$OLD"
  fi
  mv "$TMP" "$DEST"
  trap - EXIT
  [[ -z $OLD ]] || rm -rf "$OLD"
  log "kube-$KUBE_VERSION ready in $DEST/bin after $((SECONDS - START)) s"
  echo "$DEST/bin"
}

main "$@"
exit
