// Package e2e is pullgate's end-to-end suite: it runs the built pullgate
// binary against real third-party software only. Debian's docker-registry
// (distribution 2.8) is the upstream, images are built with the crane CLI
// and signed by the real cosign v2 and v3 CLIs, and every pull goes
// through `pullgate serve` on a loopback port. Nothing is mocked; unit
// tests own in-memory registries and fake Sigstore.
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
// skips. Every process binds 127.0.0.1 only, runs with a scratch HOME,
// and has its HTTP(S) proxy pointed at an in-process trap that fails the
// suite if anything tries to reach beyond loopback.
package e2e
