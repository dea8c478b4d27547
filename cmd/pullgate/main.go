// Command pullgate is a verifying pull-through registry proxy: it serves
// container image manifests only when their signatures verify against a
// policy.
//
//	pullgate serve --config pullgate.yaml
//	pullgate verify --config pullgate.yaml IMAGE
//	pullgate policy check --config pullgate.yaml
//	pullgate version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes of pullgate verify (and the other commands).
const (
	exitOK     = 0
	exitDenied = 1
	exitError  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries an exit code through run.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }

const usage = `usage:
  pullgate serve --config FILE          serve the OCI API
  pullgate verify --config FILE IMAGE   verify IMAGE as a pull would; exit 0 allowed, 1 denied, 2 error
  pullgate policy check --config FILE   validate FILE; exit non-zero with file:line errors
  pullgate version                      print the version
`

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "verify":
		err = verify(ctx, args[1:], stdout, stderr)
	case "policy":
		if len(args) < 2 || args[1] != "check" {
			fmt.Fprint(stderr, usage)
			return exitError
		}
		err = policyCheck(args[2:], stdout)
	case "version", "--version", "-version":
		printVersion(stdout)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "pullgate: unknown command %q\n%s", args[0], usage)
		return exitError
	}
	if err == nil {
		return exitOK
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		if ec.err != nil && ec.err.Error() != "" {
			fmt.Fprintln(stderr, "pullgate:", ec.err)
		}
		return ec.code
	}
	fmt.Fprintln(stderr, "pullgate:", err)
	return exitError
}
