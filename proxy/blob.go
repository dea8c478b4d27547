package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/cache"
)

// rangePattern is the single byte range pullgate serves; other Range
// headers are ignored (RFC 9110 allows serving the full body).
var rangePattern = regexp.MustCompile(`^bytes=[0-9]{0,19}-[0-9]{0,19}$`)

// fillIdleTimeout aborts a blob fill whose upstream sends nothing for
// this long. There is no bound on the whole fill: a big blob on a slow
// link may take long, but it must keep moving.
const fillIdleTimeout = time.Minute

// fillBuffer is the size of the buffer a fill reads upstream bytes into.
const fillBuffer = 256 << 10

// errUncacheable says a blob cannot go through the disk cache (too big,
// or the cache cannot take it): it streams from upstream instead.
var errUncacheable = errors.New("blob not cacheable")

// blob serves GET and HEAD /v2/<name>/blobs/<digest>: only blobs a served
// manifest of the same image references. With a disk cache, a blob is
// fetched from upstream once, by one GET shared by every request for it
// while it arrives, written to the cache as it arrives and served from
// there; without one (or for a blob the cache cannot hold) it streams from
// upstream for each request. Either way the full blob is hashed on the way
// and the last byte held back until the digest verified, so a client
// never gets a clean response with wrong bytes.
func (s *Server) blob(w http.ResponseWriter, r *http.Request) error {
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
	if s.blobs != nil {
		served, err := s.blobCached(w, r, t, dgst, rng)
		if served || err != nil {
			return err
		}
	}
	return s.blobUpstream(w, r, t, dgst, rng)
}

// blobCached serves dgst from the disk cache: complete, or while one
// shared upstream fetch fills it. It returns false (and writes nothing)
// when the blob must stream from upstream instead: a HEAD for a blob not
// cached, or a blob the cache cannot hold.
func (s *Server) blobCached(w http.ResponseWriter, r *http.Request, t target, dgst digest.Digest, rng string) (bool, error) {
	ctx := r.Context()
	for {
		if f, size, err := s.blobs.Open(dgst); err == nil {
			defer f.Close()
			return true, s.serveBlob(w, r, t, dgst, f, size, rng, nil)
		}
		if r.Method == http.MethodHead {
			if fl := s.runningFill(dgst); fl != nil && fl.size >= 0 {
				return true, s.serveBlob(w, r, t, dgst, nil, fl.size, rng, fl.w)
			}
			return false, nil
		}
		fl, err := s.joinFill(ctx, t, dgst)
		switch {
		case errors.Is(err, errUncacheable):
			return false, nil
		case err != nil:
			return true, err
		case fl == nil:
			continue // committed meanwhile: open it
		}
		f, err := fl.w.Reopen()
		if err != nil {
			if fl.w.Err() == nil {
				return false, nil // committed and already evicted: rare
			}
			return true, fillFailed(dgst, err) // before any header: say so
		}
		defer f.Close()
		return true, s.serveBlob(w, r, t, dgst, f, fl.size, rng, fl.w)
	}
}

// blobFill is one upstream fetch of a blob into the disk cache, shared by
// every request for that blob while it runs.
type blobFill struct {
	ready chan struct{} // closed once the upstream answered, or failed
	// Set before ready is closed:
	err  error         // the fetch failed before any byte was cached
	w    *cache.Writer // the blob being written
	size int64         // its size (-1 when the upstream did not say)
}

// runningFill returns the fill of dgst whose upstream answered, if any.
func (s *Server) runningFill(dgst digest.Digest) *blobFill {
	s.fillsMu.Lock()
	fl := s.fills[dgst]
	s.fillsMu.Unlock()
	if fl == nil {
		return nil
	}
	select {
	case <-fl.ready:
		if fl.err == nil {
			return fl
		}
	default:
	}
	return nil
}

// joinFill returns the running fill of dgst, starting one (one upstream
// GET, for t's repository) when there is none, once the upstream has
// answered. It returns a nil fill when the blob was committed to the
// cache in the meantime.
func (s *Server) joinFill(ctx context.Context, t target, dgst digest.Digest) (*blobFill, error) {
	s.fillsMu.Lock()
	fl := s.fills[dgst]
	if fl == nil {
		if s.blobs.Contains(dgst) {
			s.fillsMu.Unlock()
			return nil, nil
		}
		fl = &blobFill{ready: make(chan struct{})}
		s.fills[dgst] = fl
		s.fillWG.Add(1)
		// The fill outlives the request that started it: it serves the
		// others and fills the cache. It keeps the request's values (the
		// request ID for logs) but not its cancellation.
		go s.runFill(context.WithoutCancel(ctx), t, dgst, fl)
	}
	s.fillsMu.Unlock()
	select {
	case <-fl.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if fl.err != nil {
		return nil, fl.err
	}
	return fl, nil
}

// runFill fetches dgst from t's upstream into the cache for fl's
// followers, hashing as it writes; a mismatch or a short body aborts
// every follower and leaves nothing cached. The last byte reaches the
// followers once the digest verified, before the file is synced and
// renamed into place.
func (s *Server) runFill(ctx context.Context, t target, dgst digest.Digest, fl *blobFill) {
	defer s.fillWG.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	finished := make(chan struct{})
	defer close(finished)
	go func() { // Close ends fills
		select {
		case <-s.closed:
			cancel()
		case <-finished:
		}
	}()
	idle := time.AfterFunc(fillIdleTimeout, cancel)
	defer idle.Stop()

	done := func() {
		s.fillsMu.Lock()
		delete(s.fills, dgst)
		s.fillsMu.Unlock()
	}
	fail := func(err error) {
		fl.err = err
		close(fl.ready)
		done()
	}
	resp, err := s.upstreams[t.registry].Blob(ctx, http.MethodGet, t.repo, dgst, "")
	if err != nil {
		fail(blobUpstreamErr(t, dgst, err))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fail(&ociError{code: "UNAVAILABLE", status: http.StatusBadGateway, message: fmt.Sprintf("upstream %s answered %d to a blob GET without Range", t.registry, resp.StatusCode)})
		return
	}
	size := resp.ContentLength
	if size > s.blobs.MaxBytes() {
		s.log.InfoContext(ctx, "blob bigger than the disk cache: streaming it per request", "digest", dgst.String(), "bytes", size)
		fail(errUncacheable)
		return
	}
	w, err := s.blobs.Create(dgst, size)
	if err != nil {
		s.log.WarnContext(ctx, "disk cache refused a blob: streaming it per request", "digest", dgst.String(), "error", err)
		fail(errUncacheable)
		return
	}
	fl.w, fl.size = w, size
	close(fl.ready)
	defer done()

	buf := make([]byte, fillBuffer)
	var n int64
	for {
		m, rerr := resp.Body.Read(buf)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				s.log.WarnContext(ctx, "blob fill: write to the disk cache failed", "digest", dgst.String(), "error", err)
				w.Abort(err)
				return
			}
			n += int64(m)
			idle.Reset(fillIdleTimeout)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			s.log.WarnContext(ctx, "blob fill: upstream stream failed", "image", t.image, "digest", dgst.String(), "bytes", n, "error", rerr)
			w.Abort(fmt.Errorf("upstream %s: blob %s: %w", t.registry, dgst, rerr))
			return
		}
	}
	if err := w.Verify(); err != nil {
		s.log.ErrorContext(ctx, "upstream blob does not match its digest: every response aborted, nothing cached",
			"image", t.image, "digest", dgst.String(), "bytes", n, "want", size, "error", err)
		return
	}
	if err := w.Commit(); err != nil {
		s.log.WarnContext(ctx, "blob fill: commit to the disk cache failed", "digest", dgst.String(), "error", err)
	}
}

// fillFailed is the answer to a request whose blob fill failed before
// the response started.
func fillFailed(dgst digest.Digest, err error) error {
	msg := fmt.Sprintf("fetching blob %s from upstream failed", dgst)
	if errors.Is(err, cache.ErrDigestMismatch) {
		msg = fmt.Sprintf("upstream served bytes that do not match blob %s", dgst)
	}
	return &ociError{code: "UNAVAILABLE", status: http.StatusBadGateway, message: msg}
}

// blobUpstreamErr maps an upstream error for a blob.
func blobUpstreamErr(t target, dgst digest.Digest, err error) error {
	if isStatus(err, http.StatusNotFound) {
		return &ociError{code: "BLOB_UNKNOWN", message: fmt.Sprintf("blob %s of %s not found upstream (%v)", dgst, t.image, err)}
	}
	return err
}

// serveBlob writes blob dgst of size bytes (-1: unknown) from f, or the
// range rng of it. With prog nil the file is complete and verified;
// otherwise it is being written, and bytes are sent as prog reports them,
// holding back the last byte asked for until prog reports the blob
// verified. A failure after the headers aborts the response. Bytes go
// from the file to the connection with sendfile, or through a buffer for
// a local client of a complete blob (copyBlob).
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, t target, dgst digest.Digest, f *os.File, size int64, rng string, prog *cache.Writer) error {
	ctx := r.Context()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", dgst.String())
	h.Set("ETag", `"`+dgst.String()+`"`)
	if t.ns != "" {
		h.Set("OCI-Namespace", t.ns)
	}
	start, end, status := int64(0), size-1, http.StatusOK
	if size < 0 {
		end = math.MaxInt64 - 1
	} else {
		h.Set("Accept-Ranges", "bytes")
		if rng != "" {
			var err error
			if start, end, status, err = parseRange(rng, size); err != nil {
				return err
			}
			if status == http.StatusPartialContent {
				h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
			}
		}
		h.Set("Content-Length", strconv.FormatInt(end-start+1, 10))
	}
	if prog != nil && size == 0 && r.Method != http.MethodHead {
		// Nothing to hold back: verify before answering.
		if _, ok, err := prog.Wait(ctx, 0); !ok {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fillFailed(dgst, err)
		}
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead || end < start {
		return nil
	}
	if start > 0 {
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			s.log.WarnContext(ctx, "blob seek failed", "digest", dgst.String(), "error", err)
			panic(http.ErrAbortHandler)
		}
	}
	// While the blob is being fetched, this process hashes and writes it
	// and the machine is busy: sendfile, the cheapest copy. Once it is
	// cached, a client on this host is the one that is busy (hashing what
	// it reads): a copy through a buffer serves it faster (see copyBlob).
	buffered := prog == nil && isLoopback(r.RemoteAddr)
	pos, waitFor := start, start
	for pos <= end {
		avail, ok := size, true
		if prog != nil {
			if n, ok, _, err := prog.Progress(); n <= waitFor && !ok && err == nil {
				// About to wait for the upstream: send what is buffered
				// (net/http holds small first writes) so the client has
				// the headers and every byte there is.
				_ = http.NewResponseController(w).Flush()
			}
			var err error
			avail, ok, err = prog.Wait(ctx, waitFor)
			if err != nil {
				if ctx.Err() == nil {
					s.log.WarnContext(ctx, "blob fill failed: response aborted", "image", t.image, "digest", dgst.String(), "sent", pos-start, "error", err)
				}
				panic(http.ErrAbortHandler)
			}
			if ok && size < 0 {
				end = avail - 1 // now known
			}
		}
		limit := min(avail, end+1)
		if !ok {
			// Hold back the last byte asked for until the blob verified
			// (with no size known, the last byte written so far).
			limit = min(avail, end)
			if size < 0 {
				limit = avail - 1
			}
		}
		if limit <= pos {
			waitFor = avail // wait for more than is there
			continue
		}
		n, err := copyBlob(w, buffered, f, limit-pos)
		pos += n
		if err == nil && pos < limit {
			err = io.ErrUnexpectedEOF // the file is shorter than it should be
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.DebugContext(ctx, "blob response ended early", "digest", dgst.String(), "sent", pos-start, "error", err)
			}
			panic(http.ErrAbortHandler)
		}
		waitFor = pos
	}
	return nil
}

// copyBufs are the buffers of copyBlob.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// copyBlob copies n bytes of f to w. Unbuffered, it lets net/http use
// sendfile: io.Copy reaches the connection's ReadFrom through the
// recorder, with an *io.LimitedReader of an *os.File, and the bytes never
// enter this process. Buffered, it copies them through a buffer, which
// costs this process more CPU but measured 15-25% faster for a crane
// client on the same host: the receiving process then reads bytes that the
// copy left in the CPU cache they share (README "Performance").
func copyBlob(w io.Writer, buffered bool, f *os.File, n int64) (int64, error) {
	if !buffered {
		return io.Copy(w, &io.LimitedReader{R: f, N: n})
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(writerOnly{w}, &io.LimitedReader{R: readerOnly{f}, N: n}, *buf)
}

// writerOnly and readerOnly hide ReadFrom and WriteTo from io.Copy.
type writerOnly struct{ io.Writer }

type readerOnly struct{ io.Reader }

// isLoopback reports whether a RemoteAddr is on a loopback address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseRange resolves a single-range header (matching rangePattern)
// against a blob of size bytes. Status is 206 with the inclusive range to
// send, 200 when the header is to be ignored (RFC 9110 allows it for an
// invalid range), or an error (416 RANGE_INVALID) when no byte of the
// blob is in range.
func parseRange(rng string, size int64) (start, end int64, status int, err error) {
	whole := func() (int64, int64, int, error) { return 0, size - 1, http.StatusOK, nil }
	spec, ok := strings.CutPrefix(rng, "bytes=")
	if !ok || size <= 0 {
		return whole()
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok || first == "" && last == "" {
		return whole()
	}
	unsatisfiable := &ociError{code: "RANGE_INVALID", message: fmt.Sprintf("range %q does not overlap the blob's %d bytes", clip(rng), size)}
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		switch {
		case err != nil:
			return whole()
		case n == 0:
			return 0, 0, 0, unsatisfiable
		case n >= size:
			return 0, size - 1, http.StatusPartialContent, nil
		}
		return size - n, size - 1, http.StatusPartialContent, nil
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return whole()
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
			return whole()
		}
		b = min(b, size-1)
	}
	if a >= size {
		return 0, 0, 0, unsatisfiable
	}
	return a, b, http.StatusPartialContent, nil
}

// blobUpstream streams dgst from upstream for this request alone (no
// disk cache, a HEAD for a blob not cached, or a blob the cache cannot
// hold). A range is passed through; a whole blob is hashed on the way.
func (s *Server) blobUpstream(w http.ResponseWriter, r *http.Request, t target, dgst digest.Digest, rng string) error {
	ctx := r.Context()
	resp, err := s.upstreams[t.registry].Blob(ctx, r.Method, t.repo, dgst, rng)
	if err != nil {
		return blobUpstreamErr(t, dgst, err)
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
