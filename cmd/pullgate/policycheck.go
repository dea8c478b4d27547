package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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
	// Parse the trusted roots and check them against the signers (no
	// TUF fetch: a TUF-only root is checked when pullgate starts).
	log := slog.New(slog.DiscardHandler)
	tr, err := loadTrust(cfg, log, "")
	if err == nil {
		_, err = newVerifier(cfg, log, tr)
	} else {
		err = fmt.Errorf("%s: %w", cf.config, err)
	}
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
