package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/pullgate/pullgate/cache"
	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/proxy/upstream"
	"github.com/pullgate/pullgate/verifier"
)

// Verifier decides whether one image digest is trusted under a rule.
// Verify returns a verdict (allowed or denied) with a nil error when it
// could decide, and a nil verdict with an error when fetching signature
// material failed; such errors are never cached and never allow.
// *verifier.Sigstore implements it.
type Verifier interface {
	Verify(ctx context.Context, src verifier.Source, img verifier.Image, rule *policy.Rule) (*verifier.Verdict, error)
}

// Option configures a [Server].
type Option func(*config) error

type config struct {
	logger    *slog.Logger
	transport http.RoundTripper
	userAgent string
	tracer    trace.TracerProvider
	manifests int64
	blobs     *cache.Disk
	retries   int
	maxWait   time.Duration
}

// WithLogger sets the logger for access and decision logs. The default
// discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("proxy: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithUpstreamTransport sets the base transport for upstream requests.
// The default is a tuned clone of http.DefaultTransport per upstream.
func WithUpstreamTransport(rt http.RoundTripper) Option {
	return func(c *config) error {
		c.transport = rt
		return nil
	}
}

// WithUserAgent sets the User-Agent sent upstream. The default is "pullgate".
func WithUserAgent(ua string) Option {
	return func(c *config) error {
		c.userAgent = ua
		return nil
	}
}

// WithTracerProvider sets the OpenTelemetry tracer provider. The default
// is a no-op provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) error {
		if tp == nil {
			return errors.New("proxy: nil tracer provider")
		}
		c.tracer = tp
		return nil
	}
}

// WithBlobCache makes blobs go through d: each blob is fetched from
// upstream once (one GET shared by every request that wants it while it
// arrives) and served from disk after that. The default is no blob
// cache: every blob request streams from upstream.
func WithBlobCache(d *cache.Disk) Option {
	return func(c *config) error {
		if d == nil {
			return errors.New("proxy: nil blob cache")
		}
		c.blobs = d
		return nil
	}
}

// WithUpstreamRetry sets how upstream 429 Too Many Requests answers are
// honoured: retried up to retries times after the Retry-After asked for
// (or a backoff from 1s) when that wait is at most maxWait, and no request
// sent before a Retry-After has passed; otherwise clients get
// TOOMANYREQUESTS with the Retry-After. WithUpstreamRetry(0, 0) passes
// every 429 through. The default is 3 retries and 10s.
func WithUpstreamRetry(retries int, maxWait time.Duration) Option {
	return func(c *config) error {
		if retries < 0 || maxWait < 0 {
			return errors.New("proxy: negative retry settings")
		}
		c.retries, c.maxWait = retries, maxWait
		return nil
	}
}

// WithManifestCacheBytes bounds the in-memory cache of manifests by
// digest. The default is the configuration's cache.manifestBytes, or
// 16 MiB when that is not set.
func WithManifestCacheBytes(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return errors.New("proxy: manifest cache size must be positive")
		}
		c.manifests = n
		return nil
	}
}

// Server is the OCI read API. It implements http.Handler.
type Server struct {
	cfg       *policy.Config
	verifier  Verifier
	upstreams map[string]*upstream.Client
	log       *slog.Logger
	tracer    trace.Tracer
	router    *mux.Router

	// verdicts holds denials whole and allows as nil (cachedVerdict);
	// grants the blobs served manifests make servable. Both are compact:
	// 100,000 verdicts and their grants take a few MiB.
	verdicts  *cache.Map[*verifier.Verdict]
	grants    *cache.Map[struct{}]
	manifests *cache.Memory[*fetched]
	verify    cache.Group[*verifier.Verdict]
	fetch     cache.Group[*fetched]

	// tagDigests maps registry|repo|tag to the digest it resolved to,
	// fresh for cfg.Cache.TagTTL; nil when that is 0. tagFetch coalesces the
	// resolution of one tag.
	tagDigests *cache.Map[tagDigest]
	tagFetch   cache.Group[*fetched]

	// blobs is the disk cache, or nil. fills are the blob fetches in
	// progress, by digest; fillWG counts their goroutines, which ctx
	// (cancelled by Close) ends.
	blobs     *cache.Disk
	fillsMu   sync.Mutex
	fills     map[digest.Digest]*blobFill
	fillWG    sync.WaitGroup
	closed    chan struct{} // closed by Close: ends fills
	closeOnce sync.Once
}

// New returns a server for cfg that verifies with v. It does no network
// I/O: upstreams are contacted on the first request that needs them.
func New(cfg *policy.Config, v Verifier, opts ...Option) (*Server, error) {
	if cfg == nil || v == nil {
		return nil, errors.New("proxy: config and verifier are required")
	}
	c := config{
		logger:    slog.New(slog.DiscardHandler),
		userAgent: "pullgate",
		tracer:    noop.NewTracerProvider(),
		manifests: cfg.Cache.ManifestBytes,
		retries:   3,
		maxWait:   10 * time.Second,
	}
	if c.manifests <= 0 {
		c.manifests = 16 << 20
	}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	s := &Server{
		cfg:       cfg,
		verifier:  v,
		upstreams: make(map[string]*upstream.Client, len(cfg.Upstreams)),
		log:       c.logger,
		tracer:    c.tracer.Tracer("github.com/pullgate/pullgate/proxy"),
		blobs:     c.blobs,
		fills:     map[digest.Digest]*blobFill{},
	}
	s.closed = make(chan struct{})
	for _, u := range cfg.Upstreams {
		uopts := []upstream.Option{upstream.WithLogger(c.logger), upstream.WithUserAgent(c.userAgent), upstream.WithRetry(c.retries, c.maxWait)}
		if c.transport != nil {
			uopts = append(uopts, upstream.WithTransport(c.transport))
		}
		client, err := upstream.New(u, uopts...)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.upstreams[u.Registry] = client
	}
	maxEntries := int64(cfg.Cache.MaxEntries)
	if maxEntries <= 0 {
		maxEntries = 100_000
	}
	var err error
	if s.verdicts, err = cache.NewMap[*verifier.Verdict](int(maxEntries)); err != nil {
		s.Close()
		return nil, err
	}
	// Blob grants: several per manifest.
	if s.grants, err = cache.NewMap[struct{}](8 * int(maxEntries)); err != nil {
		s.Close()
		return nil, err
	}
	if s.manifests, err = cache.NewMemory[*fetched](c.manifests/2048+1, c.manifests); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.Cache.TagTTL > 0 {
		if s.tagDigests, err = cache.NewMap[tagDigest](int(maxEntries)); err != nil {
			s.Close()
			return nil, err
		}
	}
	// One shared verification may not hold every waiting client for
	// longer than this; upstream requests inside it are bounded too.
	s.verify.Timeout = 45 * time.Second
	s.fetch.Timeout = 45 * time.Second
	s.tagFetch.Timeout = 45 * time.Second
	s.router = s.routes()
	return s, nil
}

// Close ends the blob fetches in progress and releases the server's
// caches and upstream clients. The disk cache stays as it is.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.fillWG.Wait()
	for _, u := range s.upstreams {
		u.Close()
	}
	if s.manifests != nil {
		s.manifests.Close()
	}
}

// handlerFunc is the shape of every endpoint: it returns an error instead
// of writing one, and ServeHTTP maps it to an OCI error body.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	r.SkipClean(true) // names are validated, never cleaned into something else
	h := func(fn handlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				s.fail(w, r, err)
			}
		})
	}
	read := []string{http.MethodGet, http.MethodHead}
	r.Handle("/v2/", h(s.ping)).Methods(read...)
	r.Handle("/v2", h(s.ping)).Methods(read...)
	r.Handle("/v2/{name:.+}/manifests/{reference}", h(s.manifest)).Methods(read...)
	r.Handle("/v2/{name:.+}/blobs/{digest}", h(s.blob)).Methods(read...)
	r.Handle("/v2/{name:.+}/tags/list", h(s.tags)).Methods(http.MethodGet)
	r.Handle("/v2/{name:.+}/referrers/{digest}", h(s.referrers)).Methods(http.MethodGet)
	unsupported := h(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return newError("UNSUPPORTED", "pullgate is a read-only registry: %s is not supported", r.Method)
		}
		return &ociError{code: "UNSUPPORTED", status: http.StatusNotFound, message: "unknown endpoint " + clip(r.URL.Path)}
	})
	r.NotFoundHandler = unsupported
	r.MethodNotAllowedHandler = unsupported
	return r
}

// ServeHTTP serves the OCI read API. Every request gets one access-log
// line; a panic in a handler becomes a 500 and a log line, never a crash.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := newRequestID()
	ctx := withRequestID(r.Context(), id)
	r = r.WithContext(ctx)
	rec := &recorder{ResponseWriter: w}
	rec.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				s.access(ctx, r, rec, start)
				panic(p)
			}
			s.log.ErrorContext(ctx, "handler panic", "panic", fmt.Sprint(p), "method", r.Method, "path", r.URL.Path)
			if rec.wrote {
				// Headers are out: returning would let a truncated body
				// end cleanly (chunked encoding); abort it instead.
				s.access(ctx, r, rec, start)
				panic(http.ErrAbortHandler)
			}
			writeError(rec, r, &ociError{code: "UNKNOWN", message: "internal error (request " + id + ")"})
		}
		s.access(ctx, r, rec, start)
	}()
	s.router.ServeHTTP(rec, r)
}

// fail writes err as an OCI error and logs what the client does not see.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return // the client went away; nobody to answer
	}
	oe, internal := toOCI(err)
	switch {
	case internal:
		s.log.ErrorContext(ctx, "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		oe = &ociError{code: oe.code, message: oe.message + " (request " + requestID(ctx) + ")"}
	case oe.httpStatus() >= 500:
		s.log.WarnContext(ctx, "upstream or verification failure", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	if rw, ok := w.(*recorder); ok && rw.wrote {
		// Headers are out: the only honest signal left is to abort.
		panic(http.ErrAbortHandler)
	}
	writeError(w, r, oe)
}

func (s *Server) access(ctx context.Context, r *http.Request, rec *recorder, start time.Time) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	s.log.InfoContext(ctx, "request",
		"method", r.Method,
		"path", r.URL.Path,
		"query", r.URL.RawQuery,
		"status", status,
		"bytes", rec.bytes,
		"duration", time.Since(start).Round(time.Microsecond).String(),
		"remote", r.RemoteAddr,
		"userAgent", r.UserAgent(),
	)
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, "{}")
	}
	return nil
}

// recorder records the status and byte count of a response for the
// access log, and passes ReadFrom through so io.Copy keeps its fast path.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	n, err := io.Copy(r.ResponseWriter, src)
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// The recorder keeps io.Copy's fast path (sendfile) to the connection.
var _ io.ReaderFrom = (*recorder)(nil)

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type requestIDKey struct{}

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the ID pullgate gave the request ctx belongs to, or
// "" outside a request. cmd's log handler adds it to every log line.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func requestID(ctx context.Context) string { return RequestID(ctx) }

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
