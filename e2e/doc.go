// Package e2e is pullgate's end-to-end suite: it runs the built pullgate
// binary against real third-party software only. Debian's docker-registry
// (distribution 2.8) is the upstream, images are built with the crane CLI
// and signed by the real cosign v2 and v3 CLIs, and every pull goes
// through `pullgate serve` on a loopback port: by crane and cosign, by
// Debian's containerd 1.6 through ctr and crictl (the kubelet's CRI path)
// with the fail-closed hosts.toml deploy/ ships, and by the OCI
// distribution-spec conformance suite (read-only). Nothing is mocked; unit
// tests own in-memory registries and fake Sigstore.
//
// The files: testbed_test.go (tools, hermetic environment, egress trap),
// process_test.go (daemons stopped by PID), registry_test.go,
// pullgate_test.go, containerd_test.go (the daemons), cosign_test.go and
// image_test.go (CLI helpers); the tests are in pull_test.go (crane and
// cosign), containerd_pull_test.go, conformance_test.go, faults_test.go
// (the upstream stopped mid-test) and harness_test.go.
//
// The tests carry the e2e build tag, so `go test ./...` sees a package
// with no tests. Run the suite with
//
//	make e2e
//
// which builds bin/pullgate, installs the tools (e2e/install-tools.sh) and
// runs
//
//	PULLGATE_BIN=$PWD/bin/pullgate go test -tags e2e -count=1 -v ./e2e/
//
// Tools are found through PULLGATE_BIN and PULLGATE_TOOLS (default
// $HOME/.cache/pullgate/tools); a missing tool fails the suite, it never
// skips. containerd needs root. Every process binds 127.0.0.1 only, runs with a scratch HOME,
// and has its HTTP(S) proxy pointed at an in-process trap that fails the
// suite if anything tries to reach beyond loopback.
package e2e
