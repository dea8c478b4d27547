package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pullgate/pullgate/policy"
	"github.com/pullgate/pullgate/verifier"
)

// rawResponse is one HTTP/1.1 exchange on its own connection, as the
// bytes came: the status line as written, the parsed response, and
// whether the server closed the connection after it.
type rawResponse struct {
	statusLine string
	resp       *http.Response
	body       []byte
	closed     bool
}

// rawDo sends method path to the proxy on a fresh connection and reads
// the response without a client in between.
func (e *env) rawDo(tb testing.TB, method, path string) rawResponse {
	tb.Helper()
	conn, err := net.Dial("tcp", e.frontHst)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: containerd/1.6.20~ds1\r\n\r\n", method, path, e.frontHst)
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil {
		tb.Fatalf("%s %s: read status line: %v", method, path, err)
	}
	req, _ := http.NewRequest(method, "http://"+e.frontHst+path, nil)
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)), req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	// A second request on the connection: answered unless it was closed.
	fmt.Fprintf(conn, "GET /v2/ HTTP/1.1\r\nHost: %s\r\n\r\n", e.frontHst)
	_, err = br.ReadByte()
	return rawResponse{statusLine: strings.TrimRight(line, "\r\n"), resp: resp, body: body, closed: err != nil}
}

// TestDenialShape pins the response shape for a denied manifest, the one
// chosen with containerd 1.6.20 (see e2e/containerd_pull_test.go):
//
//   - GET: 403, the OCI error body; containerd shows it ("Server message").
//   - HEAD: 403 with the same headers and the denial as the reason phrase,
//     the only part of a failed HEAD containerd shows; the connection is
//     then closed.
//   - Neither reveals the digest (no Docker-Content-Digest, no ETag), and
//     a HEAD is never a 2xx: with a 2xx containerd would reuse a manifest
//     already in its content store without a further request.
func TestDenialShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	f := e.push(t, "signed/app", "v1")

	for _, ref := range []string{"v1", f.digest.String()} {
		t.Run(ref[:min(len(ref), 12)], func(t *testing.T) {
			get := e.rawDo(t, http.MethodGet, manifestPath("signed/app", ref))
			if get.statusLine != "HTTP/1.1 403 Forbidden" {
				t.Errorf("GET status line %q, want the standard 403", get.statusLine)
			}
			oe := wantError(t, response{status: get.resp.StatusCode, header: get.resp.Header, body: get.body}, http.StatusForbidden, "DENIED")
			wantMsg := fmt.Sprintf("reg.test/signed/app@%s by policy %q: ", f.digest, "signed")
			if !strings.HasPrefix(oe.Message, wantMsg) {
				t.Fatalf("GET message %q, want it to start with %q", oe.Message, wantMsg)
			}

			head := e.rawDo(t, http.MethodHead, manifestPath("signed/app", ref))
			if want := "HTTP/1.1 403 Forbidden (denied: " + oe.Message + ")"; head.statusLine != want {
				t.Errorf("HEAD status line\n  %q\nwant\n  %q", head.statusLine, want)
			}
			if head.resp.StatusCode != http.StatusForbidden || len(head.body) != 0 {
				t.Errorf("HEAD: status %d, body %q; want 403 and no body", head.resp.StatusCode, head.body)
			}
			wantHeader := map[string]string{
				"Content-Type":                    "application/json",
				"Content-Length":                  fmt.Sprint(len(get.body)),
				"X-Content-Type-Options":          "nosniff",
				"Docker-Distribution-Api-Version": "registry/2.0",
				"Docker-Content-Digest":           "",
				"Etag":                            "",
			}
			for k, want := range wantHeader {
				for _, r := range []rawResponse{head, get} {
					if k == "Content-Length" && r.resp.Request.Method == http.MethodGet {
						continue
					}
					if got := r.resp.Header.Get(k); got != want {
						t.Errorf("%s header %s = %q, want %q", r.resp.Request.Method, k, got, want)
					}
				}
			}
			if !head.closed || !head.resp.Close {
				t.Errorf("HEAD: connection closed %v, Connection: close %v; want both", head.closed, head.resp.Close)
			}
			if get.closed {
				t.Errorf("GET closed the connection; only the HEAD takes it over")
			}
		})
	}

	// The access log records the HEAD as the 403 it was.
	var heads []map[string]any
	for _, l := range e.logs.lines(t, "request") {
		if l["method"] == http.MethodHead {
			heads = append(heads, l)
		}
	}
	if len(heads) != 2 {
		t.Fatalf("access log has %d HEAD lines, want 2:\n%s", len(heads), e.logs)
	}
	for _, l := range heads {
		if l["status"] != float64(http.StatusForbidden) {
			t.Errorf("access log line %v: status %v, want 403", l, l["status"])
		}
	}
}

// TestDenialShapeUnmatched: a refusal before any upstream request (no
// policy names the image) has the same shape, naming the tag.
func TestDenialShapeUnmatched(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{unmatched: "deny"})
	head := e.rawDo(t, http.MethodHead, manifestPath("other/app", "v1"))
	get := e.get(t, manifestPath("other/app", "v1"))
	oe := wantError(t, get, http.StatusForbidden, "DENIED")
	if want := "HTTP/1.1 403 Forbidden (denied: " + oe.Message + ")"; head.statusLine != want {
		t.Errorf("HEAD status line\n  %q\nwant\n  %q", head.statusLine, want)
	}
	for _, want := range []string{"reg.test/other/app:v1", "no policy matches reg.test/other/app and unmatched is deny)"} {
		if !strings.Contains(head.statusLine, want) {
			t.Errorf("HEAD status line %q lacks %q", head.statusLine, want)
		}
	}
}

// TestDenialShapeClients: clients other than containerd see a denial, never
// a success: ggcr's remote.Head fails (crane digest then GETs), and the
// GET carries the OCI error.
func TestDenialShapeClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	e.push(t, "signed/app", "v1")
	ref, err := name.ParseReference(e.frontHst + "/reg.test/signed/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithContext(t.Context()), remote.WithTransport(e.front.Client().Transport)}
	if d, err := remote.Head(ref, opts...); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("remote.Head of a denied image = %v, %v; want a 403 error", d, err)
	}
	if _, err := remote.Get(ref, opts...); err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Errorf("remote.Get of a denied image: err = %v, want DENIED", err)
	}
	// Plain net/http clients read the status code; the phrase is extra.
	resp, err := e.front.Client().Head(e.front.URL + manifestPath("signed/app", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Status, "403 Forbidden (denied: reg.test/signed/app@") {
		t.Errorf("net/http HEAD: %d %q", resp.StatusCode, resp.Status)
	}
}

// TestDenialShapeNoHijack: where the connection cannot be taken over
// (HTTP/2, a wrapping ResponseWriter), a HEAD gets the plain 403.
func TestDenialShapeNoHijack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	e.push(t, "signed/app", "v1")
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodHead, manifestPath("signed/app", "v1"), nil))
	if rec.Code != http.StatusForbidden || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("HEAD without hijacking: %d %q %v; want 403, no body, JSON headers", rec.Code, rec.Body.String(), rec.Header())
	}
}

// TestDenialShapeHostileReason: whatever a reason contains, the status
// line stays one line of printable ASCII and no header is injected.
func TestDenialShapeHostileReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{wrap: func(Verifier) Verifier {
		return verifierFunc(func(_ context.Context, _ verifier.Source, img verifier.Image, rule *policy.Rule) (*verifier.Verdict, error) {
			return &verifier.Verdict{Image: img, Policy: rule.Name, Reasons: []string{
				"bad\r\nX-Injected: yes\r\n\r\nbody", "naïve … " + strings.Repeat("x", 2000),
			}}, nil
		})
	}})
	e.push(t, "signed/app", "v1")
	head := e.rawDo(t, http.MethodHead, manifestPath("signed/app", "v1"))
	if head.resp.Header.Get("X-Injected") != "" {
		t.Fatalf("a reason injected a header: %v", head.resp.Header)
	}
	if !strings.Contains(head.statusLine, ": bad??X-Injected: yes????body; na?ve ? xxx") || !strings.HasSuffix(head.statusLine, "...)") {
		t.Errorf("status line %q: want CR/LF and non-ASCII as '?', cut with ...", head.statusLine)
	}
	for _, c := range head.statusLine {
		if c < ' ' || c > '~' {
			t.Fatalf("status line has %q", c)
		}
	}
	if n := len(head.statusLine); n > 1100 {
		t.Errorf("status line is %d bytes, want it bounded", n)
	}
}

func TestReasonPhrase(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"denied: x@sha256:ab by policy \"p\": no signature": "denied: x@sha256:ab by policy \"p\": no signature",
		"a\r\nb\tc\x00d\x7f":      "a??b?c?d?",
		"ü…":                      "??",
		strings.Repeat("y", 1024): strings.Repeat("y", 1024),
		strings.Repeat("y", 1025): strings.Repeat("y", 1021) + "...",
	} {
		if got := reasonPhrase(in); got != want {
			t.Errorf("reasonPhrase(%.40q) = %.60q, want %.60q", in, got, want)
		}
	}
}
