package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the demo against a freshly built pullgate, so `make demo`
// keeps working: both signed images are allowed, the unsigned one denied
// with its reason, and the decision log shows all three decisions.
func TestDemo(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "pullgate")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../pullgate").CombinedOutput(); err != nil {
		t.Fatalf("build pullgate: %v\n%s", err, out)
	}
	var out bytes.Buffer
	if err := run(t.Context(), bin, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"/demo/hello:signed-v2   ALLOWED",
		"/demo/hello:signed-v3   ALLOWED",
		"/demo/hello:unsigned    DENIED",
		`by policy "demo": no signature`,
		"verdict:   ALLOWED",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, `"msg":"decision"`); n != 3 {
		t.Errorf("demo shows %d decision log lines, want 3:\n%s", n, got)
	}
	if strings.Contains(got, "UNEXPECTED") {
		t.Errorf("demo reports an unexpected outcome:\n%s", got)
	}
}
