package policy

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompilePattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "registry.example.com/apps/**", want: "registry.example.com/apps/**"},
		{in: "docker.io/nginx", want: "docker.io/library/nginx"},
		{in: "index.docker.io/nginx", want: "docker.io/library/nginx"},
		{in: "registry-1.docker.io/library/nginx", want: "docker.io/library/nginx"},
		{in: "Docker.IO/nginx", want: "docker.io/library/nginx"},
		{in: "docker.io/*", want: "docker.io/library/*"},
		{in: "docker.io/ngin*", want: "docker.io/library/ngin*"},
		{in: "docker.io/**", want: "docker.io/**"},
		{in: "docker.io/bitnami/*", want: "docker.io/bitnami/*"},
		{in: "**", want: "**"},
		{in: "*/**", want: "*/**"},
		{in: "localhost:5000/a", want: "localhost:5000/a"},
		{in: "*.example.com/a/**/b", want: "*.example.com/a/**/b"},
		{in: "r.example.com:*/a", want: "r.example.com:*/a"},
		{in: "r/a_b.c-d/**/**", want: "r/a_b.c-d/**/**"},
		{in: "[::1]:5000/a", want: "[::1]:5000/a"},
		{in: "[FD00::*]/a", want: "[fd00::*]/a"},
		{in: "[::1]x/a", wantErr: "unexpected characters after IPv6 address"},
		{in: "[::1/a", wantErr: "unterminated IPv6 address"},
		{in: "[]/a", wantErr: "empty IPv6 address"},
		{in: "[::g]/a", wantErr: `character 'g' is not allowed in an IPv6 address`},
		{in: "", wantErr: "empty image pattern"},
		{in: "nginx", wantErr: `image pattern "nginx" names no registry`},
		{in: "**/nginx", wantErr: `"**" cannot stand for the registry`},
		{in: "r**/x", wantErr: `"**" cannot stand for the registry`},
		{in: "r/**x", wantErr: `segment "**x": "**" must be a whole segment`},
		{in: "r/a***", wantErr: `"**" must be a whole segment`},
		{in: "r/***", wantErr: `"**" must be a whole segment`},
		{in: "r/App", wantErr: `segment "App": repository names are lower-case`},
		{in: "r/a:latest", wantErr: "patterns name repositories, not tags or digests"},
		{in: "r/a@sha256:00", wantErr: "patterns name repositories, not tags or digests"},
		{in: "r//a", wantErr: "empty path segment"},
		{in: "r/a/", wantErr: "empty path segment"},
		{in: "/a", wantErr: "empty registry"},
		{in: "r:/a", wantErr: "empty port"},
		{in: ":5000/a", wantErr: "empty registry host"},
		{in: "r:5x/a", wantErr: `port character 'x' is not allowed`},
		{in: "r/a b", wantErr: `character ' ' is not allowed`},
		{in: "r/a?", wantErr: `character '?' is not allowed`},
		{in: "r!/a", wantErr: `registry "r!": character '!' is not allowed`},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("compilePattern(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || p.text != tt.want {
			t.Errorf("compilePattern(%q) = %q, %v; want %q", tt.in, p.text, err, tt.want)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		name    string
		want    bool
	}{
		{"r/a", "r/a", true},
		{"r/a", "r/ab", false},
		{"r/a", "r/a/b", false},
		{"r/a", "s/a", false},
		{"r/*", "r/a", true},
		{"r/*", "r/a/b", false},
		{"r/a*", "r/a", true},
		{"r/a*", "r/abc", true},
		{"r/a*", "r/ba", false},
		{"r/*a*b*", "r/xaxxbx", true},
		{"r/*a*b*", "r/xbxa", false},
		{"r/a*c", "r/abcbc", true},
		{"r/a*c", "r/abcb", false},
		{"r/*/c", "r/b/c", true},
		{"r/*/c", "r/b/x/c", false},
		{"r/**", "r/a", true},
		{"r/**", "r/a/b/c", true},
		{"r/**", "r", false},
		{"r/**", "s/a", false},
		{"r/a/**", "r/a", false},
		{"r/a/**", "r/ab/c", false},
		{"r/a/**/b", "r/a/x/b", true},
		{"r/a/**/b", "r/a/x/y/b", true},
		{"r/a/**/b", "r/a/b", false},
		{"r/a/**/b", "r/a/b/b", true},
		{"r/a/**/b", "r/a/x/b/c", false},
		{"r/**/b/**/c", "r/x/b/y/c", true},
		{"r/**/b/**/c", "r/x/b/c", false},
		{"r/**/b/**/c", "r/b/b/b/c", true},
		{"r/**/**", "r/a", false},
		{"r/**/**", "r/a/b", true},
		{"r/**/*x", "r/a/bx", true},
		{"r/**/*x", "r/a/b/x", true},
		{"r/**/*x", "r/a/b", false},
		{"**", "r/a", true},
		{"**", "r/a/b/c", true},
		{"*/**", "r/a", true},
		{"*.example.com/a", "registry.example.com/a", true},
		{"*.example.com/a", "example.com/a", false},
		{"localhost:*/a", "localhost:5000/a", true},
		{"localhost:*/a", "localhost/a", false},
		{"docker.io/nginx", "docker.io/library/nginx", true},
		{"docker.io/*", "docker.io/library/redis", true},
		{"docker.io/*", "docker.io/bitnami/redis", false},
		{"docker.io/**", "docker.io/bitnami/redis", true},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.pattern)
		if err != nil {
			t.Fatalf("compilePattern(%q) error: %v", tt.pattern, err)
		}
		if got := p.match(tt.name); got != tt.want {
			t.Errorf("pattern %q match(%q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
		if got := referenceRegexp(t, &p).MatchString(tt.name); got != tt.want {
			t.Errorf("reference regexp of %q match(%q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

// referenceRegexp translates a compiled pattern into an anchored regular
// expression, an independent implementation of the same semantics.
func referenceRegexp(tb testing.TB, p *pattern) *regexp.Regexp {
	tb.Helper()
	var parts []string
	for _, s := range p.segs {
		switch s.kind {
		case segAny:
			parts = append(parts, `[^/]*(?:/[^/]*)*`)
		case segAnyStar:
			// Folded into segAny above.
		case segGlob:
			lits := strings.Split(s.glob, "*")
			for i := range lits {
				lits[i] = regexp.QuoteMeta(lits[i])
			}
			parts = append(parts, strings.Join(lits, `[^/]*`))
		}
	}
	return regexp.MustCompile("^" + strings.Join(parts, "/") + "$")
}

func TestSpecificity(t *testing.T) {
	t.Parallel()
	// Each pattern is more specific than the next.
	ordered := []string{
		"docker.io/library/nginx",
		"docker.io/library/ngin*",
		"docker.io/library/*x",
		"docker.io/library/*",
		"docker.io/library/**",
		"docker.io/**/*",
		"docker.io/**/**",
		"*/**",
		"**",
	}
	for i := 0; i+1 < len(ordered); i++ {
		a, errA := compilePattern(ordered[i])
		b, errB := compilePattern(ordered[i+1])
		if errA != nil || errB != nil {
			t.Fatalf("compilePattern: %v, %v", errA, errB)
		}
		if !a.spec.moreSpecific(b.spec) || b.spec.moreSpecific(a.spec) {
			t.Errorf("%q (%+v) is not more specific than %q (%+v)", a.text, a.spec, b.text, b.spec)
		}
	}
}

func TestIntersect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"r/x/*/y", "r/x/y/*", true},
		{"r/a/x/*", "r/a/y/*", false},
		{"r/a*", "r/*a", true},
		{"r/a*/x", "r/b*/x", false},
		{"r/a/**/b", "r/a/b/**", true},
		{"r/a/**", "r/a", false},
		{"r/**/c", "r/a/*", true},
		{"r/**/c", "r/a/b", false},
		{"r/*", "r/*/*", false},
		{"r/**", "r/*/*/*", true},
		{"**", "r/a", true},
		{"*/a", "r/*", true},
		{"*.example.com/a", "registry.*/a", true},
		{"*.example.com/a", "*.example.org/a", false},
		{"r/a*b*c", "r/*c*b*a", false},
		{"r/a*b*c", "r/*b*c", true},
		{"r/ab*", "r/*ba", true},
		{"r/abc*", "r/*abd", true},
		{"r/abc", "r/*abd", false},
	}
	for _, tt := range tests {
		a, errA := compilePattern(tt.a)
		b, errB := compilePattern(tt.b)
		if errA != nil || errB != nil {
			t.Fatalf("compilePattern: %v, %v", errA, errB)
		}
		for _, pair := range [][2]*pattern{{&a, &b}, {&b, &a}} {
			example, got := intersect(pair[0], pair[1])
			if got != tt.want {
				t.Errorf("intersect(%q, %q) = %v, want %v", pair[0].text, pair[1].text, got, tt.want)
				continue
			}
			if got && (!pair[0].match(example) || !pair[1].match(example)) {
				t.Errorf("intersect(%q, %q) example %q does not match both", pair[0].text, pair[1].text, example)
			}
			if got && !mayIntersect(pair[0], pair[1]) {
				t.Errorf("mayIntersect(%q, %q) = false, but they intersect", pair[0].text, pair[1].text)
			}
		}
	}
}

func TestGlobIntersect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"*", "*", true},
		{"a", "a", true},
		{"a", "b", false},
		{"a*", "*a", true},
		{"a*b", "*c", false},
		{"*x*", "ab", false},
		{"*x*", "axb", true},
	}
	for _, tt := range tests {
		example, got := globIntersect(tt.a, tt.b)
		if got != tt.want {
			t.Errorf("globIntersect(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			continue
		}
		if got && (example == "" || !globMatch(tt.a, example) || !globMatch(tt.b, example)) {
			t.Errorf("globIntersect(%q, %q) example %q is not a non-empty common match", tt.a, tt.b, example)
		}
	}
}

func TestNormalizeRegistry(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"docker.io", "docker.io"},
		{"index.docker.io", "docker.io"},
		{"registry-1.docker.io", "docker.io"},
		{"Index.Docker.IO", "docker.io"},
		{"GHCR.io", "ghcr.io"},
		{"registry.k8s.io:443", "registry.k8s.io:443"},
		{"localhost:5000", "localhost:5000"},
		{"docker.io:443", "docker.io:443"},
	}
	for _, tt := range tests {
		if got := NormalizeRegistry(tt.in); got != tt.want {
			t.Errorf("NormalizeRegistry(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeImage(t *testing.T) {
	t.Parallel()
	tests := []struct{ registry, repository, want string }{
		{"docker.io", "nginx", "docker.io/library/nginx"},
		{"index.docker.io", "nginx", "docker.io/library/nginx"},
		{"registry-1.docker.io", "library/nginx", "docker.io/library/nginx"},
		{"docker.io", "bitnami/redis", "docker.io/bitnami/redis"},
		{"ghcr.io", "nginx", "ghcr.io/nginx"},
		{"GHCR.IO", "org/app", "ghcr.io/org/app"},
		{"localhost:5000", "a/b/c", "localhost:5000/a/b/c"},
	}
	for _, tt := range tests {
		got := NormalizeImage(tt.registry, tt.repository)
		if got != tt.want {
			t.Errorf("NormalizeImage(%q, %q) = %q, want %q", tt.registry, tt.repository, got, tt.want)
		}
		if err := checkImage(got); err != nil {
			t.Errorf("checkImage(NormalizeImage(%q, %q)) = %v", tt.registry, tt.repository, err)
		}
	}
}

func TestCheckImage(t *testing.T) {
	t.Parallel()
	valid := []string{"docker.io/library/nginx", "r/a", "localhost:5000/a/b/c", "r.example.com/a_b/c-d/e.f", "[::1]/a", "[fd00::1]:5000/a/b"}
	invalid := []string{
		"", "nginx", "docker.io/nginx", "index.docker.io/library/nginx", "Docker.io/library/nginx",
		"docker.io/library/Nginx", "r//a", "r/a/", "/a", "r/", "r/a:latest", "r/a@sha256:00",
		"localhost:/a", "localhost:50a/b", ":5000/a", "r/a b", "r/a\n",
		"[::1/a", "[::1]5000/a", "[]/a", "[FD00::1]/a", "[::1]:/a",
	}
	for _, name := range valid {
		if err := checkImage(name); err != nil {
			t.Errorf("checkImage(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range invalid {
		if err := checkImage(name); !errors.Is(err, ErrInvalidImage) {
			t.Errorf("checkImage(%q) = %v, want ErrInvalidImage", name, err)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	known := []string{"images", "maxSignatures", "maxSignatureBytes", "githubWorkflowRef", "githubWorkflowRepository", "tls", "tuf", "enforce", "audit"}
	tests := []struct{ in, want string }{
		{"image", "images"},
		{"maxSignature", "maxSignatures"},
		{"githubWorkflowRepo", "githubWorkflowRepository"},
		{"githubWorkflowRf", "githubWorkflowRef"},
		{"tsl", "tls"},
		{"TLS", "tls"},
		{"enforcing", "enforce"},
		{"zzz", ""},
		{"a", ""},
		{strings.Repeat("x", 100), ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, known); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if diff := cmp.Diff(3, editDistance("kitten", "sitting")); diff != "" {
		t.Errorf("editDistance mismatch (-want +got):\n%s", diff)
	}
}
