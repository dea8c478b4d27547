package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/pullgate/pullgate"

// TestArchitecture enforces the dependency rules of ARCHITECTURE.md with
// `go list -deps`: cmd → proxy → {policy, verifier, cache}, verifier →
// policy; policy and cache are leaves without HTTP; nothing but cmd and
// e2e imports proxy.
func TestArchitecture(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps=false", "-json=ImportPath,Imports,Deps", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Deps       []string
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, module+"/")] = p.Deps
	}
	// allowed lists, per top-level package, the project packages its
	// transitive dependencies may include.
	allowed := map[string][]string{
		"policy":   {},
		"cache":    {},
		"verifier": {"policy"},
		"proxy":    {"policy", "verifier", "cache"},
	}
	checked := 0
	for path, deps := range pkgs {
		top, _, _ := strings.Cut(path, "/")
		ok, ruled := allowed[top]
		if !ruled {
			continue
		}
		checked++
		for _, dep := range deps {
			if top == "policy" || top == "cache" {
				if dep == "net/http" || strings.HasPrefix(dep, "net/http/") {
					t.Errorf("%s depends on %s: policy and cache do no HTTP", path, dep)
				}
			}
			if !strings.HasPrefix(dep, module+"/") {
				continue
			}
			depTop, _, _ := strings.Cut(strings.TrimPrefix(dep, module+"/"), "/")
			if depTop == top {
				continue
			}
			if !contains(ok, depTop) {
				t.Errorf("%s depends on %s: %s may only use %v", path, dep, top, ok)
			}
		}
	}
	if checked < 4 {
		t.Fatalf("checked %d packages, want at least policy, cache, verifier and proxy: %v", checked, pkgs)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
