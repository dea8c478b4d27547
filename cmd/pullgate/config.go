package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/pullgate/pullgate/cache"
	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/proxy"
	"github.com/pullgate/pullgate/verifier"
)

// The verifier is the proxy's Verifier.
var _ proxy.Verifier = (*verifier.Sigstore)(nil)

// commonFlags are the flags every config-reading command takes.
type commonFlags struct {
	config    string
	logLevel  string
	logFormat string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "pullgate.yaml", "configuration file")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")
}

// loadConfig reads, validates and checks the configuration file: it fails
// when the file is invalid or asks for something this build cannot
// enforce (a policy pullgate cannot enforce must never load as if it could).
func loadConfig(path string) (*policy.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, err := policy.Parse(path, f)
	if err != nil {
		return nil, err
	}
	if err := verifier.Check(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// newLogger builds the process logger: JSON or text to w, with the
// request ID of the request a line belongs to.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("invalid --log-format %q: json or text", format)
	}
	return slog.New(requestIDHandler{h}), nil
}

// requestIDHandler adds the request ID (set by the proxy) to log lines.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := proxy.RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// newVerifier builds the verifier for cfg over the trusted roots of tr,
// and checks that the roots give every signer what it needs (a Fulcio
// CA for keyless signers, Rekor keys for tlog: required).
func newVerifier(cfg *policy.Config, log *slog.Logger, tr *trust) (*verifier.Sigstore, error) {
	opts := []verifier.Option{verifier.WithLogger(log), verifier.WithLimits(cfg.Limits)}
	if tr != nil {
		opts = append(opts, tr.options()...)
	}
	v, err := verifier.New(opts...)
	if err != nil {
		return nil, err
	}
	if err := v.Check(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return v, nil
}

// newServer wires the verifier and the proxy for cfg, with extra proxy
// options (serve adds the blob cache).
func newServer(cfg *policy.Config, log *slog.Logger, tr *trust, opts ...proxy.Option) (*proxy.Server, error) {
	v, err := newVerifier(cfg, log, tr)
	if err != nil {
		return nil, err
	}
	opts = append([]proxy.Option{proxy.WithLogger(log), proxy.WithUserAgent("pullgate/" + version)}, opts...)
	return proxy.New(cfg, v, opts...)
}

// blobCache opens the disk blob cache cfg.Cache.Dir names (creating it),
// or returns no option when none is configured. Only serve uses it: one
// directory belongs to one process.
func blobCache(cfg *policy.Config, log *slog.Logger) ([]proxy.Option, error) {
	if cfg.Cache.Dir == "" {
		return nil, nil
	}
	d, err := cache.NewDisk(cfg.Cache.Dir, cfg.Cache.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: cache.dir: %w", cfg.File, err)
	}
	n, size := d.Usage()
	log.Info("blob cache", "dir", cfg.Cache.Dir, "maxBytes", cfg.Cache.MaxBytes, "blobs", n, "bytes", size)
	return []proxy.Option{proxy.WithBlobCache(d)}, nil
}

// warnWeakenings logs every configured option that weakens verification,
// so it is never silent.
func warnWeakenings(log *slog.Logger, cfg *policy.Config) {
	if cfg.Unmatched == policy.ActionAllow {
		log.Warn("unmatched: allow serves images that no policy names WITHOUT verification")
	}
	for _, r := range cfg.Policies {
		if r.Mode == policy.ModeAudit {
			log.Warn("policy is in audit mode: images it denies are served anyway (and logged)", "policy", r.Name)
		}
		switch {
		case r.Signatures.Threshold == 0 && len(r.Attestations) == 0:
			log.Warn("policy requires no signature and no attestation (signatures.threshold: 0): its images are served unverified", "policy", r.Name)
		case r.Signatures.Threshold == 0:
			log.Info("policy requires no signature, only its attestations (signatures.threshold: 0)", "policy", r.Name)
		}
		for _, sg := range r.Signers {
			if sg != nil && sg.Keyless != nil && sg.TLog != policy.TLogRequired {
				log.Warn("keyless signer does not require a transparency log entry (tlog: "+string(sg.TLog)+")",
					"policy", r.Name, "signer", sg.Name)
			}
		}
	}
}
