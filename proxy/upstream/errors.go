package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrTooLarge is returned (wrapped) when an upstream body exceeds its limit.
var ErrTooLarge = errors.New("too large")

// ErrReferrersUnsupported is returned (wrapped) by [Client.Referrers] when
// the upstream has no referrers API.
var ErrReferrersUnsupported = errors.New("referrers API not supported")

// StatusError is a non-2xx answer from an upstream.
type StatusError struct {
	Registry   string
	Method     string
	Path       string // the request path, without query
	StatusCode int
	// Code and Message are the first OCI error of the body, if any.
	Code    string
	Message string
	// RetryAfter is the Retry-After header of a 429 or 503, if any.
	RetryAfter string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "upstream %s", e.Registry)
	if e.Method != "" {
		fmt.Fprintf(&b, ": %s %s", e.Method, e.Path)
	}
	fmt.Fprintf(&b, ": %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// UnavailableError is a failure to reach an upstream at all: DNS,
// connection, TLS, timeout.
type UnavailableError struct {
	Registry string
	Err      error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("upstream %s unreachable: %v", e.Registry, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 16 << 10

// newStatusError reads (a bounded part of) resp's body and closes it.
func newStatusError(registry, method, path string, resp *http.Response) *StatusError {
	defer resp.Body.Close()
	se := &StatusError{Registry: registry, Method: method, Path: path, StatusCode: resp.StatusCode}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		se.RetryAfter = resp.Header.Get("Retry-After")
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var oe struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &oe) == nil && len(oe.Errors) > 0 {
		se.Code = clip(oe.Errors[0].Code, 64)
		se.Message = clip(oe.Errors[0].Message, 256)
	}
	return se
}

// clip bounds an upstream-provided string and strips control characters,
// so it is safe to put in logs and error bodies.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
