package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
)

// trust holds the Sigstore trusted roots of a configuration: the
// default root (trustedRoot, or tuf) and the named trustRoots. Each is
// parsed when pullgate starts (a broken file is a start-up error) and
// then reloaded in the background by [trust.watch]: a trusted_root.json
// file when its modification time or size changes, a TUF root
// periodically. A reload that fails keeps the last good root and logs
// a warning. The verifier reads the current root through
// [trustedRoot.material], an atomic load: nothing here ever runs on the
// request path.
type trust struct {
	log   *slog.Logger
	roots map[string]*trustedRoot // "" is the default root
	tuf   *tufSource              // nil unless tuf is configured
}

// trustedRoot is one named trusted root.
type trustedRoot struct {
	name string
	// path is the trusted_root.json file, or "" for a TUF-only root.
	path string
	cur  atomic.Pointer[trustMaterial]

	mu      sync.Mutex // guards the fields below (the watcher's state)
	modTime time.Time
	size    int64
	// fromTUF says cur came from TUF, which supersedes the file.
	fromTUF bool
}

// trustMaterial is one parsed trusted root and its generation: the hex
// SHA-256 of the JSON it was parsed from.
type trustMaterial struct {
	tm     *root.TrustedRoot
	gen    string
	source string
}

// material is the root's [verifier.TrustedMaterialFunc].
func (r *trustedRoot) material() (root.TrustedMaterial, string) {
	m := r.cur.Load()
	if m == nil {
		return nil, ""
	}
	return m.tm, m.gen
}

func (r *trustedRoot) label() string {
	if r.name == "" {
		return "trustedRoot"
	}
	return "trustRoots." + r.name
}

// loadTrust reads and parses every trusted root file of cfg. It does
// no network I/O: a TUF-only default root stays unavailable until
// [trust.refreshTUF] succeeds.
func loadTrust(cfg *policy.Config, log *slog.Logger, tufCache string) (*trust, error) {
	t := &trust{log: log, roots: map[string]*trustedRoot{}}
	var errs []error
	add := func(name, path string) {
		r := &trustedRoot{name: name, path: path}
		t.roots[name] = r
		if path == "" {
			return
		}
		if err := r.load(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.label(), err))
		}
	}
	if cfg.TrustedRoot != "" || cfg.TUF != nil {
		add("", cfg.TrustedRoot)
	}
	names := make([]string, 0, len(cfg.TrustRoots))
	for name := range cfg.TrustRoots {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		add(name, cfg.TrustRoots[name])
	}
	if cfg.TUF != nil {
		src, err := newTUFSource(cfg.TUF, tufCache)
		if err != nil {
			errs = append(errs, fmt.Errorf("tuf: %w", err))
		}
		t.tuf = src
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// options are the verifier options that make the verifier read these
// roots.
func (t *trust) options() []verifier.Option {
	opts := make([]verifier.Option, 0, len(t.roots))
	for name, r := range t.roots {
		opts = append(opts, verifier.WithTrustedRoot(name, r.material))
	}
	return opts
}

// load reads, parses and installs the root's file if it changed since
// the last load. It returns whether a new generation was installed.
func (r *trustedRoot) load() error {
	_, err := r.reload()
	return err
}

func (r *trustedRoot) reload() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fromTUF {
		return false, nil
	}
	fi, err := os.Stat(r.path)
	if err != nil {
		return false, err
	}
	if r.cur.Load() != nil && fi.ModTime().Equal(r.modTime) && fi.Size() == r.size {
		return false, nil
	}
	data, err := os.ReadFile(r.path)
	if err != nil {
		return false, err
	}
	m, err := parseTrustedRoot(data, r.path)
	// Remember the stamp even on failure, so a broken file is reported
	// once, not on every poll; fixing it changes the stamp again.
	r.modTime, r.size = fi.ModTime(), fi.Size()
	if err != nil {
		return false, err
	}
	if old := r.cur.Load(); old != nil && old.gen == m.gen {
		return false, nil
	}
	r.cur.Store(m)
	return true, nil
}

// parseTrustedRoot parses a trusted_root.json.
func parseTrustedRoot(data []byte, source string) (*trustMaterial, error) {
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("not a valid trusted_root.json: %w", err)
	}
	sum := sha256.Sum256(data)
	return &trustMaterial{tm: tr, gen: hex.EncodeToString(sum[:]), source: source}, nil
}

// reloadFiles checks every file root once, logging what changed and
// what failed.
func (t *trust) reloadFiles() {
	for _, name := range t.names() {
		r := t.roots[name]
		if r.path == "" {
			continue
		}
		changed, err := r.reload()
		switch {
		case err != nil:
			t.log.Warn("trusted root reload failed; keeping the last good root", "root", r.label(), "path", r.path, "error", err.Error())
		case changed:
			_, gen := r.material()
			t.log.Info("trusted root reloaded", "root", r.label(), "path", r.path, "generation", gen[:12])
		}
	}
}

func (t *trust) names() []string {
	names := make([]string, 0, len(t.roots))
	for name := range t.roots {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// logLoaded logs the roots in use once at start.
func (t *trust) logLoaded() {
	for _, name := range t.names() {
		r := t.roots[name]
		if tm, gen := r.material(); tm != nil {
			t.log.Info("trusted root loaded", "root", r.label(), "path", r.path, "generation", gen[:12])
		} else {
			t.log.Warn("trusted root not available until the first TUF refresh succeeds; signers that need it deny", "root", r.label())
		}
	}
}

// watch reloads changed files every poll and refreshes the TUF root
// every tufEvery (retrying failures sooner), until ctx ends.
func (t *trust) watch(ctx context.Context, poll, tufEvery time.Duration) {
	var wg sync.WaitGroup
	if poll > 0 {
		wg.Go(func() {
			tick := time.NewTicker(poll)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					t.reloadFiles()
				}
			}
		})
	}
	if t.tuf != nil && tufEvery > 0 {
		wg.Go(func() {
			for {
				next := tufEvery
				if err := t.refreshTUF(ctx); err != nil {
					next = min(tufEvery, 5*time.Minute)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(next):
				}
			}
		})
	}
	wg.Wait()
}

// refreshTUF fetches the trusted root from the TUF repository once and
// installs it as the default root. On failure the last good root stays.
func (t *trust) refreshTUF(ctx context.Context) error {
	r := t.roots[""]
	if t.tuf == nil || r == nil {
		return nil
	}
	data, err := t.tuf.fetch(ctx)
	var m *trustMaterial
	if err == nil {
		m, err = parseTrustedRoot(data, "tuf "+t.tuf.mirror)
	}
	if err != nil {
		t.log.Warn("TUF refresh of the trusted root failed; keeping the last good root", "mirror", t.tuf.mirror, "error", err.Error())
		return err
	}
	r.mu.Lock()
	r.fromTUF = true
	old := r.cur.Load()
	if old == nil || old.gen != m.gen {
		r.cur.Store(m)
	}
	r.mu.Unlock()
	if old == nil || old.gen != m.gen {
		t.log.Info("trusted root refreshed from TUF", "mirror", t.tuf.mirror, "generation", m.gen[:12])
	}
	return nil
}

// tufSource fetches trusted_root.json from a TUF repository.
type tufSource struct {
	mirror string
	fetch  func(ctx context.Context) ([]byte, error)
}

// newTUFSource prepares (without any network I/O) a TUF client for c:
// the initial root.json is c.Root, or sigstore-go's embedded
// public-good root when the mirror is the public-good one. The TUF
// metadata cache lives in cacheDir, or in memory when it is empty (for
// read-only file systems).
func newTUFSource(c *policy.TUF, cacheDir string) (*tufSource, error) {
	opts := tuf.DefaultOptions()
	opts.RepositoryBaseURL = c.Mirror
	switch {
	case c.Root != "":
		b, err := os.ReadFile(c.Root)
		if err != nil {
			return nil, fmt.Errorf("read root: %w", err)
		}
		opts.Root = b
	case c.Mirror != tuf.DefaultMirror:
		return nil, fmt.Errorf("root is required for a mirror other than %s (the initial root.json of the repository)", tuf.DefaultMirror)
	}
	if cacheDir == "" {
		opts.DisableLocalCache = true
	} else {
		opts.CachePath = cacheDir
	}
	f := fetcher.NewDefaultFetcher()
	f.SetHTTPClient(&http.Client{Timeout: time.Minute})
	f.SetHTTPUserAgent("pullgate/" + version)
	opts.Fetcher = f
	return &tufSource{
		mirror: c.Mirror,
		fetch: func(ctx context.Context) ([]byte, error) {
			type result struct {
				b   []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				client, err := tuf.New(opts)
				if err != nil {
					done <- result{err: err}
					return
				}
				b, err := client.GetTarget("trusted_root.json")
				done <- result{b: bytes.Clone(b), err: err}
			}()
			select {
			case r := <-done:
				return r.b, r.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}, nil
}
