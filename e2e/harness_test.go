//go:build e2e

package e2e

import (
	"net"
	"testing"
	"time"
)

// TestHarness checks the parts of the harness that later suites (upstream
// faults, containerd) lean on but TestPullThrough does not exercise.
func TestHarness(t *testing.T) {
	bed := newTestbed(t)

	t.Run("egress trap catches non-loopback traffic", func(t *testing.T) {
		// .invalid never resolves; the trap must see the request before
		// any DNS lookup would happen.
		out, code := bed.crane(t, "digest", "registry.e2e.invalid/pullgate/probe:v1")
		if code == 0 {
			t.Fatalf("crane digest of a non-loopback image succeeded:\n%s", out)
		}
		// crane tries a HEAD, then falls back to a GET: one CONNECT each.
		got := bed.egress.take()
		if len(got) == 0 {
			t.Fatalf("egress trap saw nothing; crane said:\n%s", out)
		}
		for _, a := range got {
			if a != "CONNECT registry.e2e.invalid:443" {
				t.Errorf("egress trap saw %q, want only CONNECT registry.e2e.invalid:443", got)
				break
			}
		}
	})

	t.Run("registry restart keeps address and content", func(t *testing.T) {
		reg := bed.startRegistry(t)
		dgst := bed.pushImage(t, reg.Ref("e2e/restart:v1"))
		addr := reg.Addr

		reg.Stop(t)
		if reg.Running() {
			t.Fatal("registry still running after Stop")
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still accepts connections after Stop", addr)
		}

		reg.Start(t)
		if reg.Addr != addr {
			t.Errorf("restarted registry at %s, want %s", reg.Addr, addr)
		}
		if got := bed.craneDigest(t, reg.Ref("e2e/restart:v1")); got != dgst {
			t.Errorf("after restart e2e/restart:v1 = %s, want %s", got, dgst)
		}
	})
}
