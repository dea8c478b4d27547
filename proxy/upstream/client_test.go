package upstream

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"go.uber.org/goleak"

	"github.com/pullgate/pullgate/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestSchemePin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, pinScheme string
		wantPass       bool
	}{
		{"https://reg.test/v2/", "https", true},
		{"http://reg.test/v2/", "https", false},
		{"http://reg.test/v2/", "http", true},
		{"https://reg.test/v2/", "http", false},
		{"http://other.test/blob", "https", true},    // redirects elsewhere are checkRedirect's business
		{"http://reg.test:80/v2/", "https", true},    // another host:port
		{"https://REG.test/v2/", "https", true},      // never downgrades
		{"http://reg.test/v2/x?y=z", "https", false}, // any path
	}
	for _, tt := range tests {
		var passed bool
		pin := schemePin{host: "reg.test", scheme: tt.pinScheme, inner: roundTripFunc(func(*http.Request) (*http.Response, error) {
			passed = true
			return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(""))}, nil
		})}
		req := httptest.NewRequest(http.MethodGet, tt.url, nil)
		resp, err := pin.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		if passed != tt.wantPass || (err == nil) != tt.wantPass {
			t.Errorf("schemePin(%s).RoundTrip(%s) passed=%v err=%v, want passed=%v", tt.pinScheme, tt.url, passed, err, tt.wantPass)
		}
		if err != nil && !strings.Contains(err.Error(), "configured as "+tt.pinScheme) {
			t.Errorf("error %q does not explain", err)
		}
	}
}

func TestNextLink(t *testing.T) {
	t.Parallel()
	c := &Client{up: &policy.Upstream{Registry: "reg.test"}, scheme: "https", host: "reg.test:5000"}
	base, _ := url.Parse("https://reg.test:5000/v2/a/tags/list?n=1000")
	tests := []struct {
		link    string
		want    string
		wantErr bool
	}{
		{"", "", false},
		{`</v2/a/tags/list?n=1000&last=x>; rel="next"`, "https://reg.test:5000/v2/a/tags/list?n=1000&last=x", false},
		{`<https://reg.test:5000/v2/a/tags/list?last=y>; rel="next"`, "https://reg.test:5000/v2/a/tags/list?last=y", false},
		{`<?last=z>; rel="next"`, "https://reg.test:5000/v2/a/tags/list?last=z", false},
		{`</v2/a/tags/list?last=x>; rel="prev"`, "", false},
		{`garbage`, "", false},
		{`>< rel="next"`, "", false},
		{`<https://evil.test/v2/a/tags/list>; rel="next"`, "", true},
		{`<https://reg.test:6000/v2/a/tags/list>; rel="next"`, "", true},
		{`<http://reg.test:5000/v2/a/tags/list>; rel="next"`, "", true},
		{`<//evil.test/x>; rel="next"`, "", true},
		{`<https://reg.test:5000/%zz>; rel="next"`, "", true},
	}
	for _, tt := range tests {
		got, err := c.nextLink(base, tt.link)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("nextLink(%q) = %q, %v; want %q, error %v", tt.link, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestReadLimited(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body    string
		max     int64
		wantErr bool
	}{
		{"", 0, false},
		{"abc", 3, false},
		{"abcd", 3, true},
		{"abc", 100, false},
		{"", 5, false},
	}
	for _, tt := range tests {
		got, err := readLimited(strings.NewReader(tt.body), tt.max)
		if tt.wantErr {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("readLimited(%q, %d) = %q, %v; want ErrTooLarge", tt.body, tt.max, got, err)
			}
			continue
		}
		if err != nil || string(got) != tt.body {
			t.Errorf("readLimited(%q, %d) = %q, %v", tt.body, tt.max, got, err)
		}
	}
	boom := errors.New("boom")
	if _, err := readLimited(io.MultiReader(strings.NewReader("x"), errReader{boom}), 10); !errors.Is(err, boom) {
		t.Errorf("readLimited of a failing reader = %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestNewStatusError(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("m", 1000)
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   StatusError
	}{
		{"OCI body", 404, nil, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no such"},{"code":"X"}]}`,
			StatusError{StatusCode: 404, Code: "MANIFEST_UNKNOWN", Message: "no such"}},
		{"429 Retry-After", 429, http.Header{"Retry-After": {"30"}}, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow"}]}`,
			StatusError{StatusCode: 429, Code: "TOOMANYREQUESTS", Message: "slow", RetryAfter: "30"}},
		{"503 Retry-After", 503, http.Header{"Retry-After": {"5"}}, ``, StatusError{StatusCode: 503, RetryAfter: "5"}},
		{"Retry-After ignored on 500", 500, http.Header{"Retry-After": {"5"}}, ``, StatusError{StatusCode: 500}},
		{"not JSON", 502, nil, `<html>bad gateway</html>`, StatusError{StatusCode: 502}},
		{"empty errors", 400, nil, `{"errors":[]}`, StatusError{StatusCode: 400}},
		{"long message clipped", 400, nil, `{"errors":[{"code":"C","message":"` + long + `"}]}`,
			StatusError{StatusCode: 400, Code: "C", Message: strings.Repeat("m", 256) + "…"}},
		{"control characters", 400, nil, `{"errors":[{"code":"C\r\nX","message":"a\nb\u0000c\u007f"}]}`,
			StatusError{StatusCode: 400, Code: "C  X", Message: "a b c "}},
		{"body beyond the cap", 400, nil, `{"errors":[{"code":"C","message":"` + strings.Repeat("x", maxErrorBody) + `"}]}`,
			StatusError{StatusCode: 400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := &closeRecorder{Reader: strings.NewReader(tt.body)}
			resp := &http.Response{StatusCode: tt.status, Header: tt.header, Body: body}
			if resp.Header == nil {
				resp.Header = http.Header{}
			}
			got := newStatusError("reg.test", "GET", "/v2/a/manifests/v1", resp)
			want := tt.want
			want.Registry, want.Method, want.Path = "reg.test", "GET", "/v2/a/manifests/v1"
			if diff := cmp.Diff(want, *got); diff != "" {
				t.Errorf("newStatusError (-want +got):\n%s", diff)
			}
			if !body.closed {
				t.Errorf("body not closed")
			}
		})
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestStatusErrorString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  StatusError
		want string
	}{
		{StatusError{Registry: "r", StatusCode: 500}, "upstream r: 500 Internal Server Error"},
		{StatusError{Registry: "r", Method: "GET", Path: "/v2/a/blobs/x", StatusCode: 404, Code: "BLOB_UNKNOWN", Message: "gone"},
			"upstream r: GET /v2/a/blobs/x: 404 Not Found: BLOB_UNKNOWN: gone"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	ue := &UnavailableError{Registry: "r", Err: io.ErrUnexpectedEOF}
	if !errors.Is(ue, io.ErrUnexpectedEOF) || !strings.Contains(ue.Error(), "unreachable") {
		t.Errorf("UnavailableError = %v", ue)
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc…"},
		{"a\tb\nc", 10, "a b c"},
		{"\x1b[31mred", 20, " [31mred"},
		{"", 3, ""},
	}
	for _, tt := range tests {
		if got := clip(tt.in, tt.n); got != tt.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestAuthenticator(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const secret = "pa55-W0rd-secret"
	b64 := base64.StdEncoding.EncodeToString([]byte("robot:" + secret))
	tests := []struct {
		name     string
		auth     *policy.Auth
		registry string
		wantUser string
		wantPass string
		wantErr  string
	}{
		{name: "anonymous", auth: nil, registry: "reg.test"},
		{name: "password file", auth: &policy.Auth{Username: "robot", PasswordFile: write("pw1", secret+"\r\n")}, registry: "reg.test", wantUser: "robot", wantPass: secret},
		{name: "password file empty", auth: &policy.Auth{Username: "robot", PasswordFile: write("pw2", "\n")}, registry: "reg.test", wantErr: "is empty"},
		{name: "password file missing", auth: &policy.Auth{Username: "robot", PasswordFile: filepath.Join(dir, "nope")}, registry: "reg.test", wantErr: "read password file"},
		{name: "docker config by registry", auth: &policy.Auth{DockerConfig: write("c1.json", `{"auths":{"reg.test":{"auth":"`+b64+`"}}}`)}, registry: "reg.test", wantUser: "robot", wantPass: secret},
		{name: "docker config by host", auth: &policy.Auth{DockerConfig: write("c2.json", `{"auths":{"https://endpoint.test:5000":{"username":"robot","password":"`+secret+`"}}}`)}, registry: "reg.test", wantUser: "robot", wantPass: secret},
		{name: "docker config for docker hub", auth: &policy.Auth{DockerConfig: write("c3.json", `{"auths":{"https://index.docker.io/v1/":{"auth":"`+b64+`"}}}`)}, registry: "docker.io", wantUser: "robot", wantPass: secret},
		{name: "docker config without entry", auth: &policy.Auth{DockerConfig: write("c4.json", `{"auths":{"other.test":{"auth":"`+b64+`"}}}`)}, registry: "reg.test"},
		{name: "docker config invalid", auth: &policy.Auth{DockerConfig: write("c5.json", `{"auths":{"reg.test":{"auth":"`+secret)}, registry: "reg.test", wantErr: "invalid JSON"},
		{name: "docker config missing", auth: &policy.Auth{DockerConfig: filepath.Join(dir, "nope.json")}, registry: "reg.test", wantErr: "read docker config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := authenticator(&policy.Upstream{Registry: tt.registry, Auth: tt.auth}, "endpoint.test:5000")
			ac, err := a.Authorization()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Authorization() error = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error contains the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := [3]string{ac.Username, ac.Password, ac.Auth}
			if want := [3]string{tt.wantUser, tt.wantPass, ""}; got != want {
				t.Errorf("Authorization() = %q, want %q", got, want)
			}
		})
	}
}

func TestDockerConfigKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		registry, host string
		want           []string
	}{
		{"reg.test", "reg.test", []string{"reg.test", "reg.test"}},
		{"reg.test", "mirror.test:5000", []string{"reg.test", "mirror.test:5000"}},
		{"docker.io", "registry-1.docker.io", []string{"docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"}},
		{"docker.io", "127.0.0.1:5000", []string{"docker.io", "127.0.0.1:5000", "https://index.docker.io/v1/"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, dockerConfigKeys(tt.registry, tt.host)); diff != "" {
			t.Errorf("dockerConfigKeys(%q, %q) (-want +got):\n%s", tt.registry, tt.host, diff)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	tests := []struct {
		name    string
		up      *policy.Upstream
		opts    []Option
		wantErr bool
	}{
		{"https", &policy.Upstream{Registry: "r", Endpoint: mustURL("https://r.test")}, nil, false},
		{"http with port", &policy.Upstream{Registry: "r", Endpoint: mustURL("http://127.0.0.1:5000")}, nil, false},
		{"nil upstream", nil, nil, true},
		{"no endpoint", &policy.Upstream{Registry: "r"}, nil, true},
		{"ftp", &policy.Upstream{Registry: "r", Endpoint: mustURL("ftp://r.test")}, nil, true},
		{"missing CA file", &policy.Upstream{Registry: "r", Endpoint: mustURL("https://r.test"), CAFile: "/nonexistent/ca.pem"}, nil, true},
		{"nil transport", &policy.Upstream{Registry: "r", Endpoint: mustURL("https://r.test")}, []Option{WithTransport(nil)}, true},
		{"nil logger", &policy.Upstream{Registry: "r", Endpoint: mustURL("https://r.test")}, []Option{WithLogger(nil)}, true},
	}
	for _, tt := range tests {
		c, err := New(tt.up, tt.opts...)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: New() error = %v, want error %v", tt.name, err, tt.wantErr)
		}
		if c != nil {
			if c.Registry() != tt.up.Registry {
				t.Errorf("%s: Registry() = %q", tt.name, c.Registry())
			}
			c.Close()
		}
	}
}

// registry is a tiny upstream for client tests: it answers every
// request with the handler for its path, after an optional bearer
// challenge whose token endpoint is on the same server.
type registry struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens int
	paths  []string
	routes map[string]http.HandlerFunc
	bearer bool
}

func newRegistry(t *testing.T, bearer bool, routes map[string]http.HandlerFunc, opts ...Option) (*registry, *Client) {
	t.Helper()
	r := &registry{routes: routes, bearer: bearer}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	u, _ := url.Parse(r.srv.URL)
	c, err := New(&policy.Upstream{Registry: "reg.test", Endpoint: u}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return r, c
}

func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.paths = append(r.paths, req.Method+" "+req.URL.Path)
	if req.URL.Path == "/token" {
		r.tokens++
		r.mu.Unlock()
		_, _ = io.WriteString(w, `{"token":"t"}`)
		return
	}
	r.mu.Unlock()
	if r.bearer && req.Header.Get("Authorization") != "Bearer t" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+r.srv.URL+`/token",service="s"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if req.URL.Path == "/v2/" {
		return
	}
	h, ok := r.routes[req.URL.Path]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}`)
		return
	}
	h(w, req)
}

func TestClientManifest(t *testing.T) {
	t.Parallel()
	body := `{"schemaVersion":2}`
	serve := func(ct string, chunked bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Docker-Content-Digest", "sha256:hint")
			if !chunked {
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			}
			if r.Method == http.MethodGet {
				_, _ = io.WriteString(w, body)
				if chunked {
					w.(http.Flusher).Flush()
				}
			}
		}
	}
	_, c := newRegistry(t, true, map[string]http.HandlerFunc{
		"/v2/a/manifests/v1":      serve("application/vnd.oci.image.manifest.v1+json; charset=utf-8", false),
		"/v2/a/manifests/chunked": serve("application/vnd.oci.image.manifest.v1+json", true),
	})
	ctx := t.Context()
	m, err := c.Manifest(ctx, http.MethodGet, "a", "v1", 1024)
	if err != nil {
		t.Fatal(err)
	}
	want := Manifest{Body: []byte(body), MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: "sha256:hint", Size: int64(len(body))}
	if diff := cmp.Diff(want, *m); diff != "" {
		t.Errorf("Manifest GET (-want +got):\n%s", diff)
	}
	h, err := c.Manifest(ctx, http.MethodHead, "a", "v1", 1024)
	if err != nil || h.Body != nil || h.Size != int64(len(body)) || h.Digest != "sha256:hint" {
		t.Errorf("Manifest HEAD = %+v, %v", h, err)
	}
	for _, ref := range []string{"v1", "chunked"} {
		if _, err := c.Manifest(ctx, http.MethodGet, "a", ref, 5); !errors.Is(err, ErrTooLarge) {
			t.Errorf("Manifest %s over the limit: %v, want ErrTooLarge", ref, err)
		}
	}
	_, err = c.Manifest(ctx, http.MethodGet, "a", "missing", 1024)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || se.Code != "NAME_UNKNOWN" || se.Path != "/v2/a/manifests/missing" {
		t.Errorf("missing manifest: %v", err)
	}
}

func TestClientTokenReuse(t *testing.T) {
	t.Parallel()
	ok := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		_, _ = io.WriteString(w, "{}")
	}
	r, c := newRegistry(t, true, map[string]http.HandlerFunc{"/v2/a/manifests/v1": ok, "/v2/b/manifests/v1": ok})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			repo := []string{"a", "b"}[i%2]
			if _, err := c.Manifest(t.Context(), http.MethodGet, repo, "v1", 1024); err != nil {
				t.Errorf("Manifest %s: %v", repo, err)
			}
		})
	}
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tokens != 2 {
		t.Errorf("token requests = %d, want 2 (one per repository)", r.tokens)
	}
}

func TestClientReferrers(t *testing.T) {
	t.Parallel()
	dgst := digest.FromString("x")
	idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`
	answer := func(status int, ct, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			if ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	tests := []struct {
		name            string
		h               http.HandlerFunc
		wantUnsupported bool
		wantStatus      int
	}{
		{"index", answer(200, IndexMediaType, idx), false, 0},
		{"index with parameters", answer(200, IndexMediaType+"; charset=utf-8", idx), false, 0},
		{"404", answer(404, "", ""), true, 0},
		{"400", answer(400, "", ""), true, 0},
		{"405", answer(405, "", ""), true, 0},
		{"406", answer(406, "", ""), true, 0},
		{"200 html", answer(200, "text/html", "<html>"), true, 0},
		{"500", answer(500, "", ""), false, 500},
		{"429", answer(429, "", ""), false, 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// 429s pass straight through here (retries: retry_test.go).
			_, c := newRegistry(t, false, map[string]http.HandlerFunc{"/v2/a/referrers/" + dgst.String(): tt.h}, WithRetry(0, 0))
			b, err := c.Referrers(t.Context(), "a", dgst, 1024)
			var se *StatusError
			switch {
			case tt.wantUnsupported:
				if !errors.Is(err, ErrReferrersUnsupported) {
					t.Errorf("Referrers = %s, %v; want ErrReferrersUnsupported", b, err)
				}
			case tt.wantStatus != 0:
				if !errors.As(err, &se) || se.StatusCode != tt.wantStatus || errors.Is(err, ErrReferrersUnsupported) {
					t.Errorf("Referrers = %v, want status %d", err, tt.wantStatus)
				}
			default:
				if err != nil || string(b) != idx {
					t.Errorf("Referrers = %s, %v", b, err)
				}
			}
		})
	}
}

func TestClientTags(t *testing.T) {
	t.Parallel()
	// page answers with tags and a Link in which /v2/R stands for the
	// repository's path and HOST for the server.
	page := func(tags, link string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if link != "" {
				link = strings.ReplaceAll(link, "/v2/R/", strings.TrimSuffix(r.URL.Path, "tags/list"))
				w.Header().Set("Link", strings.ReplaceAll(link, "HOST", r.Host))
			}
			_, _ = fmt.Fprintf(w, `{"name":"a","tags":%s}`, tags)
		}
	}
	tests := []struct {
		name     string
		pages    []http.HandlerFunc // page i answers /v2/<repo>/tags/list?p=i
		maxPages int
		want     []string
		wantErr  string
	}{
		{"one page", []http.HandlerFunc{page(`["b","a"]`, "")}, 10, []string{"b", "a"}, ""},
		{"relative link", []http.HandlerFunc{page(`["b"]`, `</v2/R/tags/list?p=1>; rel="next"`), page(`["a"]`, "")}, 10, []string{"b", "a"}, ""},
		{"absolute link", []http.HandlerFunc{page(`["b"]`, `<http://HOST/v2/R/tags/list?p=1>; rel="next"`), page(`["a"]`, "")}, 10, []string{"b", "a"}, ""},
		{"null tags", []http.HandlerFunc{page(`null`, "")}, 10, nil, ""},
		{"foreign link", []http.HandlerFunc{page(`["b"]`, `<http://evil.test/v2/R/tags/list>; rel="next"`)}, 10, nil, "another host"},
		{"too many pages", []http.HandlerFunc{page(`["b"]`, `</v2/R/tags/list?p=1>; rel="next"`), page(`["a"]`, `</v2/R/tags/list?p=0>; rel="next"`)}, 3, nil, "more than 3 pages"},
		{"bad JSON", []http.HandlerFunc{func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "nope") }}, 10, nil, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, c := newRegistry(t, false, map[string]http.HandlerFunc{"/v2/a/tags/list": func(w http.ResponseWriter, r *http.Request) {
				n := 0
				_, _ = fmt.Sscan(r.URL.Query().Get("p"), &n)
				tt.pages[n](w, r)
			}})
			got, err := c.Tags(t.Context(), "a", tt.maxPages, 1<<20)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Tags = %v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Tags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClientBlob(t *testing.T) {
	t.Parallel()
	content := []byte("0123456789abcdef")
	dgst := digest.FromBytes(content)
	_, c := newRegistry(t, true, map[string]http.HandlerFunc{
		"/v2/a/blobs/" + dgst.String(): func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
		},
	})
	ctx := t.Context()
	b, err := c.ReadBlob(ctx, "a", dgst, 100)
	if err != nil || !bytes.Equal(b, content) {
		t.Errorf("ReadBlob = %q, %v", b, err)
	}
	if _, err := c.ReadBlob(ctx, "a", dgst, 4); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadBlob over the limit: %v", err)
	}
	resp, err := c.Blob(ctx, http.MethodGet, "a", dgst, "bytes=2-5")
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(part) != "2345" || resp.Header.Get("Content-Range") != "bytes 2-5/16" {
		t.Errorf("Blob range = %d %q %q", resp.StatusCode, part, resp.Header.Get("Content-Range"))
	}
	if _, err := c.ReadBlob(ctx, "a", digest.FromString("missing"), 100); err == nil {
		t.Errorf("ReadBlob of a missing blob succeeded")
	}
	_, err = c.Blob(ctx, http.MethodGet, "a", dgst, "bytes=100-200")
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("unsatisfiable range: %v", err)
	}
}

// TestClientUnreachable: a closed port is an UnavailableError naming the
// registry.
func TestClientUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(srv.URL)
	srv.Close()
	c, err := New(&policy.Upstream{Registry: "reg.test", Endpoint: u})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Manifest(t.Context(), http.MethodGet, "a", "v1", 100)
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.Registry != "reg.test" {
		t.Errorf("Manifest of a closed port: %v", err)
	}
}

// TestClientClose: Close releases the idle connections of the transport
// New made, rather than leaving them (and their goroutines) to the idle
// timeout.
func TestClientClose(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{}, 16)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c, err := New(&policy.Upstream{Registry: "reg.test", Endpoint: u})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Manifest(t.Context(), http.MethodHead, "a", "v1", 100); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-closed:
	case <-time.After(30 * time.Second): // a deadlock guard; the idle timeout is 90 s
		t.Fatal("the upstream connection is still open after Close")
	}
}

func TestCheckRedirect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from, to string
		hops     int
		wantOK   bool
	}{
		{"https://reg.test/v2/r/blobs/x", "https://storage.example.com/x", 1, true},
		{"https://reg.test/v2/r/blobs/x", "https://reg.test/other", 1, true},
		{"http://127.0.0.1:5000/v2/r/blobs/x", "http://127.0.0.1:5000/blob", 1, true}, // same host: fine
		{"https://reg.test/v2/r/blobs/x", "http://storage.example.com/x", 1, false},   // downgrade
		{"https://reg.test/v2/r/blobs/x", "ftp://storage.example.com/x", 1, false},
		{"https://reg.test/v2/r/blobs/x", "https://10.0.0.5/x", 1, false},             // private
		{"https://reg.test/v2/r/blobs/x", "https://127.0.0.1:8080/x", 1, false},       // loopback
		{"https://reg.test/v2/r/blobs/x", "https://169.254.169.254/latest", 1, false}, // metadata service
		{"https://reg.test/v2/r/blobs/x", "https://[::1]/x", 1, false},
		{"https://reg.test/v2/r/blobs/x", "https://storage.example.com/x", 5, false}, // too many
	}
	for _, tt := range tests {
		via := make([]*http.Request, tt.hops)
		for i := range via {
			via[i] = httptest.NewRequest(http.MethodGet, tt.from, nil)
		}
		err := checkRedirect(httptest.NewRequest(http.MethodGet, tt.to, nil), via)
		if (err == nil) != tt.wantOK {
			t.Errorf("checkRedirect(%s → %s, %d hops) = %v, want ok=%v", tt.from, tt.to, tt.hops, err, tt.wantOK)
		}
	}
}

func TestWithoutPinNoise(t *testing.T) {
	t.Parallel()
	pin := `Get "https://127.0.0.1:5000/v2/": refusing https:// to 127.0.0.1:5000: the upstream is configured as http`
	real := `Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused`
	tests := []struct{ in, want string }{
		{pin + "; " + real, real},
		{real, real},
		{pin, pin}, // nothing else to say: keep it
		{"a; b", "a; b"},
	}
	for _, tt := range tests {
		in := errors.New(tt.in)
		got := withoutPinNoise(in)
		if got.Error() != tt.want {
			t.Errorf("withoutPinNoise(%q) = %q, want %q", tt.in, got.Error(), tt.want)
		}
		if !errors.Is(got, in) {
			t.Errorf("withoutPinNoise(%q) lost the original error", tt.in)
		}
	}
}
