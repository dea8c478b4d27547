#!/usr/bin/env bash
# Installs, idempotently, the real third-party software the e2e suite runs:
#   apt:        docker-registry (distribution 2.8), containerd (+ ctr, runc)
#   go install: crane v0.22.1, cosign v2.6.5, cosign v3.1.3, crictl v1.37.0
#   go build:   the OCI distribution-spec conformance suite (its own module,
#               built in the module cache so its dependencies never touch
#               pullgate's go.mod)
# Go tools go to $PULLGATE_TOOLS/<tool>-<version>/ so a version bump
# installs the new one next to the old. Fails loudly if anything is missing.
set -euo pipefail

TOOLS=${PULLGATE_TOOLS:-$HOME/.cache/pullgate/tools}
mkdir -p "$TOOLS"

apt_missing=()
command -v docker-registry >/dev/null 2>&1 || apt_missing+=(docker-registry)
{ command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1; } || apt_missing+=(containerd)
if ((${#apt_missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "install-tools: apt-get install ${apt_missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

go_tool() { # <dir> <binary> <module@version>
  local dir="$TOOLS/$1"
  if [ ! -x "$dir/$2" ]; then
    echo "install-tools: go install $3"
    GOBIN="$dir" go install "$3"
  fi
}
go_tool crane-v0.22.1  crane  github.com/google/go-containerregistry/cmd/crane@v0.22.1
go_tool cosign-v2.6.5  cosign github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5
go_tool cosign-v3.1.3  cosign github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3
go_tool crictl-v1.37.0 crictl sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0
go_tool golangci-lint-v2.15.0 golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

CONFORMANCE_MOD=github.com/opencontainers/distribution-spec/conformance
CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111
conformance_dir="$TOOLS/conformance-$CONFORMANCE_VERSION"
if [ ! -x "$conformance_dir/conformance" ]; then
  echo "install-tools: go build $CONFORMANCE_MOD@$CONFORMANCE_VERSION"
  # Outside any module (and workspace), so nothing is added to a go.mod.
  src=$(cd "$TOOLS" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$CONFORMANCE_MOD@$CONFORMANCE_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] && [ -f "$src/go.mod" ] || { echo "install-tools: cannot download $CONFORMANCE_MOD@$CONFORMANCE_VERSION" >&2; exit 1; }
  mkdir -p "$conformance_dir"
  (cd "$src" && GOWORK=off GOFLAGS=-buildvcs=false go build -trimpath -o "$conformance_dir/conformance.tmp" . &&
     mv "$conformance_dir/conformance.tmp" "$conformance_dir/conformance")
fi

for b in docker-registry containerd ctr runc "$TOOLS/crane-v0.22.1/crane" "$TOOLS/cosign-v2.6.5/cosign" \
         "$TOOLS/golangci-lint-v2.15.0/golangci-lint" \
         "$TOOLS/cosign-v3.1.3/cosign" "$TOOLS/crictl-v1.37.0/crictl" "$conformance_dir/conformance"; do
  command -v "$b" >/dev/null 2>&1 || { echo "install-tools: $b is missing after install" >&2; exit 1; }
done
echo "install-tools: all tools present in $TOOLS"
