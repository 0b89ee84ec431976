#!/usr/bin/env bash
# Installs what the local stack needs on a fresh Debian machine, and nothing when it is
# all there (then it prints nothing and takes well under a second: no network, no JVM).
# Non-interactive; run as root, or as a user with sudo.
#   - nginx, capnp, kcat: Debian packages nginx, capnproto, kcat
#   - docker-compose: Debian package docker-compose, to validate docker-compose.yml offline
#   - Kafka broker jars in .tools/kafka/<version>/libs, from Maven Central via etc/kafka/pom.xml
# Java 17+ and Maven are prerequisites, not installed here.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "ensure-tools: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

# Debian's nginx lives in /usr/sbin, which a non-root PATH may lack.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing_pkgs=()
have nginx || missing_pkgs+=(nginx)
have capnp || missing_pkgs+=(capnproto)
have kcat  || missing_pkgs+=(kcat)
if [ "${#missing_pkgs[@]}" -gt 0 ]; then
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    nginx capnproto kcat >/dev/null
  for p in "${missing_pkgs[@]}"; do echo "installed $p (apt)"; done
fi

# Without recommends: they would pull in the Docker engine (docker.io), which
# `docker-compose config` (all test/compose does with it) does not need.
if ! have docker-compose; then
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    docker-compose >/dev/null
  echo "installed docker-compose (apt)"
fi

# Kafka broker jars, one directory per version (.tools/kafka/<version>/libs), so that a
# change of the pinned version in etc/kafka/pom.xml installs the new jars instead of
# keeping whatever an older checkout left. Both the pinned version and the compatibility
# one (kafka.compat.version) are installed, so that CI's 3.9 check needs no extra step;
# KAFKA_VERSION, when set, adds its version. A version counts as present when its
# kafka_2.13-<version>.jar is there; maven writes into a temp dir that is renamed at the
# end, so an interrupted install is never taken for a complete one.
pom_prop() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" etc/kafka/pom.xml; }
kafka_versions=("$(pom_prop kafka.version)" "$(pom_prop kafka.compat.version)")
[ -n "${KAFKA_VERSION:-}" ] && kafka_versions+=("$KAFKA_VERSION")
for v in "${kafka_versions[@]}"; do
  [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad Kafka version '$v' (KAFKA_VERSION or etc/kafka/pom.xml)"
  dest=".tools/kafka/$v/libs"
  [ -f "$dest/kafka_2.13-$v.jar" ] && continue
  command -v java >/dev/null 2>&1 || die "java not found: install a JDK 17+ (e.g. apt-get install -y openjdk-17-jre-headless)"
  command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven (e.g. apt-get install -y maven)"
  tmp="$dest.partial"
  rm -rf "$tmp" "$dest"
  # Maven prints colour codes even with -q; keep its output for the failure case only.
  if ! mvn_out=$(mvn -B -q -Dstyle.color=never -f etc/kafka/pom.xml -Dkafka.version="$v" \
      dependency:copy-dependencies -DoutputDirectory="$PWD/$tmp" -DincludeScope=runtime 2>&1); then
    echo "$mvn_out" >&2
    die "mvn dependency:copy-dependencies failed for Kafka $v (see above)"
  fi
  [ -f "$tmp/kafka_2.13-$v.jar" ] || die "maven did not deliver kafka_2.13-$v.jar"
  mv "$tmp" "$dest"
  echo "installed Kafka $v jars in $dest (maven)"
done
# The layout before per-version directories: jars of an unknown version, never read again.
rm -rf .tools/kafka/libs
