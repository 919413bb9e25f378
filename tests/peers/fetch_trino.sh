#!/usr/bin/env bash
# Fetch a runnable Trino server from Maven Central into a cache outside the repository and print its path.
#
#   tests/peers/fetch_trino.sh            -> ${QUEUESCALE_PEERS_CACHE:-~/.cache/queuescale/peers}/trino-476
#
# What it fetches: io.trino:trino-server:<v>:tar.gz (821 MB for 476) and unpacks only bin/, lib/ and the
# plugins the tests use (tpch, memory, blackhole, jmx, and the resource-group and password plugins), about
# 300 MB on disk. The smaller split (io.trino:trino-server-core:476:tar.gz, 186 MB, plus the plugin zips
# io.trino:trino-tpch:476:zip and trino-memory, 14 MB each) cannot be used: Maven Central serves no
# io.trino:trino-blackhole:476 (neither zip, jar nor pom; the same for 468-475), and the tests need the
# blackhole connector for long queries that hold no CPU.
#
# Idempotent and atomic: a finished install carries a marker naming what it holds; a warm run only reads the
# marker. A cold run unpacks into a temporary directory beside the destination and renames it into place,
# so an interrupted run leaves nothing half-made under the final name. Maven keeps the tarball in its local
# repository (~/.m2), so rebuilding the cache later downloads nothing.
#
# Environment: TRINO_VERSION (default 476), TRINO_PLUGINS (default below), QUEUESCALE_PEERS_CACHE,
# MVN (default mvn), MAVEN_REPO_LOCAL (optional -Dmaven.repo.local).
set -euo pipefail

version="${TRINO_VERSION:-476}"
plugins="${TRINO_PLUGINS:-tpch memory blackhole jmx resource-group-managers password-authenticators}"
cache="${QUEUESCALE_PEERS_CACHE:-$HOME/.cache/queuescale/peers}"
dest="$cache/trino-$version"
marker="$dest/.queuescale-complete"
artifact="io.trino:trino-server:$version:tar.gz"
want="$artifact plugins=$plugins"

# Warm path: nothing but a file read.
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
  printf '%s\n' "$dest"
  exit 0
fi

mvn="${MVN:-mvn}"
command -v "$mvn" >/dev/null 2>&1 || { echo "fetch_trino: Maven ($mvn) not found" >&2; exit 2; }
# The dependency plugin pinned: Debian's Maven would otherwise pick an old default that needs a project.
dep_plugin="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
mvn_args=(-B -ntp)
if [ -n "${MAVEN_REPO_LOCAL:-}" ]; then
  mvn_args+=("-Dmaven.repo.local=$MAVEN_REPO_LOCAL")
fi

mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.trino-$version.tmp.XXXXXX")"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

fetch() { # fetch ARTIFACT: copy one artifact (g:a:v:type) into $tmp/dl, or fail naming it
  local artifact="$1" log="$tmp/mvn.log"
  if ! (cd "$tmp" && "$mvn" "${mvn_args[@]}" "$dep_plugin:copy" -Dartifact="$artifact" \
    -DoutputDirectory="$tmp/dl" -Dmdep.useBaseVersion=true) >"$log" 2>&1; then
    echo "fetch_trino: Maven could not fetch $artifact; the end of its output:" >&2
    grep -E '^\[ERROR\]' "$log" | head -n 8 >&2 || tail -n 20 "$log" >&2
    exit 1
  fi
}

fetch "$artifact"

top="trino-server-$version"
# The tarball stores each jar once and hard-links its other copies to the first one, often in a plugin the
# tests do not use: list the members once, add the targets of the wanted links, and extract just those.
if ! python3 - "$tmp/dl/$top.tar.gz" "$tmp" "$top" $plugins 2>"$tmp/unpack.log" <<'PY'
import sys
import tarfile

archive, out, top, *plugins = sys.argv[1:]
prefixes = tuple(f"{top}/{d}/" for d in ["bin", "lib", *(f"plugin/{p}" for p in plugins)])
wanted: set[str] = set()
with tarfile.open(archive, "r|gz") as tar:
    for m in tar:
        if m.name.startswith(prefixes):
            wanted.add(m.name)
            if m.islnk():
                wanted.add(m.linkname)
for d in prefixes:
    if not any(n.startswith(d) for n in wanted):
        sys.exit(f"no {d} in {archive}")
with tarfile.open(archive, "r|gz") as tar:
    for m in tar:
        if m.name in wanted:
            tar.extract(m, out, filter="tar")
PY
then
  echo "fetch_trino: could not unpack $artifact:" >&2
  tail -n 5 "$tmp/unpack.log" >&2
  exit 1
fi
# Drop the plugins that were only there as hard-link targets (the wanted copies keep the data).
for d in "$tmp/$top/plugin"/*; do
  case " $plugins " in *" $(basename "$d") "*) ;; *) rm -rf "$d" ;; esac
done
server="$tmp/$top"
rm -f "$tmp/dl/$top.tar.gz"
printf '%s' "$want" >"$server/.queuescale-complete"

# Swap into place. A concurrent run may have won the race: then keep its copy.
if [ -e "$dest" ]; then
  old="$(mktemp -d "$cache/.trino-$version.old.XXXXXX")"
  mv "$dest" "$old/" 2>/dev/null || true
  rm -rf "$old"
fi
if ! mv -T "$server" "$dest" 2>/dev/null; then
  [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] || { echo "fetch_trino: could not move into $dest" >&2; exit 1; }
fi
printf '%s\n' "$dest"
