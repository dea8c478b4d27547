package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

func verify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	cf.logLevel = "warn"
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return &exitCodeError{code: exitError, err: errors.New("")}
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("verify takes exactly one IMAGE, e.g. registry.example.com/apps/web:1.2")
	}
	log, err := newLogger(stderr, cf.logLevel, "text")
	if err != nil {
		return err
	}
	cfg, err := loadConfig(cf.config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	tr, err := loadTrust(cfg, log, "")
	if err != nil {
		return fmt.Errorf("%s: %w", cf.config, err)
	}
	if tr.tuf != nil {
		// A one-shot command: fetching the TUF root here is the
		// equivalent of serve's start-up refresh, not a request path.
		if err := tr.refreshTUF(ctx); err != nil && cfg.TrustedRoot == "" {
			return fmt.Errorf("tuf: %w", err)
		}
	}
	srv, err := newServer(cfg, log, tr)
	if err != nil {
		return err
	}
	defer srv.Close()
	d, err := srv.Check(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	v := d.Verdict
	policyName := v.Policy
	if policyName == "" {
		policyName = "(none: unmatched)"
	}
	fmt.Fprintf(stdout, "image:     %s\n", d.Image)
	fmt.Fprintf(stdout, "reference: %s\n", d.Reference)
	fmt.Fprintf(stdout, "digest:    %s\n", d.Digest)
	fmt.Fprintf(stdout, "mediaType: %s\n", d.MediaType)
	fmt.Fprintf(stdout, "policy:    %s\n", policyName)
	switch {
	case v.Allowed:
		fmt.Fprintln(stdout, "verdict:   ALLOWED")
	case d.Served:
		fmt.Fprintln(stdout, "verdict:   DENIED (audit mode: a pull would still be served)")
	default:
		fmt.Fprintln(stdout, "verdict:   DENIED")
	}
	for _, r := range v.Reasons {
		fmt.Fprintf(stdout, "reason:    %s\n", r)
	}
	for _, e := range v.Evidence {
		var b strings.Builder
		fmt.Fprintf(&b, "evidence:  signer %q via %s", e.Signer, e.Layout)
		if e.Artifact != "" {
			fmt.Fprintf(&b, " (artifact %s)", e.Artifact)
		}
		if e.PredicateType != "" {
			fmt.Fprintf(&b, " predicateType %s", e.PredicateType)
		}
		if e.Requirement != "" {
			fmt.Fprintf(&b, " satisfies attestation %s", e.Requirement)
			if e.Condition != "" {
				fmt.Fprintf(&b, " (condition %s)", e.Condition)
			}
		}
		if e.Identity != "" {
			fmt.Fprintf(&b, " identity %s issuer %s", e.Identity, e.Issuer)
		}
		if e.LogIndex >= 0 {
			fmt.Fprintf(&b, " logIndex %d", e.LogIndex)
			if !e.IntegratedTime.IsZero() {
				fmt.Fprintf(&b, " integratedTime %s", e.IntegratedTime.UTC().Format(time.RFC3339))
			}
		}
		if !e.SignedTimestamp.IsZero() {
			fmt.Fprintf(&b, " timestamp %s", e.SignedTimestamp.UTC().Format(time.RFC3339))
		}
		if e.TrustRoot != "" {
			fmt.Fprintf(&b, " trustRoot %s", e.TrustRoot)
		}
		fmt.Fprintln(stdout, b.String())
	}
	if !v.Allowed {
		return &exitCodeError{code: exitDenied, err: errors.New("")}
	}
	return nil
}
