package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "pullgate %s (%s)\n", version, runtime.Version())
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	for _, dep := range bi.Deps {
		switch dep.Path {
		case "github.com/sigstore/sigstore-go", "github.com/google/go-containerregistry":
			fmt.Fprintf(w, "  %s %s\n", dep.Path, dep.Version)
		}
	}
}
