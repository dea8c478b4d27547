package policy

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// attestationYAML is a configuration with one attestation requirement
// whose condition field is cond (written after "condition:", so it may
// be a block scalar). The condition is on line 14.
func attestationYAML(cond string) string {
	return upstreamsYAML + `policies:
  - name: a
    images: [registry.example.com/a]
    signers:
` + keylessSigner + `    attestations:
      - predicateType: slsaprovenance
        condition: ` + cond + "\n"
}

func TestParseConditions(t *testing.T) {
	t.Parallel()
	t.Run("compiled at load", func(t *testing.T) {
		t.Parallel()
		cfg := mustParse(t, attestationYAML(`'predicate.builder.id == "https://b" && now - timestamp(predicate.metadata.buildFinishedOn) < duration("168h")'`), nil)
		a := cfg.Policies[0].Attestations[0]
		if a.Program == nil || a.Program.String() != a.Condition {
			t.Fatalf("Program = %v, want the compiled %q", a.Program, a.Condition)
		}
	})
	t.Run("no condition", func(t *testing.T) {
		t.Parallel()
		cfg := mustParse(t, strings.Replace(attestationYAML("x"), "        condition: x\n", "", 1), nil)
		if a := cfg.Policies[0].Attestations[0]; a.Program != nil || a.Condition != "" {
			t.Fatalf("attestation without condition = %+v", a)
		}
	})
	tests := []struct {
		name, cond, want string
	}{
		{"syntax", `'predicate.builder.id ==='`,
			`pullgate.yaml:14: policies[0].attestations[0].condition: invalid CEL expression: column 24: Syntax error: token recognition error at: '='`},
		{"undeclared variable", `'predicat.builder.id == "x"'`,
			`pullgate.yaml:14: policies[0].attestations[0].condition: invalid CEL expression: column 1: undeclared reference to 'predicat'`},
		{"type error", `'predicateType + 1 == "x"'`,
			`pullgate.yaml:14: policies[0].attestations[0].condition: invalid CEL expression: column 15: found no matching overload for '_+_' applied to '(string, int)'`},
		{"not boolean", `'predicateType'`,
			`pullgate.yaml:14: policies[0].attestations[0].condition: invalid CEL expression: must be a boolean expression, not of type string`},
		{"dyn", `'predicate.ok'`,
			`pullgate.yaml:14: policies[0].attestations[0].condition: invalid CEL expression: must be a boolean expression, not of type dyn (compare the value, e.g. predicate.ok == true)`},
		{"empty", `' '`,
			`pullgate.yaml:14: policies[0].attestations[0].condition: invalid CEL expression: empty expression`},
		// In a literal block the error names the line of the expression.
		{"block scalar", "|\n          predicate.builder.id == \"x\" &&\n          predicate.nope(1)",
			`pullgate.yaml:16: policies[0].attestations[0].condition: invalid CEL expression: column 15: undeclared reference to 'nope'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseString(t, attestationYAML(tt.cond), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v\nwant one containing %q", err, tt.want)
			}
		})
	}
}

func TestConditionEval(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	in := ConditionInput{
		PredicateType: "https://cosign.sigstore.dev/attestation/vuln/v1",
		Subject:       []any{map[string]any{"name": "r/a", "digest": map[string]any{"sha256": "ab"}}},
		Predicate: map[string]any{
			"scanner": map[string]any{
				"uri": "pkg:github/aquasecurity/trivy@0.50.0",
				"result": map[string]any{"Results": []any{
					map[string]any{"Vulnerabilities": []any{
						map[string]any{"VulnerabilityID": "CVE-1", "Severity": "HIGH"},
						map[string]any{"VulnerabilityID": "CVE-2", "Severity": "LOW"},
					}},
				}},
			},
			"metadata": map[string]any{"scanFinishedOn": "2026-03-01T00:00:00Z"},
			"count":    float64(2),
		},
		Now: now,
	}
	tests := []struct {
		cond    string
		want    bool
		wantErr string
	}{
		{cond: `predicateType == "https://cosign.sigstore.dev/attestation/vuln/v1"`, want: true},
		{cond: `subject.exists(s, s.digest.sha256 == "ab")`, want: true},
		{cond: `now - timestamp(predicate.metadata.scanFinishedOn) < duration("168h")`, want: true},
		{cond: `now - timestamp(predicate.metadata.scanFinishedOn) < duration("24h")`, want: false},
		{cond: `predicate.scanner.result.Results.all(r, !has(r.Vulnerabilities) || r.Vulnerabilities.all(v, v.Severity != "CRITICAL"))`, want: true},
		{cond: `predicate.scanner.result.Results.exists(r, r.Vulnerabilities.exists(v, v.Severity == "HIGH"))`, want: true},
		{cond: `predicate.count == 2 && predicate.count < 3`, want: true}, // JSON numbers are doubles; comparisons cross types
		{cond: `predicate.?missing.orValue("none") == "none"`, want: true},
		{cond: `predicate.scanner.uri.lowerAscii().startsWith("pkg:github/aquasecurity/trivy")`, want: true},
		{cond: `predicate.missing == "x"`, wantErr: "no such key: missing"},
		{cond: `timestamp(predicate.scanner.uri) < now`, wantErr: "invalid RFC 3339 timestamp"},
		{cond: `predicate.count + 1 == 3`, wantErr: "no such overload"},
		// A pathological expression stops at the cost limit.
		{cond: `[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, [1,2,3,4,5,6,7,8,9,10].all(f, a+b+c+d+e+f > 0))))))`,
			wantErr: "cost limit exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			t.Parallel()
			c, err := CompileCondition(tt.cond)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Eval(t.Context(), in)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Eval = %v, %v; want an error containing %q", got, err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Eval error: %v", err)
			case got != tt.want:
				t.Fatalf("Eval = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConditionEvalCancelled(t *testing.T) {
	t.Parallel()
	ten := "[1,2,3,4,5,6,7,8,9,10]"
	c := MustCompileCondition(ten + ".all(a, " + ten + ".all(b, " + ten + ".all(c, a*b*c > 0)))")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if got, err := c.Eval(ctx, ConditionInput{}); err == nil || got {
		t.Fatalf("Eval with a cancelled context = %v, %v; want an error", got, err)
	}
}

func TestCompileConditionError(t *testing.T) {
	t.Parallel()
	_, err := CompileCondition("predicateType ==\n  1 +")
	var ce *ConditionError
	if !errors.As(err, &ce) || ce.Line != 2 || ce.Column == 0 {
		t.Fatalf("CompileCondition error = %#v, want a *ConditionError on line 2", err)
	}
	if !strings.HasPrefix(err.Error(), "line 2, column ") {
		t.Errorf("Error() = %q", err)
	}
	var nilCond *Condition
	if _, err := nilCond.Eval(t.Context(), ConditionInput{}); err == nil {
		t.Error("nil condition evaluated without error")
	}
	if !nilCond.Equal(nil) || nilCond.Equal(MustCompileCondition("true")) || !MustCompileCondition("true").Equal(MustCompileCondition("true")) {
		t.Error("Equal is wrong")
	}
}

// TestREADMEAttestationExamples parses every policy example of the
// README's "Attestation policies" section (the YAML blocks that are
// policy entries), so the documented conditions compile.
func TestREADMEAttestationExamples(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### Attestation policies\n")
	if !ok {
		t.Fatal("README has no Attestation policies section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	n := 0
	for _, block := range strings.Split(section, "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if !strings.HasPrefix(block, "  - name: ") {
			continue
		}
		n++
		yaml := `upstreams:
  - registry: registry.example.com
    endpoint: https://registry.example.com
  - registry: ghcr.io
    endpoint: https://ghcr.io
policies:
` + block
		cfg, err := Parse(testFile, strings.NewReader(yaml), WithReadFile(fakeFiles(map[string][]byte{
			"/etc/pullgate/keys/release.pub": pemPKIX(t, keyP256().Public()),
		})))
		if err != nil {
			t.Errorf("README example %d:\n%s\n%v", n, block, err)
			continue
		}
		for _, a := range cfg.Policies[0].Attestations {
			if a.Condition != "" && a.Program == nil {
				t.Errorf("README example %d: condition %q not compiled", n, a.Condition)
			}
		}
	}
	if n != 3 {
		t.Errorf("found %d policy examples in the README's Attestation policies section, want 3", n)
	}
}

// FuzzCondition compiles arbitrary expressions and evaluates those that
// compile over a fixed statement: nothing may panic, compiled conditions
// are boolean, and every evaluation ends (cost limit) in a bool or an
// error.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{
		`predicate.builder.id == "x"`,
		`now - timestamp(predicate.metadata.scanFinishedOn) < duration("168h")`,
		`subject.all(s, s.digest.sha256.size() == 64)`,
		`[1,2,3].map(x, x * 2).exists(y, y > 4)`,
		`predicate.?a.orValue("b").lowerAscii().split("/").size() > 1`,
		`predicateType.matches("^https://(slsa|cyclonedx)\\.`,
	} {
		f.Add(s)
	}
	in := ConditionInput{
		PredicateType: "https://slsa.dev/provenance/v0.2",
		Subject:       []any{map[string]any{"name": "r/a", "digest": map[string]any{"sha256": strings.Repeat("a", 64)}}},
		Predicate: map[string]any{
			"builder":  map[string]any{"id": "x"},
			"metadata": map[string]any{"scanFinishedOn": "2026-01-01T00:00:00Z"},
			"a":        []any{1.0, "two", nil, true, map[string]any{}},
		},
		Now: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := CompileCondition(src)
		if err != nil {
			var ce *ConditionError
			if !errors.As(err, &ce) {
				t.Fatalf("CompileCondition(%q) error %v is not a *ConditionError", src, err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, _ = c.Eval(ctx, in)
		if ctx.Err() != nil {
			t.Fatalf("condition %q ran into the 10 s timeout: the cost limit did not stop it", src)
		}
	})
}
