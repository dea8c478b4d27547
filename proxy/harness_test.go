package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log" //nolint:depguard // ggcr's registry.Logger takes a *log.Logger; it is silenced
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/cache"
	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
	"github.com/pullgate/pullgate/verifier/verifiertest"
)

// testRegistry is the registry name the fake upstream is configured as.
const testRegistry = "reg.test"

// fakeUpstream is go-containerregistry's in-memory registry behind a
// middleware that counts requests per method and path, injects faults,
// optionally requires credentials (with a token endpoint on the same
// server), and serves blobs with http.ServeContent so that every Range
// form works (ggcr's registry answers open-ended ranges with 416).
type fakeUpstream struct {
	srv  *httptest.Server
	host string // 127.0.0.1:port
	reg  http.Handler

	mu     sync.Mutex
	counts map[string]int // "METHOD /path"
	fault  func(w http.ResponseWriter, r *http.Request) bool
	// auth is "", "bearer" or "basic"; user and pass are the credentials
	// the token endpoint (bearer) or every request (basic) must carry.
	auth, user, pass string
	tokens           map[string]int // scope → tokens granted
	tokenDenials     int
	// release is closed when the test ends, to unblock hung handlers.
	release chan struct{}
}

func newFakeUpstream(tb testing.TB, referrers bool) *fakeUpstream {
	tb.Helper()
	u := &fakeUpstream{
		reg: registry.New(
			registry.Logger(log.New(io.Discard, "", 0)),
			registry.WithReferrersSupport(referrers),
		),
		counts:  map[string]int{},
		tokens:  map[string]int{},
		release: make(chan struct{}),
	}
	u.srv = httptest.NewServer(u)
	tb.Cleanup(u.srv.Close)
	tb.Cleanup(func() { close(u.release) }) // runs before Close: hung handlers return
	u.host = strings.TrimPrefix(u.srv.URL, "http://")
	return u
}

func (u *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.counts[r.Method+" "+r.URL.Path]++
	fault, mode, user, pass := u.fault, u.auth, u.user, u.pass
	u.mu.Unlock()
	if r.URL.Path == "/token" {
		u.token(w, r)
		return
	}
	if fault != nil && fault(w, r) {
		return
	}
	switch mode {
	case "bearer":
		if !u.bearerOK(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+u.host+`/token",service="fake"`)
			writeUpstreamError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
	case "basic":
		if gu, gp, ok := r.BasicAuth(); !ok || gu != user || gp != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
			writeUpstreamError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
	}
	u.serve(w, r)
}

// serve answers from the registry, blobs through http.ServeContent.
func (u *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
		u.reg.ServeHTTP(w, r)
		return
	}
	body, rec := u.blob(r)
	if rec.Code != http.StatusOK {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	w.Header().Set("Docker-Content-Digest", path.Base(r.URL.Path))
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// blob fetches a whole blob from the registry.
func (u *fakeUpstream) blob(r *http.Request) ([]byte, *httptest.ResponseRecorder) {
	req := r.Clone(r.Context())
	req.Method = http.MethodGet
	req.Header.Del("Range")
	rec := httptest.NewRecorder()
	u.reg.ServeHTTP(rec, req)
	return rec.Body.Bytes(), rec
}

// token is the token endpoint: it grants "tok-<scope>" to requests with
// the right Basic credentials (or to anyone when none are set).
func (u *fakeUpstream) token(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.user != "" {
		if gu, gp, ok := r.BasicAuth(); !ok || gu != u.user || gp != u.pass {
			u.tokenDenials++
			writeUpstreamError(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad credentials")
			return
		}
	}
	scope := r.URL.Query().Get("scope")
	u.tokens[scope]++
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": "tok-" + scope, "expires_in": 3600})
}

// bearerOK checks the request's token covers the repository it names.
func (u *fakeUpstream) bearerOK(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer tok-")
	if !ok {
		return false
	}
	repo := strings.TrimPrefix(r.URL.Path, "/v2/")
	for _, sep := range []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(repo, sep); i >= 0 {
			return tok == "repository:"+repo[:i]+":pull"
		}
	}
	return true // /v2/ itself
}

func writeUpstreamError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// setFault makes f see every request first; it returns true when it
// answered. nil clears the fault.
func (u *fakeUpstream) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fault = f
}

// requireAuth turns authentication on (after fixtures were pushed).
func (u *fakeUpstream) requireAuth(mode, user, pass string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.auth, u.user, u.pass = mode, user, pass
}

func (u *fakeUpstream) resetCounts() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.counts = map[string]int{}
}

func (u *fakeUpstream) count(method, p string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts[method+" "+p]
}

// countWhere sums the requests whose "METHOD /path" key satisfies keep.
func (u *fakeUpstream) countWhere(keep func(key string) bool) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for k, c := range u.counts {
		if keep(k) {
			n += c
		}
	}
	return n
}

func (u *fakeUpstream) total() int { return u.countWhere(func(string) bool { return true }) }

func (u *fakeUpstream) tokenGrants() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]int{}
	for k, v := range u.tokens {
		out[k] = v
	}
	return out
}

// repo names repository r on the upstream, for pushing fixtures.
func (u *fakeUpstream) repo(tb testing.TB, r string) name.Repository {
	tb.Helper()
	repo, err := name.NewRepository(u.host + "/" + r)
	if err != nil {
		tb.Fatal(err)
	}
	return repo
}

// hostRecorder is the upstream base transport: it records the
// scheme://host of every request pullgate sends upstream.
type hostRecorder struct {
	inner *http.Transport
	mu    sync.Mutex
	seen  map[string]int
}

func newHostRecorder(tb testing.TB) *hostRecorder {
	tb.Helper()
	t := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(t.CloseIdleConnections)
	return &hostRecorder{inner: t, seen: map[string]int{}}
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.seen[r.URL.Scheme+"://"+r.URL.Host]++
	h.mu.Unlock()
	return h.inner.RoundTrip(r)
}

func (h *hostRecorder) hosts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.seen {
		out[k] = v
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (the log).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log lines whose msg is msg.
func (b *syncBuffer) lines(tb testing.TB, msg string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, l := range strings.Split(b.String(), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			tb.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// verifierFunc adapts a function to [Verifier].
type verifierFunc func(ctx context.Context, src verifier.Source, img verifier.Image, rule *policy.Rule) (*verifier.Verdict, error)

func (f verifierFunc) Verify(ctx context.Context, src verifier.Source, img verifier.Image, rule *policy.Rule) (*verifier.Verdict, error) {
	return f(ctx, src, img, rule)
}

// envConfig shapes a test environment.
type envConfig struct {
	referrers bool              // the upstream serves the referrers API
	unmatched string            // deny (default) or allow
	alg       string            // key algorithm (default ECDSA P-256)
	key       *verifiertest.Key // the trusted key; default a new key of alg
	// auth is the YAML flow mapping of reg.test's auth, with {{.Dir}}
	// standing for the environment's directory.
	auth string
	// endpoint overrides the upstreams' endpoint URL.
	endpoint string
	// requestTimeout bounds each proxy request's context.
	requestTimeout time.Duration
	// wrap wraps the real verifier (after the call counter).
	wrap func(Verifier) Verifier
	// files are written to the environment's directory before parsing.
	files map[string]string
	// noBlobCache runs without a disk cache (blobs stream per request);
	// maxBytes bounds the disk cache otherwise (default 1 GiB).
	noBlobCache bool
	maxBytes    int64
	// tagTTL is cache.tagTTL; the default "0s" resolves every tag
	// request upstream, which most tests count on.
	tagTTL string
	// retry keeps pullgate's default handling of upstream 429s
	// (retries and waits); by default 429s pass straight through.
	retry bool
}

// env is pullgate (real policy, verifier and proxy) in front of a fake
// upstream, with a signing key the policy trusts.
type env struct {
	up       *fakeUpstream
	key      *verifiertest.Key
	dir      string
	cfg      *policy.Config
	srv      *Server
	front    *httptest.Server
	frontHst string
	logs     *syncBuffer
	hosts    *hostRecorder
	verifies atomic.Int64
	blobs    *cache.Disk // nil without a disk cache
	blobDir  string
}

const configTemplate = `
upstreams:
  - registry: reg.test
    endpoint: {{.Endpoint}}
{{- if .Auth}}
    auth: {{.Auth}}
{{- end}}
  - registry: docker.io
    endpoint: {{.Endpoint}}
defaultRegistry: reg.test
cache: {maxEntries: 1000, tagTTL: {{.TagTTL}}}
policies:
  - name: signed
    images: ["reg.test/signed/**", "docker.io/library/**"]
    signers:
      - name: release-key
        key: {path: keys/release.pub}
  - name: audited
    images: ["reg.test/audit/**"]
    mode: audit
    signers:
      - name: release-key
        key: {path: keys/release.pub}
unmatched: {{.Unmatched}}
`

func newEnv(tb testing.TB, ec envConfig) *env {
	tb.Helper()
	return newEnvWith(tb, newFakeUpstream(tb, ec.referrers), ec)
}

// newEnvWith is newEnv with an upstream made by the caller (whose
// address the configuration may need).
func newEnvWith(tb testing.TB, up *fakeUpstream, ec envConfig) *env {
	tb.Helper()
	e := &env{
		up:   up,
		key:  ec.key,
		dir:  tb.TempDir(),
		logs: &syncBuffer{},
	}
	if e.key == nil {
		e.key = verifiertest.MustGenerateKey(tb, ec.alg)
	}
	e.hosts = newHostRecorder(tb)
	if ec.unmatched == "" {
		ec.unmatched = "deny"
	}
	if ec.endpoint == "" {
		ec.endpoint = e.up.srv.URL
	}
	for f, content := range ec.files {
		if err := os.WriteFile(filepath.Join(e.dir, f), []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	var auth strings.Builder
	if err := template.Must(template.New("auth").Parse(ec.auth)).Execute(&auth, map[string]string{"Dir": e.dir}); err != nil {
		tb.Fatal(err)
	}
	var yml strings.Builder
	if ec.tagTTL == "" {
		ec.tagTTL = "0s"
	}
	err := template.Must(template.New("config").Parse(configTemplate)).Execute(&yml, map[string]string{
		"Endpoint": ec.endpoint, "Auth": auth.String(), "Unmatched": ec.unmatched, "TagTTL": ec.tagTTL,
	})
	if err != nil {
		tb.Fatal(err)
	}
	keyPath := filepath.Join(e.dir, "keys", "release.pub")
	e.cfg, err = policy.Parse(filepath.Join(e.dir, "pullgate.yaml"), strings.NewReader(yml.String()),
		policy.WithReadFile(func(p string) ([]byte, error) {
			if p == keyPath {
				return e.key.PublicPEM, nil
			}
			return nil, fs.ErrNotExist
		}))
	if err != nil {
		tb.Fatalf("parse config:\n%s\n%v", yml.String(), err)
	}
	real, err := verifier.New(verifier.WithLimits(e.cfg.Limits))
	if err != nil {
		tb.Fatal(err)
	}
	var v Verifier = real
	if ec.wrap != nil {
		v = ec.wrap(v)
	}
	counted := &countingVerifier{inner: v, n: &e.verifies}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := []Option{WithLogger(logger), WithUpstreamTransport(e.hosts)}
	if !ec.noBlobCache {
		if ec.maxBytes == 0 {
			ec.maxBytes = 1 << 30
		}
		e.blobDir = filepath.Join(e.dir, "blobcache")
		if e.blobs, err = cache.NewDisk(e.blobDir, ec.maxBytes); err != nil {
			tb.Fatal(err)
		}
		opts = append(opts, WithBlobCache(e.blobs))
	}
	if !ec.retry {
		opts = append(opts, WithUpstreamRetry(0, 0))
	}
	e.srv, err = New(e.cfg, counted, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.srv.Close)
	var h http.Handler = e.srv
	if d := ec.requestTimeout; d > 0 {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			e.srv.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	e.front = httptest.NewServer(h)
	tb.Cleanup(e.front.Close)
	e.frontHst = strings.TrimPrefix(e.front.URL, "http://")
	return e
}

// response is a proxy response, its body read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request to pullgate. hdr holds header name/value pairs.
func (e *env) do(tb testing.TB, method, p string, hdr ...string) response {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, e.front.URL+p, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.front.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, p, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, p, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func (e *env) get(tb testing.TB, p string) response {
	tb.Helper()
	return e.do(tb, http.MethodGet, p)
}

// ociError is one entry of an OCI error body.
type ociErrorEntry struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Detail  map[string]any `json:"detail,omitempty"`
}

// ociErr decodes an OCI error body with exactly one error, failing tb
// when the response is not one (or not JSON).
func ociErr(tb testing.TB, r response) ociErrorEntry {
	tb.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var b struct {
		Errors []ociErrorEntry `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil || len(b.Errors) != 1 {
		tb.Fatalf("body %q is not an OCI error body with one error (%v)", r.body, err)
	}
	return b.Errors[0]
}

// wantError checks r is an OCI error with this status and code.
func wantError(tb testing.TB, r response, status int, code string) ociErrorEntry {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	oe := ociErr(tb, r)
	if oe.Code != code {
		tb.Fatalf("code = %q, want %q (message %q)", oe.Code, code, oe.Message)
	}
	return oe
}

func wantStatus(tb testing.TB, r response, status int) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status = %d, want %d (body %.300s)", r.status, status, r.body)
	}
}

// fixture is an image pushed to the upstream.
type fixture struct {
	img    v1.Image
	digest v1.Hash
	raw    []byte
	desc   v1.Descriptor
	repo   name.Repository
}

// push pushes a random image of layers layers to repo:tag upstream.
func (e *env) push(tb testing.TB, repo, tag string) fixture {
	tb.Helper()
	img, err := random.Image(3000, 2)
	if err != nil {
		tb.Fatal(err)
	}
	return e.pushImage(tb, repo, tag, img)
}

func (e *env) pushImage(tb testing.TB, repo, tag string, img v1.Image) fixture {
	tb.Helper()
	r := e.up.repo(tb, repo)
	if err := remote.Write(r.Tag(tag), img, remote.WithContext(tb.Context())); err != nil {
		tb.Fatal(err)
	}
	return newFixture(tb, r, img)
}

func newFixture(tb testing.TB, r name.Repository, img interface {
	Digest() (v1.Hash, error)
	RawManifest() ([]byte, error)
	MediaType() (types.MediaType, error)
},
) fixture {
	tb.Helper()
	dgst, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		tb.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		tb.Fatal(err)
	}
	f := fixture{digest: dgst, raw: raw, repo: r, desc: v1.Descriptor{MediaType: mt, Digest: dgst, Size: int64(len(raw))}}
	if i, ok := img.(v1.Image); ok {
		f.img = i
	}
	return f
}

// pushIndex pushes a two-platform OCI index of new random images to repo:tag.
func (e *env) pushIndex(tb testing.TB, repo, tag string) (index fixture, children []fixture) {
	tb.Helper()
	r := e.up.repo(tb, repo)
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(2000, 1)
		if err != nil {
			tb.Fatal(err)
		}
		if err := remote.Write(r.Digest(digestOf(tb, img).String()), img, remote.WithContext(tb.Context())); err != nil {
			tb.Fatal(err)
		}
		children = append(children, newFixture(tb, r, img))
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	if err := remote.WriteIndex(r.Tag(tag), idx, remote.WithContext(tb.Context())); err != nil {
		tb.Fatal(err)
	}
	return newFixture(tb, r, idx), children
}

func digestOf(tb testing.TB, img v1.Image) v1.Hash {
	tb.Helper()
	d, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// signLegacy signs f as cosign v2 does (sha256-<hex>.sig) with key.
func (e *env) signLegacy(tb testing.TB, f fixture, key *verifiertest.Key) {
	tb.Helper()
	if err := verifiertest.SignLegacy(tb.Context(), f.repo, f.digest, key); err != nil {
		tb.Fatal(err)
	}
}

// signBundle signs f as cosign v3 does (a bundle referrer) with key.
func (e *env) signBundle(tb testing.TB, f fixture, key *verifiertest.Key) {
	tb.Helper()
	if err := verifiertest.SignBundle(tb.Context(), f.repo, f.desc, key); err != nil {
		tb.Fatal(err)
	}
}

// layers returns the digests of the config and layers of f.
func blobsOf(tb testing.TB, f fixture) []v1.Hash {
	tb.Helper()
	m, err := f.img.Manifest()
	if err != nil {
		tb.Fatal(err)
	}
	out := []v1.Hash{m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// blobBytes reads a blob straight from the upstream registry.
func (e *env) blobBytes(tb testing.TB, dgst v1.Hash) []byte {
	tb.Helper()
	req := httptest.NewRequestWithContext(tb.Context(), http.MethodGet, "/v2/any/blobs/"+dgst.String(), nil)
	b, rec := e.up.blob(req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("upstream blob %s: %d", dgst, rec.Code)
	}
	return b
}

// pull pulls ref through pullgate as crane pull does: the manifest, the
// config and every layer, each checked by ggcr against its digest.
func (e *env) pull(tb testing.TB, ref string) (v1.Hash, error) {
	tb.Helper()
	r, err := name.ParseReference(e.frontHst + "/" + ref)
	if err != nil {
		tb.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithContext(tb.Context()), remote.WithTransport(e.front.Client().Transport))
	if err != nil {
		return v1.Hash{}, err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return v1.Hash{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return v1.Hash{}, err
		}
		_, err = io.Copy(io.Discard, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return v1.Hash{}, err
		}
	}
	return img.Digest()
}

// manifestPath is the containerd-style path of repo's manifest ref on
// reg.test.
func manifestPath(repo, ref string) string {
	return "/v2/" + repo + "/manifests/" + ref + "?ns=" + testRegistry
}

func blobPath(repo string, dgst v1.Hash) string {
	return "/v2/" + repo + "/blobs/" + dgst.String() + "?ns=" + testRegistry
}

// digestFromHash converts a ggcr hash.
func digestFromHash(h v1.Hash) digest.Digest { return digest.Digest(h.String()) }

// countingVerifier counts verifications and passes the inner verifier's
// trust generation through, as the real verifier has one.
type countingVerifier struct {
	inner Verifier
	n     *atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, src verifier.Source, img verifier.Image, rule *policy.Rule) (*verifier.Verdict, error) {
	c.n.Add(1)
	return c.inner.Verify(ctx, src, img, rule)
}

func (c *countingVerifier) Generation() string {
	if g, ok := c.inner.(interface{ Generation() string }); ok {
		return g.Generation()
	}
	return ""
}
