package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// configOpts compares Configs, ignoring the compiled patterns.
var configOpts = cmp.Options{cmpopts.IgnoreUnexported(Config{})}

func TestParseFull(t *testing.T) {
	t.Parallel()
	releasePEM := pemPKIX(t, keyP256().Public())
	inlinePEM := pemPKIX(t, keyEd().Public())
	yaml := fmt.Sprintf(`listen: 0.0.0.0:5443
tls: {certFile: tls/tls.crt, keyFile: /secure/tls.key}
upstreams:
  - registry: Docker.io
    endpoint: https://registry-1.docker.io
    auth: {dockerConfig: docker/config.json}
  - registry: registry.example.com:5000
    endpoint: http://registry.example.com:5000/
    auth: {username: robot, passwordFile: /run/secrets/pw}
    caFile: ca.pem
defaultRegistry: index.docker.io
trustedRoot: trusted_root.json
trustRoots: {corp: corp-root.json, other: /abs/other.json}
tuf: {mirror: https://tuf-repo-cdn.sigstore.dev, root: root.json}
policies:
  - name: apps
    images: ["registry.example.com:5000/apps/**", "docker.io/nginx"]
    mode: audit
    signers:
      - name: release-key
        key: {path: keys/release.pub}
      - name: inline
        key:
          pem: |
%s
        tlog: required
      - name: ci
        keyless:
          issuer: https://token.actions.githubusercontent.com
          subjectRegExp: '^https://github\.com/myorg/.+$'
          extensions: {githubWorkflowRepository: myorg/app, githubWorkflowRef: refs/heads/main}
          trustRoot: corp
        tlog: skip
      - name: google
        keyless:
          issuerRegExp: 'https://accounts\.google\.com'
          subject: dev@example.com
    signatures:
      threshold: 2
      signers: [release-key, ci]
    attestations:
      - predicateType: slsaprovenance
        signers: [ci]
        condition: 'predicate.builder.id.startsWith("https://github.com/myorg/")'
      - predicateType: https://example.com/custom/v1
  - name: open
    images: ["docker.io/library/*"]
    mode: enforce
    signatures: {threshold: 0}
unmatched: allow
cache: {verdictTTL: 2h, denyTTL: 1m, maxEntries: 500, tagTTL: 0s, manifestBytes: 8Mi, dir: cache, maxBytes: 20Gi}
limits: {maxManifestBytes: 1048576, maxSignatures: 10, maxSignatureBytes: 2048}
`, indent(string(inlinePEM), "            "))
	got := mustParse(t, yaml, map[string][]byte{"/etc/pullgate/keys/release.pub": releasePEM})

	release := &Signer{Name: "release-key", TLog: TLogOptional, Key: &Key{
		Path: "/etc/pullgate/keys/release.pub", PEM: releasePEM, PublicKey: keyP256().Public(),
	}}
	inline := &Signer{Name: "inline", TLog: TLogRequired, Key: &Key{
		PEM: inlinePEM, PublicKey: keyEd().Public(),
	}}
	ci := &Signer{Name: "ci", TLog: TLogSkip, Keyless: &Keyless{
		Issuer:        "https://token.actions.githubusercontent.com",
		SubjectRegExp: `^https://github\.com/myorg/.+$`,
		Extensions:    map[string]string{"githubWorkflowRepository": "myorg/app", "githubWorkflowRef": "refs/heads/main"},
		TrustRoot:     "corp",
	}}
	google := &Signer{Name: "google", TLog: TLogRequired, Keyless: &Keyless{
		IssuerRegExp: `https://accounts\.google\.com`,
		Subject:      "dev@example.com",
	}}
	want := &Config{
		File:   testFile,
		Listen: "0.0.0.0:5443",
		TLS:    &TLS{CertFile: "/etc/pullgate/tls/tls.crt", KeyFile: "/secure/tls.key"},
		Upstreams: []*Upstream{
			{
				Registry: "docker.io",
				Endpoint: &url.URL{Scheme: "https", Host: "registry-1.docker.io"},
				Auth:     &Auth{DockerConfig: "/etc/pullgate/docker/config.json"},
			},
			{
				Registry: "registry.example.com:5000",
				Endpoint: &url.URL{Scheme: "http", Host: "registry.example.com:5000"},
				Auth:     &Auth{Username: "robot", PasswordFile: "/run/secrets/pw"},
				CAFile:   "/etc/pullgate/ca.pem",
			},
		},
		DefaultRegistry: "docker.io",
		TrustedRoot:     "/etc/pullgate/trusted_root.json",
		TrustRoots:      map[string]string{"corp": "/etc/pullgate/corp-root.json", "other": "/abs/other.json"},
		TUF:             &TUF{Mirror: "https://tuf-repo-cdn.sigstore.dev", Root: "/etc/pullgate/root.json"},
		Policies: []*Rule{
			{
				Name:       "apps",
				Images:     []string{"registry.example.com:5000/apps/**", "docker.io/library/nginx"},
				Mode:       ModeAudit,
				Signers:    []*Signer{release, inline, ci, google},
				Signatures: Signatures{Threshold: 2, Signers: []*Signer{release, ci}},
				Attestations: []*Attestation{
					{
						PredicateType: "https://slsa.dev/provenance/v0.2",
						Signers:       []*Signer{ci},
						Condition:     `predicate.builder.id.startsWith("https://github.com/myorg/")`,
						Program:       MustCompileCondition(`predicate.builder.id.startsWith("https://github.com/myorg/")`),
					},
					{
						PredicateType: "https://example.com/custom/v1",
						Signers:       []*Signer{release, inline, ci, google},
					},
				},
			},
			{
				Name:       "open",
				Images:     []string{"docker.io/library/*"},
				Mode:       ModeEnforce,
				Signatures: Signatures{Threshold: 0},
			},
		},
		Unmatched:  ActionAllow,
		Cache:      fullCache,
		Limits:     Limits{MaxManifestBytes: 1 << 20, MaxSignatures: 10, MaxSignatureBytes: 2048},
		Generation: wantGeneration(yaml, releasePEM),
	}
	if diff := cmp.Diff(want, got, configOpts); diff != "" {
		t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
	}
	if got.Policies[0].Signatures.Signers[1] != got.Policies[0].Signers[2] {
		t.Errorf("Signatures.Signers[1] is not the same *Signer as Signers[2]")
	}
}

// wantGeneration computes Config.Generation independently of the code
// under test: SHA-256 over each part preceded by its big-endian length.
func wantGeneration(config string, keys ...[]byte) string {
	h := sha256.New()
	for _, part := range append([][]byte{[]byte(config)}, keys...) {
		_ = binary.Write(h, binary.BigEndian, uint64(len(part)))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	yaml := `upstreams:
  - registry: registry.example.com
    endpoint: https://registry.example.com
policies:
  - name: apps
    images: [registry.example.com/apps/*]
    signers:
      - name: ci
        keyless: {issuer: https://issuer.example.com, subject: ci@example.com}
`
	got := mustParse(t, yaml, nil)
	ci := &Signer{Name: "ci", TLog: TLogRequired, Keyless: &Keyless{Issuer: "https://issuer.example.com", Subject: "ci@example.com"}}
	want := &Config{
		File:   testFile,
		Listen: "127.0.0.1:5050",
		Upstreams: []*Upstream{{
			Registry: "registry.example.com",
			Endpoint: &url.URL{Scheme: "https", Host: "registry.example.com"},
		}},
		Policies: []*Rule{{
			Name:       "apps",
			Images:     []string{"registry.example.com/apps/*"},
			Mode:       ModeEnforce,
			Signers:    []*Signer{ci},
			Signatures: Signatures{Threshold: 1, Signers: []*Signer{ci}},
		}},
		Unmatched:  ActionDeny,
		Cache:      defaultCache,
		Limits:     Limits{MaxManifestBytes: 4 << 20, MaxSignatures: 64, MaxSignatureBytes: 4 << 20},
		Generation: wantGeneration(yaml),
	}
	if diff := cmp.Diff(want, got, configOpts); diff != "" {
		t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
	}
}

func TestParseNoPolicies(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, upstreamsYAML, nil)
	if len(cfg.Policies) != 0 {
		t.Errorf("Policies = %v, want none", cfg.Policies)
	}
	if _, err := cfg.Match("docker.io/library/nginx"); !errors.Is(err, ErrNoRule) {
		t.Errorf("Match() error = %v, want ErrNoRule", err)
	}
}

// upstreamsYAML configures two upstreams in lines 1-5, so that the
// error cases below start at line 6.
const upstreamsYAML = `upstreams:
  - registry: registry.example.com
    endpoint: https://registry.example.com
  - registry: docker.io
    endpoint: https://registry-1.docker.io
`

// keylessSigner is a valid signer list item at policy indentation.
const keylessSigner = `      - name: ci
        keyless: {issuer: https://issuer.example.com, subject: ci@example.com}
`

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error, each "file:line: path: message"
	}{
		{
			name: "empty document",
			yaml: "",
			want: []string{"pullgate.yaml:1: empty configuration"},
		},
		{
			name: "only comments",
			yaml: "# nothing\n",
			want: []string{"pullgate.yaml:1: empty configuration"},
		},
		{
			name: "null document",
			yaml: "~\n",
			want: []string{"pullgate.yaml:1: must be a mapping, not null"},
		},
		{
			name: "syntax error",
			yaml: upstreamsYAML + "listen: @x\n",
			want: []string{"pullgate.yaml:6: invalid YAML: found character that cannot start any token"},
		},
		{
			name: "two documents",
			yaml: upstreamsYAML + "---\nlisten: :1\n",
			want: []string{"pullgate.yaml:6: more than one YAML document"},
		},
		{
			name: "top level list",
			yaml: "- a\n",
			want: []string{"pullgate.yaml:1: must be a mapping, not a list"},
		},
		{
			name: "missing upstreams",
			yaml: "listen: :5050\n",
			want: []string{`pullgate.yaml:1: missing required field "upstreams"`},
		},
		{
			name: "empty upstreams",
			yaml: "upstreams: []\n",
			want: []string{"pullgate.yaml:1: upstreams: must list at least one upstream"},
		},
		{
			name: "duplicate key",
			yaml: upstreamsYAML + "listen: :1\nlisten: :2\n",
			want: []string{`pullgate.yaml:7: duplicate key "listen" (first at line 6)`},
		},
		{
			name: "bad listen",
			yaml: upstreamsYAML + "listen: localhost\n",
			want: []string{`pullgate.yaml:6: listen: "localhost" is not a host:port address`},
		},
		{
			name: "bad listen port",
			yaml: upstreamsYAML + "listen: localhost:99999\n",
			want: []string{`pullgate.yaml:6: listen: "localhost:99999": port must be a number`},
		},
		{
			name: "tls missing key",
			yaml: upstreamsYAML + "tls: {certFile: a.crt}\n",
			want: []string{`pullgate.yaml:6: tls: missing required field "keyFile"`},
		},
		{
			name: "tls not a mapping",
			yaml: upstreamsYAML + "tls: true\n",
			want: []string{`pullgate.yaml:6: tls: must be a mapping, not a boolean`},
		},
		{
			name: "upstream missing fields",
			yaml: "upstreams:\n  - caFile: x\n",
			want: []string{
				`pullgate.yaml:2: upstreams[0]: missing required field "registry"`,
				`pullgate.yaml:2: upstreams[0]: missing required field "endpoint"`,
			},
		},
		{
			name: "upstream registry is a URL",
			yaml: "upstreams:\n  - registry: https://r.example.com\n    endpoint: https://r.example.com\n",
			want: []string{`pullgate.yaml:2: upstreams[0].registry: "https://r.example.com" is not a registry name: write the host name`},
		},
		{
			name: "duplicate upstream after normalisation",
			yaml: upstreamsYAML + "  - registry: index.docker.io\n    endpoint: https://index.docker.io\n",
			want: []string{`pullgate.yaml:6: upstreams[2].registry: registry "docker.io" is configured twice (first at line 4)`},
		},
		{
			name: "endpoint scheme",
			yaml: "upstreams:\n  - registry: r.example.com\n    endpoint: ftp://r.example.com\n",
			want: []string{`pullgate.yaml:3: upstreams[0].endpoint: URL scheme "ftp" is not supported`},
		},
		{
			name: "endpoint without host",
			yaml: "upstreams:\n  - registry: r.example.com\n    endpoint: r.example.com\n",
			want: []string{`pullgate.yaml:3: upstreams[0].endpoint: URL scheme "" is not supported`},
		},
		{
			name: "endpoint path",
			yaml: "upstreams:\n  - registry: r.example.com\n    endpoint: https://r.example.com/v2\n",
			want: []string{`pullgate.yaml:3: upstreams[0].endpoint: URL must not have a path`},
		},
		{
			name: "endpoint query",
			yaml: "upstreams:\n  - registry: r.example.com\n    endpoint: https://r.example.com?x=1\n",
			want: []string{`pullgate.yaml:3: upstreams[0].endpoint: URL must not have a query or fragment`},
		},
		{
			name: "auth both forms",
			yaml: "upstreams:\n  - registry: r.example.com\n    endpoint: https://r.example.com\n    auth: {username: u, passwordFile: p, dockerConfig: c}\n",
			want: []string{`pullgate.yaml:4: upstreams[0].auth: set either username with passwordFile, or dockerConfig, not both`},
		},
		{
			name: "auth username without password file",
			yaml: "upstreams:\n  - registry: r.example.com\n    endpoint: https://r.example.com\n    auth: {username: u}\n",
			want: []string{`pullgate.yaml:4: upstreams[0].auth: username requires passwordFile`},
		},
		{
			name: "auth password file without username",
			yaml: "upstreams:\n  - registry: r.example.com\n    endpoint: https://r.example.com\n    auth: {passwordFile: p}\n",
			want: []string{`pullgate.yaml:4: upstreams[0].auth: passwordFile requires username`},
		},
		{
			name: "auth empty",
			yaml: "upstreams:\n  - registry: r.example.com\n    endpoint: https://r.example.com\n    auth: {}\n",
			want: []string{`pullgate.yaml:4: upstreams[0].auth: set username with passwordFile, or dockerConfig`},
		},
		{
			name: "auth inline password",
			yaml: "upstreams:\n  - registry: r.example.com\n    endpoint: https://r.example.com\n    auth: {username: u, password: hunter2}\n",
			want: []string{`pullgate.yaml:4: upstreams[0].auth: unknown field "password": secrets never go in the configuration`},
		},
		{
			name: "default registry not configured",
			yaml: upstreamsYAML + "defaultRegistry: ghcr.io\n",
			want: []string{`pullgate.yaml:6: defaultRegistry: registry "ghcr.io" is not a configured upstream (upstreams: registry.example.com, docker.io)`},
		},
		{
			name: "trust roots not a mapping",
			yaml: upstreamsYAML + "trustRoots: [a.json]\n",
			want: []string{`pullgate.yaml:6: trustRoots: must be a mapping, not a list`},
		},
		{
			name: "tuf mirror not a URL",
			yaml: upstreamsYAML + "tuf: {mirror: tuf.example.com}\n",
			want: []string{`pullgate.yaml:6: tuf.mirror: URL scheme "" is not supported`},
		},
		{
			name: "tuf without mirror",
			yaml: upstreamsYAML + "tuf: {root: root.json}\n",
			want: []string{`pullgate.yaml:6: tuf: missing required field "mirror"`},
		},
		{
			name: "unmatched value",
			yaml: upstreamsYAML + "unmatched: permit\n",
			want: []string{`pullgate.yaml:6: unmatched: unknown value "permit": want deny or allow`},
		},
		{
			name: "cache durations",
			yaml: upstreamsYAML + "cache:\n  verdictTTL: 1 hour\n  denyTTL: -1s\n  maxEntries: 0\n",
			want: []string{
				`pullgate.yaml:7: cache.verdictTTL: "1 hour" is not a duration such as 30s or 1h`,
				`pullgate.yaml:8: cache.denyTTL: must be positive, not -1s`,
				`pullgate.yaml:9: cache.maxEntries: must be positive, not 0`,
			},
		},
		{
			name: "cache sizes and tag TTL",
			yaml: upstreamsYAML + "cache:\n  tagTTL: -1s\n  manifestBytes: 0\n  maxBytes: 10GB\n  dir: \"\"\n",
			want: []string{
				`pullgate.yaml:7: cache.tagTTL: must not be negative, not -1s`,
				`pullgate.yaml:8: cache.manifestBytes: must be positive, not 0`,
				`pullgate.yaml:9: cache.maxBytes: "10GB" is not a size such as 1048576, 512Mi or 20Gi`,
				`pullgate.yaml:10: cache.dir: must not be empty`,
			},
		},
		{
			name: "cache tag TTL not a duration",
			yaml: upstreamsYAML + "cache: {tagTTL: soon, maxBytes: 99999999999Ti}\n",
			want: []string{
				`pullgate.yaml:6: cache.tagTTL: "soon" is not a duration such as 5s (0s: resolve every request upstream)`,
				`pullgate.yaml:6: cache.maxBytes: "99999999999Ti" is too large`,
			},
		},
		{
			name: "limits types",
			yaml: upstreamsYAML + "limits:\n  maxManifestBytes: 4MiB\n  maxSignatures: -1\n  maxSignatureBytes: 1.5\n",
			want: []string{
				`pullgate.yaml:7: limits.maxManifestBytes: must be an integer, not a string`,
				`pullgate.yaml:8: limits.maxSignatures: must be positive, not -1`,
				`pullgate.yaml:9: limits.maxSignatureBytes: must be an integer, not a number`,
			},
		},
		{
			name: "policies not a list",
			yaml: upstreamsYAML + "policies: {name: x}\n",
			want: []string{`pullgate.yaml:6: policies: must be a list, not a mapping`},
		},
		{
			name: "policy missing name and images",
			yaml: upstreamsYAML + "policies:\n  - mode: audit\n",
			want: []string{
				`pullgate.yaml:7: policies[0]: missing required field "name"`,
				`pullgate.yaml:7: policies[0]: missing required field "images"`,
			},
		},
		{
			name: "images is a string",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: registry.example.com/a\n    signatures: {threshold: 0}\n",
			want: []string{`pullgate.yaml:8: policies[0].images: must be a list, not a string`},
		},
		{
			name: "images empty",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: []\n    signatures: {threshold: 0}\n",
			want: []string{`pullgate.yaml:8: policies[0].images: must not be empty`},
		},
		{
			name: "image item not a string",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images:\n      - {registry: x}\n    signatures: {threshold: 0}\n",
			want: []string{`pullgate.yaml:9: policies[0].images[0]: must be a string, not a mapping`},
		},
		{
			name: "bad pattern",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [registry.example.com/a***]\n    signatures: {threshold: 0}\n",
			want: []string{`pullgate.yaml:8: policies[0].images[0]: image pattern "registry.example.com/a***": segment "a***": "**" must be a whole segment`},
		},
		{
			name: "pattern registry not an upstream",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [library/nginx]\n    signatures: {threshold: 0}\n",
			want: []string{`pullgate.yaml:8: policies[0].images[0]: image pattern "library/nginx": registry "library" is not a configured upstream (upstreams: registry.example.com, docker.io)`},
		},
		{
			name: "pattern registry glob matches no upstream",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [\"*.example.org/**\"]\n    signatures: {threshold: 0}\n",
			want: []string{`pullgate.yaml:8: policies[0].images[0]: image pattern "*.example.org/**": registry pattern "*.example.org" matches no configured upstream`},
		},
		{
			name: "duplicate pattern in a rule",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images:\n      - docker.io/nginx\n      - docker.io/library/nginx\n    signatures: {threshold: 0}\n",
			want: []string{`pullgate.yaml:10: policies[0].images[1]: image pattern "docker.io/library/nginx" is listed twice (first at line 9)`},
		},
		{
			name: "duplicate policy name",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signatures: {threshold: 0}\n  - name: a\n    images: [docker.io/b]\n    signatures: {threshold: 0}\n",
			want: []string{`pullgate.yaml:10: policies[1].name: policy "a" is defined twice (first at line 7)`},
		},
		{
			name: "policy name with newline",
			yaml: upstreamsYAML + "policies:\n  - name: \"a\\nb\"\n    images: [docker.io/a]\n    signatures: {threshold: 0}\n",
			want: []string{`pullgate.yaml:7: policies[0].name: name must not contain control characters`},
		},
		{
			name: "mode value",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    mode: enforcing\n    signatures: {threshold: 0}\n",
			want: []string{`pullgate.yaml:9: policies[0].mode: unknown value "enforcing": want enforce or audit; did you mean "enforce"?`},
		},
		{
			name: "no signers",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n",
			want: []string{`pullgate.yaml:7: policies[0]: policy "a" has no signers: list signers, or write signatures.threshold: 0 to require no signature`},
		},
		{
			name: "no signers and default threshold written out",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signatures: {threshold: 1}\n",
			want: []string{`pullgate.yaml:7: policies[0]: policy "a" has no signers`},
		},
		{
			name: "negative threshold",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n" + keylessSigner + "    signatures: {threshold: -1}\n",
			want: []string{`pullgate.yaml:12: policies[0].signatures.threshold: must not be negative, not -1`},
		},
		{
			name: "threshold above signers",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n" + keylessSigner + "    signatures:\n      threshold: 2\n",
			want: []string{`pullgate.yaml:13: policies[0].signatures.threshold: threshold 2 is more than the 1 signers that count`},
		},
		{
			name: "threshold not an integer",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n" + keylessSigner + "    signatures: {threshold: \"1\"}\n",
			want: []string{`pullgate.yaml:12: policies[0].signatures.threshold: must be an integer, not a string`},
		},
		{
			name: "unknown signer reference",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n" + keylessSigner + "    signatures: {signers: [cj]}\n",
			want: []string{`pullgate.yaml:12: policies[0].signatures.signers[0]: unknown signer "cj"; did you mean "ci"?`},
		},
		{
			name: "duplicate signer reference",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n" + keylessSigner + "    signatures:\n      signers:\n        - ci\n        - ci\n",
			want: []string{`pullgate.yaml:15: policies[0].signatures.signers[1]: signer "ci" is listed twice (first at line 14)`},
		},
		{
			name: "empty signer references",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n" + keylessSigner + "    signatures: {signers: []}\n",
			want: []string{`pullgate.yaml:12: policies[0].signatures.signers: must not be empty`},
		},
		{
			name: "duplicate signer name",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n" + keylessSigner + keylessSigner,
			want: []string{`pullgate.yaml:12: policies[0].signers[1].name: signer "ci" is defined twice in this policy (first at line 10)`},
		},
		{
			name: "signer with key and keyless",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n      - name: x\n        key: {pem: x}\n        keyless: {issuer: i, subject: s}\n",
			want: []string{`pullgate.yaml:10: policies[0].signers[0]: set exactly one of key and keyless, not both`},
		},
		{
			name: "signer with neither",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n      - name: x\n",
			want: []string{`pullgate.yaml:10: policies[0].signers[0]: set key or keyless`},
		},
		{
			name: "tlog value",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n" + keylessSigner + "        tlog: false\n",
			want: []string{`pullgate.yaml:12: policies[0].signers[0].tlog: unknown value "false": want required or optional or skip`},
		},
		{
			name: "key with path and pem",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n      - name: k\n        key: {path: k.pub, pem: x}\n",
			want: []string{`pullgate.yaml:11: policies[0].signers[0].key: set exactly one of path and pem, not both`},
		},
		{
			name: "key with neither",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n      - name: k\n        key: {}\n",
			want: []string{`pullgate.yaml:11: policies[0].signers[0].key: set path or pem`},
		},
		{
			name: "key file missing",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n      - name: k\n        key: {path: keys/k.pub}\n",
			want: []string{`pullgate.yaml:11: policies[0].signers[0].key.path: read key: open /etc/pullgate/keys/k.pub: file does not exist`},
		},
		{
			name: "key not PEM",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n      - name: k\n        key: {pem: not a key}\n",
			want: []string{`pullgate.yaml:11: policies[0].signers[0].key.pem: inline key: no PEM block found`},
		},
		{
			name: "attestation without predicate type",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n" + keylessSigner + "    attestations:\n      - signers: [ci]\n",
			want: []string{`pullgate.yaml:13: policies[0].attestations[0]: missing required field "predicateType"`},
		},
		{
			name: "attestation predicate type",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n" + keylessSigner + "    attestations:\n      - predicateType: slsa\n",
			want: []string{`pullgate.yaml:13: policies[0].attestations[0].predicateType: predicate type "slsa" is neither a URI nor one of`},
		},
		{
			name: "attestation unknown signer",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n" + keylessSigner + "    attestations:\n      - predicateType: spdx\n        signers: [release]\n",
			want: []string{`pullgate.yaml:14: policies[0].attestations[0].signers[0]: unknown signer "release" (signers of this policy: ci)`},
		},
		{
			name: "attestation in policy without signers",
			yaml: upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signatures: {threshold: 0}\n    attestations:\n      - predicateType: spdx\n",
			want: []string{`pullgate.yaml:11: policies[0].attestations[0]: policy has no signers whose attestations could count`},
		},
		{
			name: "null value",
			yaml: upstreamsYAML + "policies:\n  - name:\n    images: [docker.io/a]\n",
			want: []string{`pullgate.yaml:7: policies[0].name: must be a string, not null`},
		},
		{
			name: "empty string",
			yaml: upstreamsYAML + "policies:\n  - name: \"\"\n    images: [docker.io/a]\n",
			want: []string{`pullgate.yaml:7: policies[0].name: must not be empty`},
		},
		{
			name: "merge key",
			yaml: upstreamsYAML + "base: &b {listen: ':1'}\n<<: *b\n",
			want: []string{
				`pullgate.yaml:6: unknown field "base"`,
				`pullgate.yaml:7: merge keys (<<) are not supported`,
			},
		},
		{
			name: "binary tag",
			yaml: upstreamsYAML + "listen: !!binary aGVsbG8=\n",
			want: []string{`pullgate.yaml:6: listen: must be a string, not a !!binary value`},
		},
		{
			name: "non-string key",
			yaml: upstreamsYAML + "trustRoots: {[a]: b}\n",
			want: []string{`pullgate.yaml:6: trustRoots: keys must be strings, not a list`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseString(t, tt.yaml, nil)
			if err == nil {
				t.Fatalf("Parse() = %+v, want error", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse() returned a Config with an error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Parse() error:\n%v\nwant it to contain:\n%s", err, want)
				}
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("Parse() error is not a *ParseError: %T", err)
			} else if pe.File != testFile {
				t.Errorf("ParseError.File = %q, want %q", pe.File, testFile)
			}
		})
	}
}

func TestParseUnknownFields(t *testing.T) {
	t.Parallel()
	sig := "    signers:\n" + keylessSigner
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"top", upstreamsYAML + "polices: []\n", `pullgate.yaml:6: unknown field "polices"; did you mean "policies"?`},
		{"top transposed", upstreamsYAML + "tsl: {}\n", `pullgate.yaml:6: unknown field "tsl"; did you mean "tls"?`},
		{"top case", upstreamsYAML + "defaultregistry: docker.io\n", `pullgate.yaml:6: unknown field "defaultregistry"; did you mean "defaultRegistry"?`},
		{"top no suggestion", upstreamsYAML + "zzz: 1\n", `pullgate.yaml:6: unknown field "zzz"; known fields: listen, tls,`},
		{"tls", upstreamsYAML + "tls: {certFile: a, keyFile: b, keyfiel: c}\n", `pullgate.yaml:6: tls: unknown field "keyfiel"; did you mean "keyFile"?`},
		{"upstream", upstreamsYAML + "  - registry: ghcr.io\n    endpoints: https://ghcr.io\n", `pullgate.yaml:7: upstreams[2]: unknown field "endpoints"; did you mean "endpoint"?`},
		{"auth", upstreamsYAML + "  - registry: ghcr.io\n    endpoint: https://ghcr.io\n    auth: {user: u, passwordFile: p}\n", `pullgate.yaml:8: upstreams[2].auth: unknown field "user"; did you mean "username"?`},
		{"tuf", upstreamsYAML + "tuf: {mirror: https://t.example.com, roots: r.json}\n", `pullgate.yaml:6: tuf: unknown field "roots"; did you mean "root"?`},
		{"cache", upstreamsYAML + "cache: {verdict: 1h}\n", `pullgate.yaml:6: cache: unknown field "verdict"; did you mean "verdictTTL"?`},
		{"limits", upstreamsYAML + "limits: {maxSignature: 1}\n", `pullgate.yaml:6: limits: unknown field "maxSignature"; did you mean "maxSignatures"?`},
		{"policy", upstreamsYAML + "policies:\n  - name: a\n    image: [docker.io/a]\n", `pullgate.yaml:8: policies[0]: unknown field "image"; did you mean "images"?`},
		{"signer", upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n      - name: k\n        keyles: {}\n", `pullgate.yaml:11: policies[0].signers[0]: unknown field "keyles"; did you mean "keyless"?`},
		{"key", upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n      - name: k\n        key: {pth: k.pub}\n", `pullgate.yaml:11: policies[0].signers[0].key: unknown field "pth"; did you mean "path"?`},
		{"keyless", upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n      - name: k\n        keyless:\n          issuer: i\n          subjectRegexp: s\n", `pullgate.yaml:13: policies[0].signers[0].keyless: unknown field "subjectRegexp"; did you mean "subjectRegExp"?`},
		{"extensions", upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n    signers:\n      - name: k\n        keyless:\n          issuer: i\n          subject: s\n          extensions: {githubWorkflowRepo: x}\n", `pullgate.yaml:14: policies[0].signers[0].keyless.extensions: unknown field "githubWorkflowRepo"; did you mean "githubWorkflowRepository"?`},
		{"signatures", upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n" + sig + "    signatures: {threshhold: 1}\n", `pullgate.yaml:12: policies[0].signatures: unknown field "threshhold"; did you mean "threshold"?`},
		{"attestation", upstreamsYAML + "policies:\n  - name: a\n    images: [docker.io/a]\n" + sig + "    attestations:\n      - predicate: spdx\n", `pullgate.yaml:13: policies[0].attestations[0]: unknown field "predicate"; did you mean "predicateType"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseString(t, tt.yaml, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse() error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestParseErrorsSortedAndJoined(t *testing.T) {
	t.Parallel()
	yaml := upstreamsYAML + `unmatched: maybe
listen: nope
policies:
  - name: a
    images: [docker.io/a]
`
	_, err := parseString(t, yaml, nil)
	if err == nil {
		t.Fatal("Parse() = nil error, want errors")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Parse() error %T does not unwrap to a list", err)
	}
	var lines []int
	for _, e := range joined.Unwrap() {
		var pe *ParseError
		if !errors.As(e, &pe) {
			t.Fatalf("error %v is not a *ParseError", e)
		}
		lines = append(lines, pe.Line)
	}
	if diff := cmp.Diff([]int{6, 7, 9}, lines); diff != "" {
		t.Errorf("error lines mismatch (-want +got):\n%s\n%v", diff, err)
	}
}

func TestParseSecretsNotEchoed(t *testing.T) {
	t.Parallel()
	for _, endpoint := range []string{
		"https://robot:s3cr3t@registry.example.com",
		"https://s3cr3t@registry.example.com",
		"https://robot:s3cr3t%zz@registry.example.com",
		"ht!tp://robot:s3cr3t@registry.example.com",
	} {
		yaml := "upstreams:\n  - registry: registry.example.com\n    endpoint: " + endpoint + "\n"
		_, err := parseString(t, yaml, nil)
		if err == nil {
			t.Errorf("Parse(endpoint %q) = nil error, want error", endpoint)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Parse(endpoint %q) error leaks the secret: %v", endpoint, err)
		}
		if !strings.Contains(err.Error(), "pullgate.yaml:3: upstreams[0].endpoint:") {
			t.Errorf("Parse(endpoint %q) error = %v, want it located at line 3", endpoint, err)
		}
	}
	_, err := parseString(t, upstreamsYAML+"tuf: {mirror: 'https://u:s3cr3t@tuf.example.com'}\n", nil)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "must not contain credentials") {
		t.Errorf("Parse(tuf mirror with credentials) error = %v, want a credentials error without the secret", err)
	}
}

func TestParseRelativePaths(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("conf")
	if err != nil {
		t.Fatal(err)
	}
	key := pemPKIX(t, keyP256().Public())
	yaml := `tls: {certFile: tls.crt, keyFile: ../secret/tls.key}
upstreams:
  - registry: registry.example.com
    endpoint: https://registry.example.com
    auth: {username: u, passwordFile: pw}
    caFile: /abs/ca.pem
  - registry: ghcr.io
    endpoint: https://ghcr.io
    auth: {dockerConfig: ./docker/config.json}
trustedRoot: roots/trusted_root.json
trustRoots: {corp: corp.json}
tuf: {mirror: https://tuf.example.com/repo/, root: tuf/root.json}
policies:
  - name: a
    images: [registry.example.com/a]
    signers:
      - name: k
        key: {path: keys/../keys/k.pub}
`
	cfg, err := Parse("conf/pullgate.yaml", strings.NewReader(yaml),
		WithReadFile(fakeFiles(map[string][]byte{filepath.Join(dir, "keys/k.pub"): key})))
	if err != nil {
		t.Fatalf("Parse() error: %v", err)
	}
	got := map[string]string{
		"tls.certFile":     cfg.TLS.CertFile,
		"tls.keyFile":      cfg.TLS.KeyFile,
		"passwordFile":     cfg.Upstreams[0].Auth.PasswordFile,
		"caFile":           cfg.Upstreams[0].CAFile,
		"dockerConfig":     cfg.Upstreams[1].Auth.DockerConfig,
		"trustedRoot":      cfg.TrustedRoot,
		"trustRoots.corp":  cfg.TrustRoots["corp"],
		"tuf.root":         cfg.TUF.Root,
		"tuf.mirror":       cfg.TUF.Mirror,
		"signers[0].key":   cfg.Policies[0].Signers[0].Key.Path,
		"config file name": cfg.File,
	}
	want := map[string]string{
		"tls.certFile":     filepath.Join(dir, "tls.crt"),
		"tls.keyFile":      filepath.Join(filepath.Dir(dir), "secret/tls.key"),
		"passwordFile":     filepath.Join(dir, "pw"),
		"caFile":           "/abs/ca.pem",
		"dockerConfig":     filepath.Join(dir, "docker/config.json"),
		"trustedRoot":      filepath.Join(dir, "roots/trusted_root.json"),
		"trustRoots.corp":  filepath.Join(dir, "corp.json"),
		"tuf.root":         filepath.Join(dir, "tuf/root.json"),
		"tuf.mirror":       "https://tuf.example.com/repo/",
		"signers[0].key":   filepath.Join(dir, "keys/k.pub"),
		"config file name": "conf/pullgate.yaml",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paths mismatch (-want +got):\n%s", diff)
	}
}

func TestParseRealFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := pemPKIX(t, keyP384().Public())
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "release.pub"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := upstreamsYAML + `policies:
  - name: a
    images: [registry.example.com/a/**]
    signers:
      - name: release
        key: {path: keys/release.pub}
`
	file := filepath.Join(dir, "pullgate.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := Parse(file, f)
	if err != nil {
		t.Fatalf("Parse() error: %v", err)
	}
	k := cfg.Policies[0].Signers[0].Key
	if k.Path != filepath.Join(dir, "keys", "release.pub") {
		t.Errorf("Key.Path = %q, want %q", k.Path, filepath.Join(dir, "keys", "release.pub"))
	}
	if !keyP384().PublicKey.Equal(k.PublicKey) {
		t.Errorf("Key.PublicKey = %v, want the P-384 test key", k.PublicKey)
	}
	if want := wantGeneration(yaml, key); cfg.Generation != want {
		t.Errorf("Generation = %s, want %s", cfg.Generation, want)
	}

	// A missing key file is reported with its path and wraps fs.ErrNotExist.
	if err := os.Remove(filepath.Join(dir, "keys", "release.pub")); err != nil {
		t.Fatal(err)
	}
	_, err = Parse(file, strings.NewReader(yaml))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "pullgate.yaml:11: policies[0].signers[0].key.path: read key:") {
		t.Errorf("Parse(missing key) error = %v, want fs.ErrNotExist at line 11", err)
	}
}

func TestParseGeneration(t *testing.T) {
	t.Parallel()
	keyA := pemPKIX(t, keyP256().Public())
	keyB := pemPKIX(t, keyP384().Public())
	yaml := upstreamsYAML + `policies:
  - name: a
    images: [registry.example.com/a/**]
    signers:
      - name: one
        key: {path: /keys/one.pub}
      - name: two
        key: {path: /keys/two.pub}
`
	gen := func(yaml string, one, two []byte) string {
		t.Helper()
		return mustParse(t, yaml, map[string][]byte{"/keys/one.pub": one, "/keys/two.pub": two}).Generation
	}
	base := gen(yaml, keyA, keyB)
	if base != gen(yaml, keyA, keyB) {
		t.Errorf("Generation differs between identical parses")
	}
	if base == gen(yaml, keyB, keyA) {
		t.Errorf("Generation unchanged when key files swap contents")
	}
	if base == gen(yaml, append(keyA, '\n'), keyB) {
		t.Errorf("Generation unchanged when a key file changes")
	}
	if base == gen(yaml+"# comment\n", keyA, keyB) {
		t.Errorf("Generation unchanged when the configuration changes")
	}
	if want := wantGeneration(yaml, keyA, keyB); base != want {
		t.Errorf("Generation = %s, want %s", base, want)
	}
}

func TestParseKeyTypes(t *testing.T) {
	t.Parallel()
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key2048().PublicKey)})
	ecPriv, err := x509.MarshalECPrivateKey(keyP256())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pem     []byte
		wantErr string // substring; empty for success
	}{
		{name: "ECDSA P-256", pem: pemPKIX(t, keyP256().Public())},
		{name: "ECDSA P-384", pem: pemPKIX(t, keyP384().Public())},
		{name: "ECDSA P-521", pem: pemPKIX(t, keyP521().Public())},
		{name: "RSA 2048", pem: pemPKIX(t, key2048().Public())},
		{name: "RSA 2048 PKCS#1", pem: pkcs1},
		{name: "Ed25519", pem: pemPKIX(t, keyEd().Public())},
		{name: "ECDSA P-224", pem: pemPKIX(t, keyP224().Public()), wantErr: "/keys/k.pub: ECDSA curve P-224 is not supported"},
		{name: "RSA 1024", pem: pemPKIX(t, key1024().Public()), wantErr: "/keys/k.pub: RSA key has 1024 bits: want at least 2048"},
		{name: "private key", pem: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecPriv}), wantErr: `PEM block "EC PRIVATE KEY" is a private key`},
		{name: "certificate", pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), wantErr: `PEM block "CERTIFICATE" is not a public key`},
		{name: "two keys", pem: append(pemPKIX(t, keyP256().Public()), pemPKIX(t, keyP384().Public())...), wantErr: "more than one PEM block"},
		{name: "garbage DER", pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("garbage")}), wantErr: "parse public key:"},
		{name: "not PEM", pem: []byte("ssh-ed25519 AAAA"), wantErr: "no PEM block found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			yaml := upstreamsYAML + `policies:
  - name: a
    images: [registry.example.com/a]
    signers:
      - name: k
        key: {path: /keys/k.pub}
`
			cfg, err := parseString(t, yaml, map[string][]byte{"/keys/k.pub": tt.pem})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse() error: %v", err)
				}
				if k := cfg.Policies[0].Signers[0].Key; k.PublicKey == nil || string(k.PEM) != string(tt.pem) {
					t.Errorf("Key = %+v, want the parsed key", k)
				}
				return
			}
			want := "pullgate.yaml:11: policies[0].signers[0].key.path: " + "/keys/k.pub: "
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse() error = %v, want %q and %q", err, want, tt.wantErr)
			}
		})
	}
}

func TestParseKeyless(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		keyless string // flow mapping
		want    *Keyless
		wantErr string
	}{
		{
			name:    "exact",
			keyless: `{issuer: https://i.example.com, subject: a@example.com}`,
			want:    &Keyless{Issuer: "https://i.example.com", Subject: "a@example.com"},
		},
		{
			name:    "regexps",
			keyless: `{issuerRegExp: 'https://.*\.example\.com', subjectRegExp: '.*'}`,
			want:    &Keyless{IssuerRegExp: `https://.*\.example\.com`, SubjectRegExp: ".*"},
		},
		{
			name:    "all extensions",
			keyless: `{issuer: i, subject: s, extensions: {` + allExtensions() + `}}`,
			want:    &Keyless{Issuer: "i", Subject: "s", Extensions: allExtensionsMap()},
		},
		{
			name:    "issuer and issuerRegExp",
			keyless: `{issuer: i, issuerRegExp: i, subject: s}`,
			wantErr: "pullgate.yaml:11: policies[0].signers[0].keyless: set exactly one of issuer and issuerRegExp, not both",
		},
		{
			name:    "no issuer",
			keyless: `{subject: s}`,
			wantErr: "pullgate.yaml:11: policies[0].signers[0].keyless: missing issuer or issuerRegExp",
		},
		{
			name:    "subject and subjectRegExp",
			keyless: `{issuer: i, subject: s, subjectRegExp: s}`,
			wantErr: "pullgate.yaml:11: policies[0].signers[0].keyless: set exactly one of subject and subjectRegExp, not both",
		},
		{
			name:    "no subject",
			keyless: `{issuer: i}`,
			wantErr: "pullgate.yaml:11: policies[0].signers[0].keyless: missing subject or subjectRegExp",
		},
		{
			name:    "bad subject regexp",
			keyless: `{issuer: i, subjectRegExp: 'a(b'}`,
			wantErr: "pullgate.yaml:11: policies[0].signers[0].keyless.subjectRegExp: invalid regular expression: error parsing regexp: missing closing )",
		},
		{
			name:    "bad issuer regexp",
			keyless: `{issuerRegExp: '(?<x', subject: s}`,
			wantErr: "pullgate.yaml:11: policies[0].signers[0].keyless.issuerRegExp: invalid regular expression",
		},
		{
			name:    "unknown extension",
			keyless: `{issuer: i, subject: s, extensions: {githubWorkflowBranch: main}}`,
			wantErr: `pullgate.yaml:11: policies[0].signers[0].keyless.extensions: unknown field "githubWorkflowBranch"`,
		},
		{
			name:    "issuer extension",
			keyless: `{issuer: i, subject: s, extensions: {issuer: i}}`,
			wantErr: "pullgate.yaml:11: policies[0].signers[0].keyless.extensions: issuer is not an extension here: use keyless.issuer",
		},
		{
			name:    "empty extension value",
			keyless: `{issuer: i, subject: s, extensions: {githubWorkflowRef: ""}}`,
			wantErr: "pullgate.yaml:11: policies[0].signers[0].keyless.extensions.githubWorkflowRef: must not be empty",
		},
		{
			name:    "undefined trust root",
			keyless: `{issuer: i, subject: s, trustRoot: corp}`,
			wantErr: `pullgate.yaml:11: policies[0].signers[0].keyless.trustRoot: trusted root "corp" is not defined in trustRoots`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			yaml := upstreamsYAML + `policies:
  - name: a
    images: [registry.example.com/a]
    signers:
      - name: k
        keyless: ` + tt.keyless + "\n"
			cfg, err := parseString(t, yaml, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Parse() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, cfg.Policies[0].Signers[0].Keyless); diff != "" {
				t.Errorf("Keyless mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func allExtensions() string {
	var parts []string
	for _, name := range ExtensionNames() {
		parts = append(parts, name+": v-"+name)
	}
	return strings.Join(parts, ", ")
}

func allExtensionsMap() map[string]string {
	m := make(map[string]string)
	for _, name := range ExtensionNames() {
		m[name] = "v-" + name
	}
	return m
}

func TestKeylessPatterns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		k           Keyless
		wantSubject string
		wantIssuer  string
	}{
		{Keyless{Issuer: "i", Subject: "s"}, "", ""},
		{Keyless{IssuerRegExp: `https://a|https://b`, SubjectRegExp: ".*"}, "^(?:.*)$", "^(?:https://a|https://b)$"},
		{Keyless{Issuer: "i", SubjectRegExp: `^https://github\.com/myorg/.+$`}, `^(?:^https://github\.com/myorg/.+$)$`, ""},
	}
	for _, tt := range tests {
		if got := tt.k.SubjectPattern(); got != tt.wantSubject {
			t.Errorf("SubjectPattern(%q) = %q, want %q", tt.k.SubjectRegExp, got, tt.wantSubject)
		}
		if got := tt.k.IssuerPattern(); got != tt.wantIssuer {
			t.Errorf("IssuerPattern(%q) = %q, want %q", tt.k.IssuerRegExp, got, tt.wantIssuer)
		}
	}
	// The anchored form rejects what the bare expression would find
	// inside a longer value.
	for _, tt := range []struct{ re, value string }{
		{"https://github.com/myorg/", "https://github.com/myorg/app@evil"},
		{"a|b", "xa"},
		{"a|b", "bx"},
	} {
		k := Keyless{SubjectRegExp: tt.re}
		if regexpMatch(t, k.SubjectPattern(), tt.value) {
			t.Errorf("SubjectPattern(%q) matches %q, want no match", tt.re, tt.value)
		}
	}
}

func TestExtensionNames(t *testing.T) {
	t.Parallel()
	names := ExtensionNames()
	for _, want := range []string{"githubWorkflowSHA", "githubWorkflowTrigger", "githubWorkflowRepository", "buildSignerURI", "sourceRepositoryVisibilityAtSigning"} {
		if !containsString(names, want) {
			t.Errorf("ExtensionNames() lacks %q", want)
		}
	}
	if containsString(names, "issuer") {
		t.Errorf("ExtensionNames() contains issuer")
	}
	names[0] = "changed"
	if ExtensionNames()[0] == "changed" {
		t.Errorf("ExtensionNames() returns shared storage")
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestParseSignatures(t *testing.T) {
	t.Parallel()
	head := upstreamsYAML + `policies:
  - name: a
    images: [registry.example.com/a]
    signers:
      - name: one
        keyless: {issuer: i, subject: one}
      - name: two
        keyless: {issuer: i, subject: two}
      - name: three
        keyless: {issuer: i, subject: three}
`
	tests := []struct {
		name          string
		signatures    string
		wantThreshold int
		wantSigners   []string
	}{
		{"default", "", 1, []string{"one", "two", "three"}},
		{"threshold only", "    signatures: {threshold: 3}\n", 3, []string{"one", "two", "three"}},
		{"subset", "    signatures: {threshold: 2, signers: [three, one]}\n", 2, []string{"three", "one"}},
		{"zero", "    signatures: {threshold: 0}\n", 0, []string{"one", "two", "three"}},
		{"subset default threshold", "    signatures: {signers: [two]}\n", 1, []string{"two"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := mustParse(t, head+tt.signatures, nil)
			sigs := cfg.Policies[0].Signatures
			var names []string
			for _, s := range sigs.Signers {
				names = append(names, s.Name)
			}
			if sigs.Threshold != tt.wantThreshold {
				t.Errorf("Threshold = %d, want %d", sigs.Threshold, tt.wantThreshold)
			}
			if diff := cmp.Diff(tt.wantSigners, names); diff != "" {
				t.Errorf("Signers mismatch (-want +got):\n%s", diff)
			}
		})
	}
	_, err := parseString(t, head+"    signatures: {threshold: 2, signers: [one]}\n", nil)
	if err == nil || !strings.Contains(err.Error(), "pullgate.yaml:16: policies[0].signatures.threshold: threshold 2 is more than the 1 signers that count") {
		t.Errorf("Parse(threshold above subset) error = %v", err)
	}
}

func TestParseAttestations(t *testing.T) {
	t.Parallel()
	yaml := upstreamsYAML + `policies:
  - name: a
    images: [registry.example.com/a]
    signers:
` + keylessSigner + `    attestations:
      - predicateType: slsaprovenance1
      - predicateType: cyclonedx
      - predicateType: openvex
      - predicateType: urn:example:predicate
`
	cfg := mustParse(t, yaml, nil)
	var got []string
	for _, a := range cfg.Policies[0].Attestations {
		got = append(got, a.PredicateType)
	}
	want := []string{"https://slsa.dev/provenance/v1", "https://cyclonedx.org/bom", "https://openvex.dev/ns", "urn:example:predicate"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("predicate types mismatch (-want +got):\n%s", diff)
	}
}

func TestExpandPredicateType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "slsaprovenance", want: "https://slsa.dev/provenance/v0.2"},
		{in: "slsaprovenance02", want: "https://slsa.dev/provenance/v0.2"},
		{in: "slsaprovenance1", want: "https://slsa.dev/provenance/v1"},
		{in: "spdx", want: "https://spdx.dev/Document"},
		{in: "spdxjson", want: "https://spdx.dev/Document"},
		{in: "cyclonedx", want: "https://cyclonedx.org/bom"},
		{in: "link", want: "https://in-toto.io/Link/v1"},
		{in: "vuln", want: "https://cosign.sigstore.dev/attestation/vuln/v1"},
		{in: "openvex", want: "https://openvex.dev/ns"},
		{in: "custom", want: "https://cosign.sigstore.dev/attestation/v1"},
		{in: "https://slsa.dev/provenance/v1", want: "https://slsa.dev/provenance/v1"},
		{in: "https://sigstore.dev/cosign/sign/v1", want: "https://sigstore.dev/cosign/sign/v1"},
		{in: "SLSAprovenance", wantErr: true},
		{in: "slsa", wantErr: true},
		{in: "/relative/path", wantErr: true},
		{in: "https://example.com/a b", wantErr: true},
		{in: "", wantErr: true},
		{in: "%zz", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ExpandPredicateType(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ExpandPredicateType(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseAliases(t *testing.T) {
	t.Parallel()
	yaml := upstreamsYAML + `signers: &signers
  - name: ci
    keyless: {issuer: i, subject: s}
policies:
  - name: a
    images: [registry.example.com/a]
    signers: *signers
`
	_, err := parseString(t, yaml, nil)
	if err == nil || !strings.Contains(err.Error(), `pullgate.yaml:6: unknown field "signers"`) {
		t.Fatalf("Parse() error = %v, want unknown top-level field", err)
	}
	// Anchors on known fields work.
	yaml = upstreamsYAML + `policies:
  - name: a
    images: [registry.example.com/a]
    signers: &signers
      - name: ci
        keyless: {issuer: i, subject: s}
  - name: b
    images: [registry.example.com/b]
    signers: *signers
`
	cfg := mustParse(t, yaml, nil)
	if len(cfg.Policies) != 2 || cfg.Policies[1].Signers[0].Keyless.Subject != "s" {
		t.Errorf("Parse() with aliases = %+v", cfg.Policies)
	}
	if cfg.Policies[0].Signers[0] == cfg.Policies[1].Signers[0] {
		t.Errorf("aliased signers share a *Signer across rules")
	}
}

func TestParseAliasBomb(t *testing.T) {
	t.Parallel()
	// Each level multiplies the references by ten.
	var b strings.Builder
	b.WriteString(upstreamsYAML + "x0: &x0 [registry.example.com/a]\n")
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&b, "x%d: &x%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*x%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("policies:\n  - name: a\n    images: *x7\n")
	start := time.Now()
	_, err := parseString(t, b.String(), nil)
	if err == nil {
		t.Fatal("Parse(alias bomb) = nil error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Parse(alias bomb) took %v", d)
	}
}

func TestWithReadFileNil(t *testing.T) {
	t.Parallel()
	if _, err := Parse(testFile, strings.NewReader(upstreamsYAML), WithReadFile(nil)); err == nil {
		t.Errorf("Parse(WithReadFile(nil)) = nil error, want error")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReadError(t *testing.T) {
	t.Parallel()
	_, err := Parse(testFile, failingReader{})
	if err == nil || !strings.Contains(err.Error(), "read /etc/pullgate/pullgate.yaml: disk on fire") {
		t.Errorf("Parse(failing reader) error = %v", err)
	}
}

// TestParseContractExample parses the example of the user contract in
// ARCHITECTURE.md, comments and all.
func TestParseContractExample(t *testing.T) {
	t.Parallel()
	yaml := `listen: 127.0.0.1:5050                 # OCI API address (plain HTTP unless tls is set)
tls: {certFile: tls.crt, keyFile: tls.key}   # optional
upstreams:                             # the only registries pullgate ever contacts
  - registry: docker.io                # the name images use; containerd sends it as ?ns=
    endpoint: https://registry-1.docker.io
  - registry: registry.example.com
    endpoint: https://registry.example.com
    auth: {username: robot, passwordFile: /run/secrets/registry-password}   # or {dockerConfig: /path/config.json}
defaultRegistry: docker.io             # for requests that name no registry
trustedRoot: trusted_root.json         # Sigstore trust material for keyless and transparency-log checks
policies:
  - name: apps
    images: ["registry.example.com/apps/**"]   # * = within one path segment, ** = any depth; the most specific match wins
    mode: enforce                      # enforce | audit
    signers:                           # the identities this policy trusts, by name
      - name: release-key
        key: {path: keys/release.pub}            # or {pem: "-----BEGIN PUBLIC KEY-----…"}
      - name: ci
        keyless:
          issuer: https://token.actions.githubusercontent.com
          subjectRegExp: '^https://github\.com/myorg/.+$'
    signatures:                        # optional; the default is threshold 1 over all signers
      threshold: 1                     # how many signers must have a valid signature on the image; 0 must be written out to require none
      signers: [release-key, ci]       # optional subset of the signers above
    attestations:
      - predicateType: https://slsa.dev/provenance/v0.2
        signers: [ci]                  # whose attestations count (default: any of the policy's signers)
        condition: 'predicate.builder.id.startsWith("https://github.com/myorg/")'   # CEL over the statement
unmatched: deny                        # deny | allow, for images no policies name
`
	cfg := mustParse(t, yaml, map[string][]byte{"/etc/pullgate/keys/release.pub": pemPKIX(t, keyP256().Public())})
	r, err := cfg.Match("registry.example.com/apps/web")
	if err != nil || r.Name != "apps" {
		t.Errorf("Match() = %v, %v; want apps", r, err)
	}
	if _, err := cfg.Match("docker.io/library/nginx"); !errors.Is(err, ErrNoRule) {
		t.Errorf("Match(nginx) error = %v, want ErrNoRule", err)
	}
	if got := cfg.Upstream("registry.example.com").Auth.PasswordFile; got != "/run/secrets/registry-password" {
		t.Errorf("PasswordFile = %q", got)
	}
}

// The cache sections TestParseFull and TestParseDefaults expect.
var (
	fullCache = Cache{VerdictTTL: 2 * time.Hour, DenyTTL: time.Minute, MaxEntries: 500, TagTTL: 0,
		ManifestBytes: 8 << 20, Dir: "/etc/pullgate/cache", MaxBytes: 20 << 30}
	defaultCache = Cache{VerdictTTL: time.Hour, DenyTTL: 30 * time.Second, MaxEntries: 100000, TagTTL: 5 * time.Second,
		ManifestBytes: 16 << 20, MaxBytes: 10 << 30}
)
