package proxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

// configuredSet is the configured() of route for a fixed set of names.
func configuredSet(names ...string) func(string) bool {
	return func(r string) bool {
		for _, n := range names {
			if n == r {
				return true
			}
		}
		return false
	}
}

// errCode returns the OCI code of err, or "" for nil.
func errCode(err error) string {
	if err == nil {
		return ""
	}
	var oe *ociError
	if !errors.As(err, &oe) {
		return "not an ociError: " + err.Error()
	}
	return oe.code
}

func TestRoute(t *testing.T) {
	t.Parallel()
	configured := configuredSet("docker.io", "reg.test", "localhost:5000", "ghcr.io", "[::1]:5000", "localhost")
	tests := []struct {
		name, repo, ns, def string
		want                target
		wantCode            string
	}{
		{name: "ns", repo: "apps/web", ns: "reg.test", want: target{registry: "reg.test", repo: "apps/web", image: "reg.test/apps/web", ns: "reg.test"}},
		{name: "ns upper case", repo: "apps/web", ns: "REG.Test", want: target{registry: "reg.test", repo: "apps/web", image: "reg.test/apps/web", ns: "REG.Test"}},
		{name: "ns :443", repo: "x", ns: "ghcr.io:443", want: target{registry: "ghcr.io", repo: "x", image: "ghcr.io/x", ns: "ghcr.io:443"}},
		{name: "ns docker.io library", repo: "nginx", ns: "docker.io", want: target{registry: "docker.io", repo: "library/nginx", image: "docker.io/library/nginx", ns: "docker.io"}},
		{name: "ns docker alias", repo: "nginx", ns: "registry-1.docker.io", want: target{registry: "docker.io", repo: "library/nginx", image: "docker.io/library/nginx", ns: "registry-1.docker.io"}},
		{name: "ns docker two segments", repo: "bitnami/nginx", ns: "index.docker.io", want: target{registry: "docker.io", repo: "bitnami/nginx", image: "docker.io/bitnami/nginx", ns: "index.docker.io"}},
		{name: "ns wins over prefix", repo: "ghcr.io/x", ns: "reg.test", want: target{registry: "reg.test", repo: "ghcr.io/x", image: "reg.test/ghcr.io/x", ns: "reg.test"}},
		{name: "ns with port", repo: "a", ns: "localhost:5000", want: target{registry: "localhost:5000", repo: "a", image: "localhost:5000/a", ns: "localhost:5000"}},
		{name: "ns ipv6", repo: "a", ns: "[::1]:5000", want: target{registry: "[::1]:5000", repo: "a", image: "[::1]:5000/a", ns: "[::1]:5000"}},
		{name: "prefix", repo: "ghcr.io/org/app", want: target{registry: "ghcr.io", repo: "org/app", image: "ghcr.io/org/app"}},
		{name: "prefix localhost port", repo: "localhost:5000/a/b", want: target{registry: "localhost:5000", repo: "a/b", image: "localhost:5000/a/b"}},
		{name: "prefix localhost", repo: "localhost/a", want: target{registry: "localhost", repo: "a", image: "localhost/a"}},
		{name: "prefix docker", repo: "docker.io/nginx", want: target{registry: "docker.io", repo: "library/nginx", image: "docker.io/library/nginx"}},
		{name: "prefix docker alias", repo: "index.docker.io/library/nginx", want: target{registry: "docker.io", repo: "library/nginx", image: "docker.io/library/nginx"}},
		{name: "default", repo: "library/nginx", def: "docker.io", want: target{registry: "docker.io", repo: "library/nginx", image: "docker.io/library/nginx"}},
		{name: "default single", repo: "nginx", def: "docker.io", want: target{registry: "docker.io", repo: "library/nginx", image: "docker.io/library/nginx"}},
		{name: "default other", repo: "nginx", def: "reg.test", want: target{registry: "reg.test", repo: "nginx", image: "reg.test/nginx"}},
		{name: "first segment not a host", repo: "org/app", def: "reg.test", want: target{registry: "reg.test", repo: "org/app", image: "reg.test/org/app"}},
		{name: "separators", repo: "a_b__c-d--e/f.g", def: "reg.test", want: target{registry: "reg.test", repo: "a_b__c-d--e/f.g", image: "reg.test/a_b__c-d--e/f.g"}},
		{name: "dotted first segment is a host", repo: "a.b_c/g", def: "reg.test", wantCode: "NAME_INVALID"},

		{name: "no default", repo: "nginx", wantCode: "NAME_UNKNOWN"},
		{name: "unknown ns", repo: "x", ns: "evil.example.com", def: "reg.test", wantCode: "NAME_UNKNOWN"},
		{name: "unknown ns port", repo: "x", ns: "reg.test:5000", wantCode: "NAME_UNKNOWN"},
		{name: "unknown prefix", repo: "evil.example.com/x", def: "reg.test", wantCode: "NAME_UNKNOWN"},
		{name: "unknown prefix port", repo: "reg.test:8443/x", def: "reg.test", wantCode: "NAME_UNKNOWN"},
		{name: "metadata ip", repo: "169.254.169.254/latest", def: "reg.test", wantCode: "NAME_UNKNOWN"},
		{name: "empty", repo: "", def: "reg.test", wantCode: "NAME_INVALID"},
		{name: "upper", repo: "Apps/web", def: "reg.test", wantCode: "NAME_INVALID"},
		{name: "dot dot", repo: "a/../b", def: "reg.test", wantCode: "NAME_INVALID"},
		{name: "dot", repo: "./a", def: "reg.test", wantCode: "NAME_INVALID"},
		{name: "double slash", repo: "a//b", def: "reg.test", wantCode: "NAME_INVALID"},
		{name: "trailing slash", repo: "a/", def: "reg.test", wantCode: "NAME_INVALID"},
		{name: "leading slash", repo: "/a", def: "reg.test", wantCode: "NAME_INVALID"},
		{name: "triple underscore", repo: "a___b", def: "reg.test", wantCode: "NAME_INVALID"},
		{name: "too long", repo: strings.Repeat("a", 256), def: "reg.test", wantCode: "NAME_INVALID"},
		{name: "too long with registry", repo: strings.Repeat("a", 250), def: "reg.test", wantCode: "NAME_INVALID"},
		{name: "prefix only", repo: "reg.test/", wantCode: "NAME_INVALID"},
		{name: "prefix bad host", repo: "re_g.test/x", wantCode: "NAME_INVALID"},
		{name: "ns invalid", repo: "x", ns: "a b", wantCode: "NAME_INVALID"},
		{name: "ns path", repo: "x", ns: "reg.test/x", wantCode: "NAME_INVALID"},
		{name: "ns scheme", repo: "x", ns: "https://reg.test", wantCode: "NAME_INVALID"},
		{name: "ns repo invalid", repo: "X", ns: "reg.test", wantCode: "NAME_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := route(tt.repo, tt.ns, tt.def, configured)
			if code := errCode(err); code != tt.wantCode {
				t.Fatalf("route(%q, %q, %q) error = %v (code %q), want code %q", tt.repo, tt.ns, tt.def, err, code, tt.wantCode)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(target{})); diff != "" {
				t.Errorf("route(%q, %q, %q) (-want +got):\n%s", tt.repo, tt.ns, tt.def, diff)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	t.Parallel()
	hex := strings.Repeat("ab", 32)
	tests := []struct {
		in       string
		want     reference
		wantCode string
	}{
		{in: "latest", want: reference{tag: "latest"}},
		{in: "v1.2.3_rc-1", want: reference{tag: "v1.2.3_rc-1"}},
		{in: "_x", want: reference{tag: "_x"}},
		{in: strings.Repeat("t", 128), want: reference{tag: strings.Repeat("t", 128)}},
		{in: "sha256-" + hex + ".sig", want: reference{tag: "sha256-" + hex + ".sig"}},
		{in: "sha256:" + hex, want: reference{digest: digest.Digest("sha256:" + hex)}},
		{in: strings.Repeat("t", 129), wantCode: "TAG_INVALID"},
		{in: "-bad", wantCode: "TAG_INVALID"},
		{in: ".bad", wantCode: "TAG_INVALID"},
		{in: "", wantCode: "TAG_INVALID"},
		{in: "a/b", wantCode: "TAG_INVALID"},
		{in: "a b", wantCode: "TAG_INVALID"},
		{in: "é", wantCode: "TAG_INVALID"},
		{in: "sha256:baddigeststring", wantCode: "DIGEST_INVALID"},
		{in: "sha256:" + strings.ToUpper(hex), wantCode: "DIGEST_INVALID"},
		{in: "sha512:" + hex + hex, wantCode: "DIGEST_INVALID"},
		{in: "md5:x", wantCode: "DIGEST_INVALID"},
		{in: ":", wantCode: "DIGEST_INVALID"},
		{in: "latest:tag", wantCode: "DIGEST_INVALID"},
	}
	for _, tt := range tests {
		got, err := parseReference(tt.in)
		if code := errCode(err); code != tt.wantCode {
			t.Errorf("parseReference(%q) error = %v, want code %q", tt.in, err, tt.wantCode)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(reference{})); diff != "" {
			t.Errorf("parseReference(%q) (-want +got):\n%s", tt.in, diff)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("parseReference(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestSplitReference(t *testing.T) {
	t.Parallel()
	d := "sha256:" + strings.Repeat("0", 64)
	tests := []struct{ in, name, ref string }{
		{"nginx", "nginx", "latest"},
		{"nginx:1.27", "nginx", "1.27"},
		{"reg.test:5000/a/b", "reg.test:5000/a/b", "latest"},
		{"reg.test:5000/a/b:v1", "reg.test:5000/a/b", "v1"},
		{"reg.test/a@" + d, "reg.test/a", d},
		{"reg.test/a:v1@" + d, "reg.test/a", d},
		{"reg.test:5000/a@" + d, "reg.test:5000/a", d},
	}
	for _, tt := range tests {
		name, ref := splitReference(tt.in)
		if name != tt.name || ref != tt.ref {
			t.Errorf("splitReference(%q) = %q, %q; want %q, %q", tt.in, name, ref, tt.name, tt.ref)
		}
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	if got := clip("short"); got != "short" {
		t.Errorf("clip(short) = %q", got)
	}
	long := strings.Repeat("x", 500)
	if got := clip(long); len(got) > 128+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("clip(500 bytes) = %d bytes", len(got))
	}
}
