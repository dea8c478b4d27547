package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// matchYAML builds a configuration with one rule per {name, images}
// pair, none requiring signatures. The first policy starts at line 7
// and each takes three lines, so the images of the second are at line 11.
func matchYAML(rules ...[2]string) string {
	var b strings.Builder
	b.WriteString(`upstreams:
  - {registry: registry.example.com, endpoint: https://registry.example.com}
  - {registry: docker.io, endpoint: https://registry-1.docker.io}
  - {registry: ghcr.io, endpoint: https://ghcr.io}
  - {registry: localhost:5000, endpoint: http://localhost:5000}
`)
	if len(rules) > 0 {
		b.WriteString("policies:\n")
	}
	for _, r := range rules {
		fmt.Fprintf(&b, "  - name: %s\n    images: %s\n    signatures: {threshold: 0}\n", r[0], r[1])
	}
	return b.String()
}

// matchRules are the rules TestMatch uses.
var matchRules = [][2]string{
	{"hub-all", `["docker.io/**"]`},
	{"hub-library", `["docker.io/*"]`},
	{"ngin-star", `["docker.io/library/ngin*"]`},
	{"nginx", `["docker.io/nginx"]`},
	{"apps", `["registry.example.com/apps/**"]`},
	{"apps-frontend", `["registry.example.com/apps/frontend/*"]`},
	{"charts", `["ghcr.io/org/**/charts"]`},
	{"mirrors", `["*/mirror/**"]`},
	{"multi", `["localhost:5000/a/*", "localhost:5000/a/b/c"]`},
}

func TestMatch(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, matchYAML(matchRules...), nil)
	catchAll := mustParse(t, matchYAML(append(matchRules, [2]string{"everything", `["**"]`})...), nil)
	tests := []struct {
		image        string
		want         string // rule name; "" for ErrNoRule
		wantCatchAll string // with a "**" rule added
	}{
		{"docker.io/library/nginx", "nginx", "nginx"},
		{"docker.io/library/nginx-extra", "ngin-star", "ngin-star"},
		{"docker.io/library/redis", "hub-library", "hub-library"},
		{"docker.io/bitnami/redis", "hub-all", "hub-all"},
		{"docker.io/library/a/b", "hub-all", "hub-all"},
		{"registry.example.com/apps/x", "apps", "apps"},
		{"registry.example.com/apps/frontend/web", "apps-frontend", "apps-frontend"},
		{"registry.example.com/apps/frontend/web/x", "apps", "apps"},
		{"registry.example.com/apps", "", "everything"},
		{"registry.example.com/other/x", "", "everything"},
		{"ghcr.io/org/a/charts", "charts", "charts"},
		{"ghcr.io/org/a/b/charts", "charts", "charts"},
		{"ghcr.io/org/charts", "", "everything"},
		{"ghcr.io/mirror/x", "mirrors", "mirrors"},
		{"registry.example.com/mirror/x/y", "mirrors", "mirrors"},
		{"localhost:5000/a/x", "multi", "multi"},
		{"localhost:5000/a/b/c", "multi", "multi"},
		{"localhost:5000/a/b/d", "", "everything"},
		{"quay.io/org/app", "", "everything"},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			cfg  *Config
			want string
		}{{cfg, tt.want}, {catchAll, tt.wantCatchAll}} {
			r, err := c.cfg.Match(tt.image)
			switch {
			case c.want == "":
				if !errors.Is(err, ErrNoRule) || r != nil {
					t.Errorf("Match(%q) = %v, %v; want ErrNoRule", tt.image, r, err)
				}
			case err != nil:
				t.Errorf("Match(%q) error = %v, want rule %q", tt.image, err, c.want)
			case r.Name != c.want:
				t.Errorf("Match(%q) = %q, want %q", tt.image, r.Name, c.want)
			}
		}
	}
}

func TestMatchInvalidImage(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, matchYAML([2]string{"everything", `["**"]`}), nil)
	for _, image := range []string{
		"", "nginx", "docker.io/nginx", "index.docker.io/library/nginx", "Docker.io/library/nginx",
		"docker.io/library/Nginx", "docker.io//x", "docker.io/x/", "/x", "docker.io/library/nginx:latest",
		"localhost:/a/b", "localhost:50a/b",
	} {
		r, err := cfg.Match(image)
		if !errors.Is(err, ErrInvalidImage) || errors.Is(err, ErrNoRule) || r != nil {
			t.Errorf("Match(%q) = %v, %v; want ErrInvalidImage (and not ErrNoRule)", image, r, err)
		}
	}
}

func TestMatchIPv6Registry(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `upstreams:
  - {registry: "[FD00::1]:5000", endpoint: "http://[fd00::1]:5000"}
policies:
  - name: v6
    images: ["[fd00::1]:5000/apps/*"]
    signatures: {threshold: 0}
`, nil)
	if u := cfg.Upstream("[fd00::1]:5000"); u == nil || u.Registry != "[fd00::1]:5000" {
		t.Errorf("Upstream([fd00::1]:5000) = %v", u)
	}
	if r, err := cfg.Match("[fd00::1]:5000/apps/web"); err != nil || r.Name != "v6" {
		t.Errorf("Match() = %v, %v; want v6", r, err)
	}
}

func TestMatchZeroConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []*Config{nil, {}} {
		if r, err := cfg.Match("docker.io/library/nginx"); !errors.Is(err, ErrNoRule) || r != nil {
			t.Errorf("(%v).Match() = %v, %v; want ErrNoRule", cfg, r, err)
		}
		if u := cfg.Upstream("docker.io"); u != nil {
			t.Errorf("(%v).Upstream() = %v, want nil", cfg, u)
		}
	}
}

func TestMatchErrorMessage(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, matchYAML([2]string{"a", `["docker.io/a"]`}), nil)
	_, err := cfg.Match("docker.io/library/nginx")
	if want := "no policy matches docker.io/library/nginx"; err == nil || err.Error() != want {
		t.Errorf("Match() error = %v, want %q", err, want)
	}
}

func TestMatchRuntimeTie(t *testing.T) {
	t.Parallel()
	// Parse rejects ties; build one by hand to check Match fails closed.
	a, b := &Rule{Name: "a"}, &Rule{Name: "b"}
	pa, _ := compilePattern("r/x/*")
	pb, _ := compilePattern("r/*/y")
	cfg := &Config{patterns: []rulePattern{{pattern: pa, rule: a}, {pattern: pb, rule: b}}}
	sortPatterns(cfg.patterns)
	r, err := cfg.Match("r/x/y")
	if err == nil || errors.Is(err, ErrNoRule) || r != nil {
		t.Errorf("Match(tie) = %v, %v; want an error other than ErrNoRule", r, err)
	}
	if r, err := cfg.Match("r/x/z"); err != nil || r != a {
		t.Errorf("Match(r/x/z) = %v, %v; want rule a", r, err)
	}
}

func TestParseTies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		a, b    string // images of two rules
		wantErr string // substring; empty for no error
	}{
		{
			name:    "crossed wildcards",
			a:       `["registry.example.com/x/*/y"]`,
			b:       `["registry.example.com/x/y/*"]`,
			wantErr: `pullgate.yaml:11: policies[1].images[0]: policies "a" (line 8) and "b" (line 11) match the same images with equal specificity: "registry.example.com/x/*/y" vs "registry.example.com/x/y/*" (both match registry.example.com/x/y/y); make one more specific`,
		},
		{
			name:    "identical",
			a:       `["registry.example.com/x/**"]`,
			b:       `["registry.example.com/x/**"]`,
			wantErr: `pullgate.yaml:11: policies[1].images[0]: policies "a" (line 8) and "b" (line 11) both list "registry.example.com/x/**"`,
		},
		{
			name:    "identical after normalisation",
			a:       `["docker.io/nginx"]`,
			b:       `["index.docker.io/library/nginx"]`,
			wantErr: `policies "a" (line 8) and "b" (line 11) both list "docker.io/library/nginx"`,
		},
		{
			name:    "double stars",
			a:       `["registry.example.com/a/**/b"]`,
			b:       `["registry.example.com/a/b/**"]`,
			wantErr: `match the same images with equal specificity: "registry.example.com/a/**/b" vs "registry.example.com/a/b/**"`,
		},
		{
			name:    "stars at either end",
			a:       `["registry.example.com/a*"]`,
			b:       `["registry.example.com/*a"]`,
			wantErr: `(both match registry.example.com/a)`,
		},
		{
			name:    "second pattern of a rule",
			a:       `["docker.io/x", "registry.example.com/x/*/y"]`,
			b:       `["registry.example.com/x/y/*"]`,
			wantErr: `policies "a" (line 8) and "b" (line 11)`,
		},
		{
			name: "equal specificity, disjoint",
			a:    `["registry.example.com/a/x/*"]`,
			b:    `["registry.example.com/a/y/*"]`,
		},
		{
			name: "equal specificity, different registries",
			a:    `["ghcr.io/a/x/*"]`,
			b:    `["docker.io/a/x/*"]`,
		},
		{
			name: "equal specificity, disjoint globs",
			a:    `["registry.example.com/a*/x"]`,
			b:    `["registry.example.com/b*/x"]`,
		},
		{
			name: "overlap, different specificity",
			a:    `["registry.example.com/apps/**"]`,
			b:    `["registry.example.com/apps/*"]`,
		},
		{
			name: "segment counts differ",
			a:    `["registry.example.com/a/*"]`,
			b:    `["registry.example.com/*/*/b"]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseString(t, matchYAML([2]string{"a", tt.a}, [2]string{"b", tt.b}), nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Parse() error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse() error:\n%v\nwant it to contain:\n%s", err, tt.wantErr)
			}
		})
	}
}

func TestParseManyPatterns(t *testing.T) {
	t.Parallel()
	var rules [][2]string
	for i := range 2000 {
		rules = append(rules, [2]string{
			fmt.Sprintf("team%04d", i),
			fmt.Sprintf(`["registry.example.com/team%04d/app", "registry.example.com/team%04d/*/x"]`, i, i),
		})
	}
	start := time.Now()
	cfg := mustParse(t, matchYAML(rules...), nil)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Parse(%d patterns) took %v", 2*len(rules), d)
	}
	if r, err := cfg.Match("registry.example.com/team1234/y/x"); err != nil || r.Name != "team1234" {
		t.Errorf("Match() = %v, %v; want team1234", r, err)
	}
}

func TestParseTooManyErrors(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(upstreamsYAML)
	for i := range 150 {
		fmt.Fprintf(&b, "unknown%d: x\n", i)
	}
	_, err := parseString(t, b.String(), nil)
	errs := err.(interface{ Unwrap() []error }).Unwrap()
	if len(errs) != maxErrors+1 || !strings.Contains(errs[maxErrors].Error(), "more than 100 problems; fix these first") {
		t.Errorf("Parse() returned %d errors, last %v; want %d and a note", len(errs), errs[len(errs)-1], maxErrors+1)
	}
}

func TestParseTiesWithinRule(t *testing.T) {
	t.Parallel()
	// Patterns of one rule may overlap at equal specificity.
	cfg := mustParse(t, matchYAML([2]string{"a", `["registry.example.com/x/*/y", "registry.example.com/x/y/*"]`}), nil)
	if r, err := cfg.Match("registry.example.com/x/y/y"); err != nil || r.Name != "a" {
		t.Errorf("Match() = %v, %v; want rule a", r, err)
	}
}

func TestUpstream(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, matchYAML(), nil)
	tests := []struct{ in, want string }{
		{"docker.io", "docker.io"},
		{"index.docker.io", "docker.io"},
		{"registry-1.docker.io", "docker.io"},
		{"GHCR.io", "ghcr.io"},
		{"localhost:5000", "localhost:5000"},
		{"localhost", ""},
		{"quay.io", ""},
		{"", ""},
	}
	for _, tt := range tests {
		u := cfg.Upstream(tt.in)
		got := ""
		if u != nil {
			got = u.Registry
		}
		if got != tt.want {
			t.Errorf("Upstream(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	cfg := mustParse(t, matchYAML(append(matchRules, [2]string{"everything", `["**"]`})...), nil)
	for _, image := range []string{"docker.io/library/nginx", "registry.example.com/apps/frontend/web/x", "ghcr.io/org/a/b/charts", "quay.io/x"} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := cfg.Match(image); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Match(%q) allocates %v times, want 0", image, allocs)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	rules := make([][2]string, 0, 300)
	for i := range 100 {
		rules = append(rules,
			[2]string{fmt.Sprintf("team%d", i), fmt.Sprintf(`["registry.example.com/team%d/**"]`, i)},
			[2]string{fmt.Sprintf("team%d-prod", i), fmt.Sprintf(`["registry.example.com/team%d/prod/*"]`, i)},
			[2]string{fmt.Sprintf("hub%d", i), fmt.Sprintf(`["docker.io/img%d"]`, i)},
		)
	}
	cfg := mustParse(b, matchYAML(rules...), nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cfg.Match("registry.example.com/team57/prod/api"); err != nil {
			b.Fatal(err)
		}
	}
}
