package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/proxy/upstream"
	"github.com/pullgate/pullgate/verifier"
)

// OCI error codes (distribution-spec "Error Codes", plus distribution's
// extras) and the status each maps to. This table and toOCI are the only
// place in pullgate that picks an HTTP status for an error.
var codeStatus = map[string]int{
	"BLOB_UNKNOWN":              http.StatusNotFound,
	"DENIED":                    http.StatusForbidden,
	"DIGEST_INVALID":            http.StatusBadRequest,
	"MANIFEST_INVALID":          http.StatusBadRequest,
	"MANIFEST_UNKNOWN":          http.StatusNotFound,
	"NAME_INVALID":              http.StatusBadRequest,
	"NAME_UNKNOWN":              http.StatusNotFound,
	"PAGINATION_NUMBER_INVALID": http.StatusBadRequest,
	"RANGE_INVALID":             http.StatusRequestedRangeNotSatisfiable,
	"TAG_INVALID":               http.StatusBadRequest,
	"TOOMANYREQUESTS":           http.StatusTooManyRequests,
	"UNAVAILABLE":               http.StatusServiceUnavailable,
	"UNSUPPORTED":               http.StatusMethodNotAllowed,
	"UNKNOWN":                   http.StatusInternalServerError,
	"SIZE_INVALID":              http.StatusBadRequest,
}

// ociError is an error with its OCI code and a message safe to show the
// client. status overrides the code's usual status when not zero.
type ociError struct {
	code    string
	message string
	detail  any
	status  int
	header  http.Header
}

func (e *ociError) Error() string { return strings.ToLower(e.code) + ": " + e.message }

func (e *ociError) httpStatus() int {
	if e.status != 0 {
		return e.status
	}
	if s, ok := codeStatus[e.code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func newError(code, format string, args ...any) *ociError {
	return &ociError{code: code, message: fmt.Sprintf(format, args...)}
}

// deniedError is a verdict that must not be served.
type deniedError struct {
	v *verifier.Verdict
}

func (e *deniedError) Error() string { return "denied: " + denialMessage(e.v) }

// denialMessage is the one line a user sees for a denial, e.g.
// docker.io/library/nginx@sha256:ab… by policy "third-party": no signature from signer "vendor-key".
func denialMessage(v *verifier.Verdict) string {
	reasons := strings.Join(v.Reasons, "; ")
	if reasons == "" {
		reasons = "not verified"
	}
	if v.Policy == "" {
		return fmt.Sprintf("%s: %s", v.Image, reasons)
	}
	return fmt.Sprintf("%s by policy %q: %s", v.Image, v.Policy, reasons)
}

// unverifiableError is a verification that could not reach a decision
// because fetching signature material failed. It is never cached.
type unverifiableError struct {
	image verifier.Image
	err   error
}

func (e *unverifiableError) Error() string {
	return fmt.Sprintf("cannot verify %s: %v", e.image, e.err)
}

func (e *unverifiableError) Unwrap() error { return e.err }

// digestMismatchError is an upstream that served bytes whose digest is
// not the one asked for.
type digestMismatchError struct {
	registry  string
	want, got digest.Digest
}

func (e *digestMismatchError) Error() string {
	return fmt.Sprintf("upstream %s served a manifest with digest %s for %s", e.registry, e.got, e.want)
}

// toOCI classifies err. The second result says whether the error is
// the server's own fault (logged at error level).
func toOCI(err error) (*ociError, bool) {
	var (
		oe  *ociError
		de  *deniedError
		un  *unverifiableError
		se  *upstream.StatusError
		ue  *upstream.UnavailableError
		dme *digestMismatchError
	)
	switch {
	case errors.As(err, &oe):
		return oe, false
	case errors.As(err, &un):
		// Whatever the upstream said while signatures were fetched (a 500,
		// a 429, a 401), the image itself was found: the client's answer
		// is that it cannot be verified right now, never NAME_UNKNOWN.
		oe := &ociError{code: "UNAVAILABLE", message: un.Error()}
		if errors.As(err, &se) {
			if se.StatusCode == http.StatusTooManyRequests {
				// Rate limited (after pullgate's own retries): say so.
				oe.code = "TOOMANYREQUESTS"
			}
			if se.RetryAfter != "" {
				oe.header = http.Header{"Retry-After": {se.RetryAfter}}
			}
		}
		return oe, false
	case errors.As(err, &de):
		v := de.v
		return &ociError{
			code:    "DENIED",
			message: denialMessage(v),
			detail: map[string]any{
				"image":   v.Image.Name,
				"digest":  v.Image.Digest.String(),
				"policy":  v.Policy,
				"reasons": v.Reasons,
			},
		}, false
	case errors.As(err, &dme):
		return &ociError{code: "UNAVAILABLE", status: http.StatusBadGateway, message: dme.Error()}, false
	case errors.As(err, &se):
		return upstreamStatus(err, se), false
	case errors.Is(err, upstream.ErrTooLarge):
		return &ociError{code: "UNAVAILABLE", status: http.StatusBadGateway, message: err.Error()}, false
	case errors.As(err, &ue):
		return &ociError{code: "UNAVAILABLE", message: err.Error()}, false
	case errors.Is(err, context.DeadlineExceeded):
		return &ociError{code: "UNAVAILABLE", status: http.StatusGatewayTimeout, message: "timed out: " + err.Error()}, false
	}
	return &ociError{code: "UNKNOWN", message: "internal error"}, true
}

// upstreamStatus maps a non-2xx upstream answer to what the client sees.
// msg is the full error (with context such as "cannot verify …").
func upstreamStatus(err error, se *upstream.StatusError) *ociError {
	msg := err.Error()
	switch {
	case se.StatusCode == http.StatusNotFound:
		code := se.Code
		switch code {
		case "MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN":
		default:
			code = "NAME_UNKNOWN"
		}
		return &ociError{code: code, message: msg}
	case se.StatusCode == http.StatusUnauthorized || se.StatusCode == http.StatusForbidden:
		// Registries answer 401 both for missing repositories and for
		// credentials that do not cover them; never 401 our own client
		// (it would send its pull secret to us).
		return &ociError{code: "NAME_UNKNOWN", message: msg + " (the repository does not exist, or pullgate's credentials for this upstream do not allow pulling it)"}
	case se.StatusCode == http.StatusTooManyRequests:
		oe := &ociError{code: "TOOMANYREQUESTS", message: msg}
		if se.RetryAfter != "" {
			oe.header = http.Header{"Retry-After": {se.RetryAfter}}
		}
		return oe
	case se.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return &ociError{code: "RANGE_INVALID", message: msg}
	case se.StatusCode >= 500:
		oe := &ociError{code: "UNAVAILABLE", status: http.StatusBadGateway, message: msg}
		if se.RetryAfter != "" {
			oe.header = http.Header{"Retry-After": {se.RetryAfter}}
		}
		return oe
	default:
		return &ociError{code: "UNAVAILABLE", status: http.StatusBadGateway, message: msg}
	}
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError writes err as an OCI error body. HEAD responses carry the
// status and headers only.
func writeError(w http.ResponseWriter, r *http.Request, oe *ociError) {
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: oe.code, Message: oe.message, Detail: oe.detail}}})
	h := w.Header()
	for k, v := range oe.header {
		h[k] = v
	}
	h.Del("Docker-Content-Digest")
	h.Del("Content-Range")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(oe.httpStatus())
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
