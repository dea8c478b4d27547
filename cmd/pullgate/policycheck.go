package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

func policyCheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var cf commonFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return &exitCodeError{code: exitError, err: errors.New("")}
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("policy check takes no arguments, got %q", fs.Args())
	}
	cfg, err := loadConfig(cf.config)
	if err != nil {
		return &exitCodeError{code: exitDenied, err: err}
	}
	signers := 0
	for _, r := range cfg.Policies {
		signers += len(r.Signers)
	}
	fmt.Fprintf(stdout, "%s: ok: %d upstreams, %d policies, %d signers, unmatched: %s, generation %s\n",
		cf.config, len(cfg.Upstreams), len(cfg.Policies), signers, cfg.Unmatched, cfg.Generation[:12])
	return nil
}
