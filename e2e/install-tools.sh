#!/usr/bin/env bash
# Installs, idempotently, the real third-party software the e2e suite runs:
#   apt:        docker-registry (distribution 2.8), containerd (+ ctr, runc)
#   go install: crane v0.22.1, cosign v2.6.5, cosign v3.1.3, crictl v1.37.0
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

for b in docker-registry containerd ctr runc "$TOOLS/crane-v0.22.1/crane" "$TOOLS/cosign-v2.6.5/cosign" \
         "$TOOLS/cosign-v3.1.3/cosign" "$TOOLS/crictl-v1.37.0/crictl"; do
  command -v "$b" >/dev/null 2>&1 || { echo "install-tools: $b is missing after install" >&2; exit 1; }
done
echo "install-tools: all tools present in $TOOLS"
