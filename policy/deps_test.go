package policy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies enforces that policy is a leaf: no other project
// package, and no HTTP code.
func TestDependencies(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.CommandContext(t.Context(), goBin, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "net/http" || strings.HasPrefix(dep, "net/http/"):
			t.Errorf("policy depends on %s", dep)
		case strings.HasPrefix(dep, "github.com/pullgate/pullgate/") && dep != "github.com/pullgate/pullgate/policy":
			t.Errorf("policy depends on project package %s", dep)
		}
	}
}
