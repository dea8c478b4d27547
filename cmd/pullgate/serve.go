package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/pullgate/pullgate/proxy"
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf commonFlags
	cf.register(fs)
	trustPoll := fs.Duration("trust-poll", 10*time.Second, "how often trusted_root.json files are checked for changes (0: never)")
	tufCache := fs.String("tuf-cache", "", "directory for the TUF metadata cache when tuf is configured (default: in memory)")
	tufRefresh := fs.Duration("tuf-refresh", 24*time.Hour, "how often the trusted root is refreshed from TUF when tuf is configured")
	if err := fs.Parse(args); err != nil {
		return &exitCodeError{code: exitError, err: errors.New("")}
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	log, err := newLogger(stderr, cf.logLevel, cf.logFormat)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(cf.config)
	if err != nil {
		return err
	}
	warnWeakenings(log, cfg)
	tr, err := loadTrust(cfg, log, *tufCache)
	if err != nil {
		return fmt.Errorf("%s: %w", cf.config, err)
	}
	blobs, err := blobCache(cfg, log)
	if err != nil {
		return err
	}
	tp, stopTracing, err := newTracerProvider(ctx, log)
	if err != nil {
		return err
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stopTracing(flushCtx); err != nil {
			log.Warn("flush traces", "error", err)
		}
	}()
	srv, err := newServer(cfg, log, tr, append(blobs, proxy.WithTracerProvider(tp))...)
	if err != nil {
		return err
	}
	defer srv.Close()
	tr.logLoaded()
	// Trusted roots reload (and TUF refreshes) in the background, never
	// on the request path; the watcher stops with ctx.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); tr.watch(watchCtx, *trustPoll, *tufRefresh) }()
	defer func() { stopWatch(); <-watchDone }()

	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: blob streams may legitimately take long; each
		// upstream call is bounded instead.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	log.Info("pullgate listening", "address", ln.Addr().String(), "scheme", scheme, "version", version,
		"upstreams", len(cfg.Upstreams), "policies", len(cfg.Policies), "generation", cfg.Generation[:12])

	errc := make(chan error, 1)
	go func() {
		if cfg.TLS != nil {
			errc <- hs.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
