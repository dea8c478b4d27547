package policy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// fuzzKey is the key every key path resolves to in FuzzParse.
var fuzzKey = []byte(`-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEOA4MXKrfYreQgfjckkJVJXQxCyiR
pQI5geMR0O2GjHnz5w8nerHvlp8R94q+mDAa0xOzsq+g/2/DONXSECY4sg==
-----END PUBLIC KEY-----
`)

func TestFuzzKeyIsValid(t *testing.T) {
	t.Parallel()
	if _, err := parsePublicKey(fuzzKey); err != nil {
		t.Fatalf("parsePublicKey(fuzzKey) error: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(matchYAML(matchRules...)))
	f.Add([]byte(upstreamsYAML + `tls: {certFile: a, keyFile: b}
defaultRegistry: docker.io
trustRoots: {corp: c.json}
tuf: {mirror: https://tuf.example.com, root: r.json}
policies:
  - name: a
    images: [registry.example.com/a/**, docker.io/nginx]
    mode: audit
    signers:
      - name: k
        key: {path: k.pub}
        tlog: skip
      - name: ci
        keyless:
          issuerRegExp: '.*'
          subject: s
          extensions: {githubWorkflowRef: refs/heads/main}
          trustRoot: corp
    signatures: {threshold: 2, signers: [k, ci]}
    attestations:
      - predicateType: slsaprovenance
        signers: [ci]
        condition: 'true'
unmatched: allow
cache: {verdictTTL: 1h, denyTTL: 30s, maxEntries: 10, tagTTL: 0s, manifestBytes: 1Mi, dir: c, maxBytes: 10Gi}
limits: {maxManifestBytes: 1, maxSignatures: 1, maxSignatureBytes: 1}
`))
	f.Add([]byte("a: &a [*a]\nupstreams: *a\n"))
	f.Add([]byte("{"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		readKey := func(string) ([]byte, error) { return fuzzKey, nil }
		cfg, err := Parse(testFile, bytes.NewReader(data), WithReadFile(readKey))
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse() returned a Config and an error")
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != testFile {
				t.Fatalf("Parse() error is not a *ParseError for %s: %v", testFile, err)
			}
			return
		}
		if len(cfg.Upstreams) == 0 || len(cfg.Generation) != 64 {
			t.Fatalf("Parse() = %+v: no upstreams or no generation", cfg)
		}
		for _, r := range cfg.Policies {
			if r.Name == "" || len(r.Images) == 0 {
				t.Fatalf("rule %+v has no name or images", r)
			}
			if len(r.Signers) == 0 && r.Signatures.Threshold != 0 {
				t.Fatalf("rule %q requires %d signatures from no signers", r.Name, r.Signatures.Threshold)
			}
			if r.Signatures.Threshold > len(r.Signatures.Signers) {
				t.Fatalf("rule %q threshold %d exceeds %d signers", r.Name, r.Signatures.Threshold, len(r.Signatures.Signers))
			}
			for _, s := range r.Signers {
				if (s.Key == nil) == (s.Keyless == nil) || s.TLog == "" {
					t.Fatalf("signer %+v is not exactly one of key and keyless", s)
				}
			}
			// Every rule governs the images its patterns name exactly.
			for _, img := range r.Images {
				if strings.Contains(img, "*") {
					continue
				}
				if got, err := cfg.Match(img); err != nil || got != r {
					t.Fatalf("Match(%q) = %v, %v; want rule %q", img, got, err, r.Name)
				}
			}
		}
		for _, img := range []string{"docker.io/library/nginx", "registry.example.com/a/b", "x/y"} {
			_, _ = cfg.Match(img)
		}
		_ = cfg.Upstream("docker.io")
	})
}

func FuzzMatch(f *testing.F) {
	f.Add("registry.example.com/apps/**", "registry.example.com/*/web", "registry.example.com/apps/web")
	f.Add("docker.io/nginx", "docker.io/*", "docker.io/library/nginx")
	f.Add("r/a/**/b", "r/a/b/**", "r/a/x/b")
	f.Add("**", "*/**", "r/a")
	f.Add("r/*a*b*", "r/a*", "r/xaxb")
	f.Add("localhost:*/a", "*/a", "localhost:5000/a")
	f.Fuzz(func(t *testing.T, pattern1, pattern2, name string) {
		p1, err := compilePattern(pattern1)
		if err != nil {
			return
		}
		// Normalisation is idempotent.
		again, err := compilePattern(p1.text)
		if err != nil || again.text != p1.text || again.spec != p1.spec {
			t.Fatalf("compilePattern(%q) = %q, %v; want %q again", p1.text, again.text, err, p1.text)
		}
		matched := p1.match(name)
		if want := referenceRegexp(t, &p1).MatchString(name); matched != want {
			t.Fatalf("pattern %q match(%q) = %v, reference says %v", p1.text, name, matched, want)
		}
		valid := checkImage(name) == nil
		if matched && valid {
			// The exact pattern of a name beats every wildcard matching it.
			exact, err := compilePattern(name)
			if err != nil {
				t.Fatalf("valid name %q is not a valid pattern: %v", name, err)
			}
			if exact.text != p1.text && !exact.spec.moreSpecific(p1.spec) {
				t.Fatalf("exact %q (%+v) is not more specific than %q (%+v)", exact.text, exact.spec, p1.text, p1.spec)
			}
		}
		p2, err := compilePattern(pattern2)
		if err != nil {
			return
		}
		example, ok := intersect(&p1, &p2)
		if ok && !mayIntersect(&p1, &p2) {
			t.Fatalf("mayIntersect(%q, %q) = false, but both match %q", p1.text, p2.text, example)
		}
		if ok && (!p1.match(example) || !p2.match(example)) {
			t.Fatalf("intersect(%q, %q) example %q does not match both", p1.text, p2.text, example)
		}
		if !ok && matched && p2.match(name) && !strings.Contains("/"+name+"/", "//") {
			t.Fatalf("intersect(%q, %q) = false, but both match %q", p1.text, p2.text, name)
		}
	})
}
