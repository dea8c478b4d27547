package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/cache"
	"github.com/pullgate/pullgate/policy"
)

// ManifestAccept is the Accept header sent for manifests: every manifest
// and index type pullgate can verify and serve.
const ManifestAccept = "application/vnd.oci.image.index.v1+json, " +
	"application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, " +
	"application/vnd.docker.distribution.manifest.v2+json"

// IndexMediaType is the media type of an OCI image index.
const IndexMediaType = "application/vnd.oci.image.index.v1+json"

// Option configures a [Client].
type Option func(*options) error

type options struct {
	transport http.RoundTripper
	logger    *slog.Logger
	userAgent string
	retries   int
	maxWait   time.Duration
}

// WithTransport sets the base transport requests go through (before
// authentication is layered on). The default is a clone of
// http.DefaultTransport with bounded dial, TLS and header timeouts and the
// upstream's extra CAs.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error {
		if rt == nil {
			return errors.New("upstream: nil transport")
		}
		o.transport = rt
		return nil
	}
}

// WithLogger sets the logger. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("upstream: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithUserAgent sets the User-Agent sent upstream. The default is "pullgate".
func WithUserAgent(ua string) Option {
	return func(o *options) error {
		o.userAgent = ua
		return nil
	}
}

// WithRetry sets how an upstream's 429 Too Many Requests is honoured. A
// request answered 429 is retried up to retries times, each time after
// the Retry-After the upstream asked for (or, without one, after 1s, 2s,
// 4s, …), as long as that wait is at most maxWait and ends before the
// request's deadline; otherwise the 429 is returned as a *StatusError
// with its RetryAfter. Until a Retry-After has passed no request goes to
// the upstream: each waits (up to maxWait) or fails at once with a 429.
// WithRetry(0, 0) passes every 429 straight through. The default is 3
// retries and 10s.
func WithRetry(retries int, maxWait time.Duration) Option {
	return func(o *options) error {
		if retries < 0 || maxWait < 0 {
			return errors.New("upstream: negative retry settings")
		}
		o.retries, o.maxWait = retries, maxWait
		return nil
	}
}

// Client talks to one configured upstream registry. It is safe for
// concurrent use.
type Client struct {
	up     *policy.Upstream
	reg    name.Registry
	scheme string
	host   string // host[:port] as used in request URLs
	base   http.RoundTripper
	auth   authn.Authenticator
	log    *slog.Logger
	// owned is the transport New made (no WithTransport), which Close
	// releases.
	owned *http.Transport

	repos   *cache.Memory[http.RoundTripper]
	connect cache.Group[http.RoundTripper]

	// retries and maxWait honour 429s (see WithRetry); until is the
	// time before which the upstream asked not to be sent requests.
	retries int
	maxWait time.Duration
	mu      sync.Mutex
	until   time.Time

	// challenged is set once an upstream without configured credentials
	// answered 401: from then on every repository gets the ggcr handshake
	// (ping, token). Until then requests go straight out, without it.
	challenged atomic.Bool
}

// New returns a client for u. It does no network I/O.
func New(u *policy.Upstream, opts ...Option) (*Client, error) {
	if u == nil || u.Endpoint == nil {
		return nil, errors.New("upstream: no endpoint")
	}
	o := options{logger: slog.New(slog.DiscardHandler), userAgent: "pullgate", retries: 3, maxWait: 10 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	scheme := u.Endpoint.Scheme
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("upstream %s: endpoint scheme %q is not http or https", u.Registry, scheme)
	}
	nopts := []name.Option{name.WeakValidation}
	if scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Endpoint.Host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: endpoint host: %w", u.Registry, err)
	}
	base := o.transport
	var owned *http.Transport
	if base == nil {
		if owned, err = defaultTransport(u); err != nil {
			return nil, err
		}
		base = owned
	}
	host := reg.RegistryStr()
	base = transport.NewUserAgent(schemePin{host: host, scheme: scheme, inner: base}, o.userAgent)
	repos, err := cache.NewMemory[http.RoundTripper](4096, 4096)
	if err != nil {
		return nil, err
	}
	return &Client{
		up:      u,
		reg:     reg,
		scheme:  scheme,
		host:    host,
		base:    base,
		auth:    authenticator(u, host),
		log:     o.logger,
		owned:   owned,
		repos:   repos,
		retries: o.retries,
		maxWait: o.maxWait,
	}, nil
}

// Close releases the client's caches and the idle connections of the
// transport it made.
func (c *Client) Close() {
	c.repos.Close()
	if c.owned != nil {
		c.owned.CloseIdleConnections()
	}
}

// Registry returns the configured registry name (e.g. docker.io).
func (c *Client) Registry() string { return c.up.Registry }

func defaultTransport(u *policy.Upstream) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 30 * time.Second
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	if u.CAFile != "" {
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", u.Registry, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream %s: caFile %s holds no PEM certificate", u.Registry, u.CAFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return t, nil
}

// schemePin refuses requests to the registry host over any scheme but
// the configured one, so the https→http fallback ggcr applies to private
// addresses can never downgrade a configured https upstream.
type schemePin struct {
	host, scheme string
	inner        http.RoundTripper
}

// schemePinRefusal starts every schemePin error, so an error that joins
// it with the real failure (ggcr's ping tries https before http) can be
// told apart.
const schemePinRefusal = "refusing"

func (p schemePin) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == p.host && r.URL.Scheme != p.scheme {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, fmt.Errorf("%s %s:// to %s: the upstream is configured as %s", schemePinRefusal, r.URL.Scheme, p.host, p.scheme)
	}
	return p.inner.RoundTrip(r)
}

// transportFor returns the transport for requests to repo: plain (the
// base transport, no handshake) while the upstream has no configured
// credentials and never answered 401; otherwise an authenticated one
// scoped to pull repo, created (one ping and one token exchange) on first
// use, concurrent first uses sharing one handshake.
func (c *Client) transportFor(ctx context.Context, repo string) (rt http.RoundTripper, plain bool, err error) {
	if rt, ok := c.repos.Get(repo); ok {
		return rt, false, nil
	}
	if c.auth == authn.Anonymous && !c.challenged.Load() {
		return c.base, true, nil
	}
	rt, _, err = c.connect.Do(ctx, repo, func(ctx context.Context) (http.RoundTripper, error) {
		if rt, ok := c.repos.Get(repo); ok {
			return rt, nil
		}
		scope := c.reg.Repo(repo).Scope(transport.PullScope)
		rt, err := transport.NewWithContext(ctx, c.reg, c.auth, c.base, []string{scope})
		if err != nil {
			return nil, c.wrapTransportErr(err)
		}
		c.repos.Set(repo, rt, 1, 30*time.Minute)
		return rt, nil
	})
	return rt, false, err
}

// forget drops a repository's transport, so the next request does a new
// handshake (after the upstream rejected our token).
func (c *Client) forget(repo string) { c.repos.Del(repo) }

func (c *Client) url(repo, suffix string, query url.Values) string {
	u := url.URL{Scheme: c.scheme, Host: c.host, Path: "/v2/" + repo + "/" + suffix}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	return u.String()
}

// do sends a request for repo and returns the response when its status
// is one of ok; any other status becomes a *StatusError (the body is
// read, bounded, and closed). A 429 is honoured as WithRetry says.
func (c *Client) do(ctx context.Context, repo, method, rawURL string, hdr http.Header, ok ...int) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		if err := c.waitTurn(ctx, method, rawURL); err != nil {
			return nil, err
		}
		resp, err := c.doOnce(ctx, repo, method, rawURL, hdr, ok...)
		var se *StatusError
		if err == nil || !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests || c.retries == 0 && c.maxWait == 0 {
			return resp, err
		}
		wait, hinted := parseRetryAfter(se.RetryAfter, time.Now())
		if !hinted {
			wait = time.Second << min(attempt, 10)
		}
		c.hold(wait)
		if attempt >= c.retries || wait > c.maxWait || !fitsDeadline(ctx, wait) {
			if se.RetryAfter == "" {
				se.RetryAfter = retryAfterSeconds(wait)
			}
			return nil, se
		}
		c.log.WarnContext(ctx, "upstream rate limit: retrying", "registry", c.up.Registry, "method", method,
			"path", se.Path, "wait", wait.String(), "attempt", attempt+1)
	}
}

// waitTurn waits until the upstream's Retry-After has passed, or fails
// with a 429 when that is more than maxWait away.
func (c *Client) waitTurn(ctx context.Context, method, rawURL string) error {
	if c.retries == 0 && c.maxWait == 0 {
		return nil
	}
	c.mu.Lock()
	wait := time.Until(c.until)
	c.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	if wait > c.maxWait || !fitsDeadline(ctx, wait) {
		return &StatusError{
			Registry: c.up.Registry, Method: method, Path: pathOf(rawURL), StatusCode: http.StatusTooManyRequests,
			Message: "rate limited by the upstream: not sent before its Retry-After", RetryAfter: retryAfterSeconds(wait),
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pathOf is the path of a request URL, for errors (never the query).
func pathOf(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Path
	}
	return ""
}

// hold records that the upstream asked for no requests for d.
func (c *Client) hold(d time.Duration) {
	until := time.Now().Add(d)
	c.mu.Lock()
	if until.After(c.until) {
		c.until = until
	}
	c.mu.Unlock()
}

// fitsDeadline reports whether waiting d leaves ctx time to spare.
func fitsDeadline(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > d
}

// retryAfterSeconds formats d as a Retry-After header value (whole
// seconds, rounded up).
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// maxRetryAfter bounds a parsed Retry-After.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter parses a Retry-After header value (delay-seconds or an
// HTTP-date, RFC 9110 §10.2.3) relative to now. It reports false for an
// empty or invalid value. The result is between 0 and 24h.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return maxRetryAfter, true
			}
			return 0, false
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}

// doOnce sends one request. Without configured credentials it goes out
// plainly (no ping, no token: one round trip for an open registry, as
// containerd does) until the upstream answers 401, and then once more
// through the authenticated transport.
func (c *Client) doOnce(ctx context.Context, repo, method, rawURL string, hdr http.Header, ok ...int) (*http.Response, error) {
	rt, plain, err := c.transportFor(ctx, repo)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, rt, method, rawURL, hdr)
	if err == nil && plain && resp.StatusCode == http.StatusUnauthorized {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		c.challenged.Store(true)
		if rt, _, err = c.transportFor(ctx, repo); err != nil {
			return nil, err
		}
		resp, err = c.send(ctx, rt, method, rawURL, hdr)
	}
	if err != nil {
		return nil, c.wrapTransportErr(err)
	}
	for _, code := range ok {
		if resp.StatusCode == code {
			return resp, nil
		}
	}
	serr := newStatusError(c.up.Registry, method, pathOf(rawURL), resp)
	if resp.StatusCode == http.StatusUnauthorized {
		c.forget(repo)
	}
	return nil, serr
}

// send sends one request through rt.
func (c *Client) send(ctx context.Context, rt http.RoundTripper, method, rawURL string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	client := http.Client{Transport: rt, CheckRedirect: checkRedirect}
	return client.Do(req)
}

// checkRedirect allows a few redirects (registries send blobs to object
// storage) but only to http(s) URLs, never from https down to http, and
// never from one host to another host given as a private, loopback or
// link-local IP address (an upstream must not make pullgate fetch from
// internal services; ggcr applies the same rule).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
		return fmt.Errorf("redirect to unsupported scheme %q", req.URL.Scheme)
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme == "http" {
		return errors.New("refusing redirect from https to http")
	}
	if req.URL.Host != via[0].URL.Host {
		if ip := net.ParseIP(req.URL.Hostname()); ip != nil &&
			(ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified()) {
			return fmt.Errorf("refusing redirect from %s to internal address %s", via[0].URL.Host, req.URL.Host)
		}
	}
	return nil
}

func (c *Client) wrapTransportErr(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		se := &StatusError{Registry: c.up.Registry, StatusCode: terr.StatusCode}
		if terr.Request != nil {
			se.Method, se.Path = terr.Request.Method, terr.Request.URL.Path
		}
		if len(terr.Errors) > 0 {
			se.Code, se.Message = string(terr.Errors[0].Code), terr.Errors[0].Message
		}
		return se
	}
	return &UnavailableError{Registry: c.up.Registry, Err: withoutPinNoise(err)}
}

// withoutPinNoise drops, from an error that joins several attempts with
// "; " (ggcr's ping tries https, then http), the attempts schemePin
// refused on purpose: they say nothing about why the upstream failed.
func withoutPinNoise(err error) error {
	msg := err.Error()
	if !strings.Contains(msg, "; ") {
		return err
	}
	var kept []string
	for _, part := range strings.Split(msg, "; ") {
		if !strings.Contains(part, schemePinRefusal+" ") || !strings.Contains(part, "the upstream is configured as") {
			kept = append(kept, part)
		}
	}
	if len(kept) == 0 || len(kept) == len(strings.Split(msg, "; ")) {
		return err
	}
	return &cleanedError{msg: strings.Join(kept, "; "), err: err}
}

// cleanedError shows a shorter message but keeps the original chain for
// errors.Is and errors.As (timeouts stay timeouts).
type cleanedError struct {
	msg string
	err error
}

func (e *cleanedError) Error() string { return e.msg }
func (e *cleanedError) Unwrap() error { return e.err }

// Manifest is a manifest response. For HEAD, Body is nil.
type Manifest struct {
	// Body is the exact bytes received (GET only).
	Body []byte
	// MediaType is the Content-Type without parameters.
	MediaType string
	// Digest is the upstream's Docker-Content-Digest header: a hint
	// only, never trusted.
	Digest string
	// Size is the Content-Length (HEAD) or len(Body) (GET).
	Size int64
}

// Manifest fetches (GET) or looks up (HEAD) the manifest reference names
// in repo. Bodies over maxBytes fail with an error wrapping [ErrTooLarge].
func (c *Client) Manifest(ctx context.Context, method, repo, reference string, maxBytes int64) (*Manifest, error) {
	hdr := http.Header{"Accept": {ManifestAccept}}
	resp, err := c.do(ctx, repo, method, c.url(repo, "manifests/"+reference, nil), hdr, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := &Manifest{
		MediaType: mediaType(resp.Header.Get("Content-Type")),
		Digest:    resp.Header.Get("Docker-Content-Digest"),
		Size:      resp.ContentLength,
	}
	if method == http.MethodHead {
		return m, nil
	}
	if resp.ContentLength > maxBytes {
		return nil, fmt.Errorf("upstream %s: manifest %s of %s is %d bytes: %w", c.up.Registry, reference, repo, resp.ContentLength, ErrTooLarge)
	}
	body, err := readLimited(resp.Body, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: manifest %s of %s: %w", c.up.Registry, reference, repo, err)
	}
	m.Body, m.Size = body, int64(len(body))
	return m, nil
}

// Blob opens blob dgst of repo. rangeHeader, when not empty, is sent as
// the Range header. The response status is 200 or 206 (or 416, returned
// as a *StatusError); the caller reads and closes the body.
func (c *Client) Blob(ctx context.Context, method, repo string, dgst digest.Digest, rangeHeader string) (*http.Response, error) {
	hdr := http.Header{}
	if rangeHeader != "" {
		hdr.Set("Range", rangeHeader)
	}
	return c.do(ctx, repo, method, c.url(repo, "blobs/"+dgst.String(), nil), hdr, http.StatusOK, http.StatusPartialContent)
}

// ReadBlob returns the bytes of blob dgst of repo, at most maxBytes.
func (c *Client) ReadBlob(ctx context.Context, repo string, dgst digest.Digest, maxBytes int64) ([]byte, error) {
	resp, err := c.Blob(ctx, http.MethodGet, repo, dgst, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("upstream %s: blob %s: unexpected status %d", c.up.Registry, dgst, resp.StatusCode)
	}
	b, err := readLimited(resp.Body, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: blob %s of %s: %w", c.up.Registry, dgst, repo, err)
	}
	return b, nil
}

// Referrers returns the body of the referrers API response for dgst, or
// an error wrapping [ErrReferrersUnsupported] when the upstream has no
// referrers API.
func (c *Client) Referrers(ctx context.Context, repo string, dgst digest.Digest, maxBytes int64) ([]byte, error) {
	hdr := http.Header{"Accept": {IndexMediaType}}
	resp, err := c.do(ctx, repo, http.MethodGet, c.url(repo, "referrers/"+dgst.String(), nil), hdr, http.StatusOK)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			switch se.StatusCode {
			case http.StatusNotFound, http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotAcceptable:
				return nil, fmt.Errorf("upstream %s: %w", c.up.Registry, ErrReferrersUnsupported)
			}
		}
		return nil, err
	}
	defer resp.Body.Close()
	if mediaType(resp.Header.Get("Content-Type")) != IndexMediaType {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("upstream %s: referrers answered with Content-Type %q: %w", c.up.Registry, resp.Header.Get("Content-Type"), ErrReferrersUnsupported)
	}
	b, err := readLimited(resp.Body, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: referrers of %s: %w", c.up.Registry, dgst, err)
	}
	return b, nil
}

// mediaType strips parameters from a Content-Type.
func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("body exceeds %d bytes: %w", max, ErrTooLarge)
	}
	return b, nil
}

// Tags returns every tag of repo, following the upstream's Link
// pagination (only to the same host) for at most maxPages pages and
// maxBytes of response bodies in total.
func (c *Client) Tags(ctx context.Context, repo string, maxPages int, maxBytes int64) ([]string, error) {
	next := c.url(repo, "tags/list", url.Values{"n": {"1000"}})
	var tags []string
	budget := maxBytes
	for page := 0; next != ""; page++ {
		if page >= maxPages {
			return nil, fmt.Errorf("upstream %s: tags of %s span more than %d pages: %w", c.up.Registry, repo, maxPages, ErrTooLarge)
		}
		resp, err := c.do(ctx, repo, http.MethodGet, next, nil, http.StatusOK)
		if err != nil {
			return nil, err
		}
		body, err := readLimited(resp.Body, budget)
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("upstream %s: tags of %s: %w", c.up.Registry, repo, err)
		}
		budget -= int64(len(body))
		var tl struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(body, &tl); err != nil {
			return nil, fmt.Errorf("upstream %s: tags of %s: invalid JSON", c.up.Registry, repo)
		}
		tags = append(tags, tl.Tags...)
		next, err = c.nextLink(resp.Request.URL, resp.Header.Get("Link"))
		if err != nil {
			return nil, err
		}
	}
	return tags, nil
}

// nextLink resolves an RFC 5988 Link header with rel="next" against the
// request URL, refusing links to another host.
func (c *Client) nextLink(base *url.URL, link string) (string, error) {
	if link == "" {
		return "", nil
	}
	start, end := strings.Index(link, "<"), strings.Index(link, ">")
	if start < 0 || end < start || !strings.Contains(link[end:], `rel="next"`) {
		return "", nil
	}
	u, err := base.Parse(link[start+1 : end])
	if err != nil {
		return "", fmt.Errorf("upstream %s: bad Link header", c.up.Registry)
	}
	if u.Host != c.host || u.Scheme != c.scheme {
		return "", fmt.Errorf("upstream %s: Link header points to another host", c.up.Registry)
	}
	return u.String(), nil
}
