package proxy

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"

	"github.com/gorilla/mux"
)

// rangePattern is the single byte range pullgate passes upstream; other
// Range headers are ignored (RFC 9110 allows serving the full body).
var rangePattern = regexp.MustCompile(`^bytes=[0-9]{0,19}-[0-9]{0,19}$`)

// blob serves GET and HEAD /v2/<name>/blobs/<digest>: only blobs a served
// manifest of the same image references, streamed from upstream and, when
// whole, hashed on the way (a mismatch aborts the response).
func (s *Server) blob(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t, err := s.target(r)
	if err != nil {
		return err
	}
	dgst, err := parseDigest(mux.Vars(r)["digest"])
	if err != nil {
		return err
	}
	if _, ok := s.grants.Get(s.blobKey(t.image, dgst)); !ok {
		return newError("DENIED", "blob %s is not referenced by any manifest of %s that pullgate served: pull the image by tag or digest through pullgate first", dgst, t.image)
	}
	rng := r.Header.Get("Range")
	if rng != "" && !rangePattern.MatchString(rng) || rng == "bytes=-" {
		rng = ""
	}
	resp, err := s.upstreams[t.registry].Blob(ctx, r.Method, t.repo, dgst, rng)
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return &ociError{code: "BLOB_UNKNOWN", message: fmt.Sprintf("blob %s of %s not found upstream (%v)", dgst, t.image, err)}
		}
		return err
	}
	defer resp.Body.Close()

	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", dgst.String())
	h.Set("ETag", `"`+dgst.String()+`"`)
	if t.ns != "" {
		h.Set("OCI-Namespace", t.ns)
	}
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	if ar := resp.Header.Get("Accept-Ranges"); ar == "bytes" {
		h.Set("Accept-Ranges", "bytes")
	}
	partial := resp.StatusCode == http.StatusPartialContent
	if partial {
		h.Set("Content-Range", resp.Header.Get("Content-Range"))
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return nil
	}
	if partial {
		// A range cannot be hashed; the client verifies the whole blob.
		if _, err := io.Copy(w, resp.Body); err != nil {
			s.log.DebugContext(ctx, "blob range stream ended early", "digest", dgst.String(), "error", err)
			panic(http.ErrAbortHandler)
		}
		return nil
	}
	// The last byte is held back until the digest verified: aborting
	// after a complete body would leave the client with a clean response
	// of wrong bytes (Content-Length is satisfied), not a failed one.
	hv := dgst.Verifier()
	hw := &holdLast{w: w}
	n, err := io.Copy(hw, io.TeeReader(resp.Body, hv))
	switch {
	case err != nil:
		s.log.WarnContext(ctx, "blob stream failed", "image", t.image, "digest", dgst.String(), "bytes", n, "error", err)
		panic(http.ErrAbortHandler)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		s.log.WarnContext(ctx, "blob stream short", "image", t.image, "digest", dgst.String(), "bytes", n, "want", resp.ContentLength)
		panic(http.ErrAbortHandler)
	case !hv.Verified():
		s.log.ErrorContext(ctx, "upstream blob does not match its digest: response aborted", "image", t.image, "digest", dgst.String(), "bytes", n)
		panic(http.ErrAbortHandler)
	}
	if err := hw.flush(); err != nil {
		s.log.DebugContext(ctx, "write blob", "digest", dgst.String(), "error", err)
	}
	return nil
}

// holdLast writes everything but the last byte written to it, which only
// flush writes.
type holdLast struct {
	w    io.Writer
	last [1]byte
	held bool
}

func (h *holdLast) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if h.held {
		if _, err := h.w.Write(h.last[:]); err != nil {
			return 0, err
		}
	}
	if _, err := h.w.Write(p[:len(p)-1]); err != nil {
		return 0, err
	}
	h.last[0], h.held = p[len(p)-1], true
	return len(p), nil
}

func (h *holdLast) flush() error {
	if !h.held {
		return nil
	}
	h.held = false
	_, err := h.w.Write(h.last[:])
	return err
}
