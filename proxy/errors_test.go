package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pullgate/pullgate/proxy/upstream"
	"github.com/pullgate/pullgate/verifier"
)

func TestToOCI(t *testing.T) {
	t.Parallel()
	img := verifier.Image{Name: "reg.test/a", Digest: d1}
	status := func(code int, ociCode, retryAfter string) *upstream.StatusError {
		return &upstream.StatusError{Registry: "reg.test", Method: "GET", Path: "/v2/a/manifests/v1", StatusCode: code, Code: ociCode, RetryAfter: retryAfter}
	}
	type want struct {
		code       string
		status     int
		retryAfter string
		msg        string // a substring of the message
		internal   bool
	}
	tests := []struct {
		name string
		err  error
		want want
	}{
		{"ociError", newError("TAG_INVALID", "bad tag"), want{code: "TAG_INVALID", status: 400, msg: "bad tag"}},
		{"wrapped ociError", fmt.Errorf("x: %w", newError("NAME_UNKNOWN", "nope")), want{code: "NAME_UNKNOWN", status: 404, msg: "nope"}},
		{"ociError status override", &ociError{code: "MANIFEST_INVALID", status: 502, message: "m"}, want{code: "MANIFEST_INVALID", status: 502, msg: "m"}},
		{"ociError unknown code", &ociError{code: "WHATEVER", message: "m"}, want{code: "WHATEVER", status: 500, msg: "m"}},
		{"denied", &deniedError{v: &verifier.Verdict{Image: img, Policy: "p", Reasons: []string{"r1", "r2"}}},
			want{code: "DENIED", status: 403, msg: `reg.test/a@` + d1.String() + ` by policy "p": r1; r2`}},
		{"denied no policy", &deniedError{v: &verifier.Verdict{Image: img}}, want{code: "DENIED", status: 403, msg: "reg.test/a@" + d1.String() + ": not verified"}},
		{"unverifiable 500", &unverifiableError{image: img, err: fmt.Errorf("fetch: %w", status(500, "", ""))},
			want{code: "UNAVAILABLE", status: 503, msg: "cannot verify reg.test/a@"}},
		{"unverifiable 429", &unverifiableError{image: img, err: fmt.Errorf("fetch: %w", status(429, "TOOMANYREQUESTS", "9"))},
			want{code: "TOOMANYREQUESTS", status: 429, retryAfter: "9", msg: "cannot verify"}},
		{"unverifiable 401", &unverifiableError{image: img, err: errors.Join(errors.New("a"), status(401, "", ""))},
			want{code: "UNAVAILABLE", status: 503, msg: "cannot verify"}},
		{"unverifiable unreachable", &unverifiableError{image: img, err: &upstream.UnavailableError{Registry: "reg.test", Err: errors.New("refused")}},
			want{code: "UNAVAILABLE", status: 503, msg: "cannot verify"}},
		{"unverifiable plain", &unverifiableError{image: img, err: errors.New("boom")}, want{code: "UNAVAILABLE", status: 503, msg: "boom"}},
		{"digest mismatch", &digestMismatchError{registry: "reg.test", want: d1, got: d2}, want{code: "UNAVAILABLE", status: 502, msg: d2.String()}},
		{"404 manifest", status(404, "MANIFEST_UNKNOWN", ""), want{code: "MANIFEST_UNKNOWN", status: 404}},
		{"404 blob", status(404, "BLOB_UNKNOWN", ""), want{code: "BLOB_UNKNOWN", status: 404}},
		{"404 name", status(404, "NAME_UNKNOWN", ""), want{code: "NAME_UNKNOWN", status: 404}},
		{"404 other", status(404, "METHOD_UNKNOWN", ""), want{code: "NAME_UNKNOWN", status: 404}},
		{"401", status(401, "UNAUTHORIZED", ""), want{code: "NAME_UNKNOWN", status: 404, msg: "credentials"}},
		{"403", status(403, "DENIED", ""), want{code: "NAME_UNKNOWN", status: 404, msg: "credentials"}},
		{"429", status(429, "TOOMANYREQUESTS", "60"), want{code: "TOOMANYREQUESTS", status: 429, retryAfter: "60"}},
		{"429 without Retry-After", status(429, "", ""), want{code: "TOOMANYREQUESTS", status: 429}},
		{"416", status(416, "", ""), want{code: "RANGE_INVALID", status: 416}},
		{"500", status(500, "", ""), want{code: "UNAVAILABLE", status: 502}},
		{"503 Retry-After", status(503, "", "3"), want{code: "UNAVAILABLE", status: 502, retryAfter: "3"}},
		{"400", status(400, "", ""), want{code: "UNAVAILABLE", status: 502}},
		{"wrapped status", fmt.Errorf("ctx: %w", status(502, "", "")), want{code: "UNAVAILABLE", status: 502, msg: "ctx: "}},
		{"too large", fmt.Errorf("manifest: %w", upstream.ErrTooLarge), want{code: "UNAVAILABLE", status: 502, msg: "too large"}},
		{"unreachable", &upstream.UnavailableError{Registry: "reg.test", Err: errors.New("dial")}, want{code: "UNAVAILABLE", status: 503, msg: "unreachable"}},
		{"deadline", fmt.Errorf("wait: %w", context.DeadlineExceeded), want{code: "UNAVAILABLE", status: 504, msg: "timed out"}},
		{"canceled", context.Canceled, want{code: "UNKNOWN", status: 500, msg: "internal error", internal: true}},
		{"unclassified", errors.New("secret internal detail"), want{code: "UNKNOWN", status: 500, msg: "internal error", internal: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			oe, internal := toOCI(tt.err)
			got := want{code: oe.code, status: oe.httpStatus(), retryAfter: oe.header.Get("Retry-After"), msg: tt.want.msg, internal: internal}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("toOCI(%v) (-want +got):\n%s", tt.err, diff)
			}
			if !strings.Contains(oe.message, tt.want.msg) {
				t.Errorf("toOCI(%v) message %q does not contain %q", tt.err, oe.message, tt.want.msg)
			}
			if internal && strings.Contains(oe.message, "secret") {
				t.Errorf("an internal error leaks: %q", oe.message)
			}
		})
	}
}

// TestCodeStatus pins the code → status table to the distribution spec
// (FORMATS.md §5).
func TestCodeStatus(t *testing.T) {
	t.Parallel()
	want := map[string]int{
		"BLOB_UNKNOWN": 404, "DENIED": 403, "DIGEST_INVALID": 400, "MANIFEST_INVALID": 400,
		"MANIFEST_UNKNOWN": 404, "NAME_INVALID": 400, "NAME_UNKNOWN": 404, "PAGINATION_NUMBER_INVALID": 400,
		"RANGE_INVALID": 416, "TAG_INVALID": 400, "TOOMANYREQUESTS": 429, "UNAVAILABLE": 503,
		"UNSUPPORTED": 405, "UNKNOWN": 500, "SIZE_INVALID": 400,
	}
	if diff := cmp.Diff(want, codeStatus); diff != "" {
		t.Errorf("codeStatus (-want +got):\n%s", diff)
	}
}

func TestWriteError(t *testing.T) {
	t.Parallel()
	oe := &ociError{code: "TOOMANYREQUESTS", message: "slow down", detail: map[string]string{"k": "v"}, header: http.Header{"Retry-After": {"5"}}}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		rec := httptest.NewRecorder()
		rec.Header().Set("Docker-Content-Digest", d1.String())
		rec.Header().Set("Content-Range", "bytes 0-1/2")
		writeError(rec, httptest.NewRequest(method, "/v2/", nil), oe)
		wantBody := `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down","detail":{"k":"v"}}]}`
		gotHeader := map[string]string{}
		for _, k := range []string{"Content-Type", "Content-Length", "Retry-After", "Docker-Content-Digest", "Content-Range", "X-Content-Type-Options"} {
			gotHeader[k] = rec.Header().Get(k)
		}
		wantHeader := map[string]string{
			"Content-Type": "application/json", "Content-Length": fmt.Sprint(len(wantBody)), "Retry-After": "5",
			"Docker-Content-Digest": "", "Content-Range": "", "X-Content-Type-Options": "nosniff",
		}
		if diff := cmp.Diff(wantHeader, gotHeader); diff != "" {
			t.Errorf("%s headers (-want +got):\n%s", method, diff)
		}
		if rec.Code != http.StatusTooManyRequests {
			t.Errorf("%s status %d", method, rec.Code)
		}
		if method == http.MethodHead {
			wantBody = ""
		}
		if rec.Body.String() != wantBody {
			t.Errorf("%s body %q, want %q", method, rec.Body.String(), wantBody)
		}
	}
}
