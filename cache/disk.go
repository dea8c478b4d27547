package cache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// Errors of the disk cache.
var (
	// ErrNotFound is returned by [Disk.Open] for a blob the cache does
	// not hold (or held, but found corrupt and removed).
	ErrNotFound = errors.New("cache: not found")
	// ErrDigestMismatch is returned when the bytes written to a [Writer]
	// do not hash to its digest, or are not the size it was created with.
	ErrDigestMismatch = errors.New("cache: content does not match its digest")
	// ErrTooLarge is returned by [Disk.Create] and [Writer.Write] for a
	// blob bigger than the whole cache.
	ErrTooLarge = errors.New("cache: blob larger than the cache")
	// ErrAborted is returned to followers of a [Writer] that was aborted
	// without a more specific error.
	ErrAborted = errors.New("cache: write aborted")
)

// tmpPrefix starts the names of files being written. They are never
// served from the index and are removed when a [Disk] starts.
const tmpPrefix = ".tmp-"

// touchInterval bounds how often an access updates a file's mtime, which
// is the LRU order a restart rebuilds.
const touchInterval = time.Minute

// Disk is a content-addressed, size-bounded blob store on the local
// file system: <dir>/blobs/<algorithm>/<hex>. It is safe for concurrent
// use by one process; one directory must not be shared by two processes.
//
// Guarantees:
//   - A file enters the index only through [Writer.Commit], after its
//     bytes hashed to its digest and matched its size; it is written to a
//     temporary file in the same directory, synced, then renamed.
//   - [Disk.Open] never returns a file that was not verified by this
//     process: files found on disk when the cache starts (restart
//     survival) are hashed on their first Open, and a corrupt one is
//     removed and reported as [ErrNotFound]. Each Open also checks the
//     file's size against the index. (A byte flipped on disk after this
//     process verified the file is only caught after a restart.)
//   - The committed bytes never exceed maxBytes: the least recently
//     opened or committed files are removed first. A file removed while
//     a reader has it open stays readable to that reader (unlink
//     semantics).
type Disk struct {
	dir string
	max int64
	now func() time.Time

	mu       sync.Mutex
	entries  map[digest.Digest]*list.Element // of *diskEntry
	lru      list.List                       // front: most recently used
	used     int64                           // bytes of committed entries
	reserved int64                           // bytes promised to writers in progress
}

type diskEntry struct {
	dgst     digest.Digest
	size     int64
	touched  time.Time // the mtime last written (or found)
	verified bool      // hashed by this process
	check    *checkCall
}

// checkCall is one verification of a file found on disk, shared by the
// Opens that wait for it.
type checkCall struct {
	done chan struct{}
	ok   bool
}

// NewDisk returns the cache in dir (created if missing), holding at most
// maxBytes of blobs. It rebuilds its index from the files already there,
// in the order of their modification times, removes temporary files left
// by a previous process, and evicts down to maxBytes.
func NewDisk(dir string, maxBytes int64) (*Disk, error) {
	if dir == "" {
		return nil, errors.New("cache: no directory")
	}
	if maxBytes <= 0 {
		return nil, errors.New("cache: maxBytes must be positive")
	}
	d := &Disk{dir: dir, max: maxBytes, now: time.Now, entries: map[digest.Digest]*list.Element{}}
	var found []*diskEntry
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA384, digest.SHA512} {
		adir := d.algDir(alg)
		if err := os.MkdirAll(adir, 0o700); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		des, err := os.ReadDir(adir)
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		for _, de := range des {
			name := de.Name()
			if strings.HasPrefix(name, tmpPrefix) {
				// A write the previous process never finished.
				_ = os.Remove(filepath.Join(adir, name))
				continue
			}
			dgst := digest.NewDigestFromEncoded(alg, name)
			if !de.Type().IsRegular() || dgst.Validate() != nil {
				continue // not ours
			}
			fi, err := de.Info()
			if err != nil {
				continue
			}
			found = append(found, &diskEntry{dgst: dgst, size: fi.Size(), touched: fi.ModTime()})
		}
	}
	slices.SortFunc(found, func(a, b *diskEntry) int { return a.touched.Compare(b.touched) })
	for _, e := range found {
		d.entries[e.dgst] = d.lru.PushFront(e)
		d.used += e.size
	}
	d.mu.Lock()
	d.evictLocked("")
	d.mu.Unlock()
	return d, nil
}

func (d *Disk) algDir(alg digest.Algorithm) string {
	return filepath.Join(d.dir, "blobs", string(alg))
}

func (d *Disk) path(dgst digest.Digest) string {
	return filepath.Join(d.algDir(dgst.Algorithm()), dgst.Encoded())
}

// MaxBytes is the configured bound.
func (d *Disk) MaxBytes() int64 { return d.max }

// Usage returns the number of blobs held and their total size.
func (d *Disk) Usage() (n int, bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.entries), d.used
}

// Contains reports whether blob dgst is in the index (it may still turn
// out corrupt when opened).
func (d *Disk) Contains(dgst digest.Digest) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.entries[dgst]
	return ok
}

// Open returns blob dgst, opened for reading, and its size, or
// [ErrNotFound]. The caller closes the file. Open marks the blob as
// recently used. The first Open of a file found on disk at start hashes
// it (and waits for a concurrent Open doing so).
func (d *Disk) Open(dgst digest.Digest) (*os.File, int64, error) {
	if dgst.Validate() != nil {
		return nil, 0, ErrNotFound
	}
	d.mu.Lock()
	el, ok := d.entries[dgst]
	if !ok {
		d.mu.Unlock()
		return nil, 0, ErrNotFound
	}
	e := el.Value.(*diskEntry)
	d.lru.MoveToFront(el)
	now := d.now()
	touch := now.Sub(e.touched) >= touchInterval
	if touch {
		e.touched = now
	}
	var call *checkCall
	leader := false
	if !e.verified {
		if call = e.check; call == nil {
			call = &checkCall{done: make(chan struct{})}
			e.check, leader = call, true
		}
	}
	size := e.size
	d.mu.Unlock()

	p := d.path(dgst)
	if call != nil {
		if leader {
			call.ok = verifyFile(p, dgst, size)
			d.mu.Lock()
			e.check = nil
			if call.ok {
				e.verified = true
			} else {
				d.dropLocked(el)
			}
			d.mu.Unlock()
			close(call.done)
		} else {
			<-call.done
		}
		if !call.ok {
			return nil, 0, ErrNotFound
		}
	}
	f, err := os.Open(p)
	if err != nil {
		d.forget(el) // evicted meanwhile, or removed behind our back
		return nil, 0, ErrNotFound
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != size || !fi.Mode().IsRegular() {
		_ = f.Close()
		d.mu.Lock()
		if cur, ok := d.entries[dgst]; ok && cur == el {
			d.dropLocked(el) // truncated or replaced: never serve it
		}
		d.mu.Unlock()
		return nil, 0, ErrNotFound
	}
	if touch {
		_ = os.Chtimes(p, now, now)
	}
	return f, size, nil
}

// forget removes el from the index (not the file) if it is still there.
func (d *Disk) forget(el *list.Element) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := el.Value.(*diskEntry)
	if cur, ok := d.entries[e.dgst]; ok && cur == el {
		d.lru.Remove(el)
		delete(d.entries, e.dgst)
		d.used -= e.size
	}
}

// dropLocked removes el from the index and its file from disk.
func (d *Disk) dropLocked(el *list.Element) {
	e := el.Value.(*diskEntry)
	if cur, ok := d.entries[e.dgst]; !ok || cur != el {
		return
	}
	d.lru.Remove(el)
	delete(d.entries, e.dgst)
	d.used -= e.size
	_ = os.Remove(d.path(e.dgst))
}

// evictLocked removes least recently used blobs until the committed
// bytes plus reservations fit, never evicting keep.
func (d *Disk) evictLocked(keep digest.Digest) {
	for d.used+d.reserved > d.max {
		el := d.lru.Back()
		for el != nil && el.Value.(*diskEntry).dgst == keep {
			el = el.Prev()
		}
		if el == nil {
			return
		}
		d.dropLocked(el)
	}
}

// reserve promises n more bytes to a writer, evicting to make room.
func (d *Disk) reserve(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reserved += n
	d.evictLocked("")
}

func (d *Disk) release(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reserved -= n
}

// verifyFile reports whether the file at p is size bytes that hash to
// dgst.
func verifyFile(p string, dgst digest.Digest, size int64) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	v := dgst.Verifier()
	n, err := io.Copy(v, f)
	return err == nil && n == size && v.Verified()
}

// Create starts writing blob dgst of size bytes (-1 when unknown) to a
// temporary file. The caller writes the bytes, then calls
// [Writer.Verify] and [Writer.Commit], or [Writer.Abort]. Other
// goroutines can follow the write as it happens ([Writer.Reopen],
// [Writer.Wait]). Create fails with [ErrTooLarge] when size exceeds the
// cache.
func (d *Disk) Create(dgst digest.Digest, size int64) (*Writer, error) {
	if err := dgst.Validate(); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if size > d.max {
		return nil, fmt.Errorf("blob %s is %d bytes, the cache holds %d: %w", dgst, size, d.max, ErrTooLarge)
	}
	f, err := os.CreateTemp(d.algDir(dgst.Algorithm()), tmpPrefix+dgst.Encoded()[:16]+"-*")
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	w := &Writer{
		d:       d,
		dgst:    dgst,
		size:    size,
		f:       f,
		path:    f.Name(),
		h:       dgst.Algorithm().Hash(),
		changed: make(chan struct{}),
	}
	if size > 0 {
		w.reserved = size
		d.reserve(size)
		preallocate(f, size)
	}
	return w, nil
}

// writer states.
const (
	writing = iota
	verified
	committed
	failed
)

// Writer is a blob being written into a [Disk] by one goroutine (Write,
// Verify, Commit, Abort) and followed by any number of others (Reopen,
// Wait, Progress), which may read the bytes as they arrive.
type Writer struct {
	d        *Disk
	dgst     digest.Digest
	size     int64
	f        *os.File
	h        hash.Hash
	reserved int64

	mu      sync.Mutex
	n       int64
	state   int
	err     error
	path    string        // the temporary file, then the final one
	changed chan struct{} // closed (and replaced) on every change
}

// Digest is the digest the writer was created for.
func (w *Writer) Digest() digest.Digest { return w.dgst }

// Size is the size given to [Disk.Create] (-1 when unknown).
func (w *Writer) Size() int64 { return w.size }

// Write appends p to the file and the hash. Writing more than the size
// given to Create fails with [ErrDigestMismatch]; more than the cache
// holds with [ErrTooLarge]. The caller aborts after an error.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	state, n := w.state, w.n
	w.mu.Unlock()
	if state != writing {
		return 0, errors.New("cache: write after verify, commit or abort")
	}
	next := n + int64(len(p))
	switch {
	case w.size >= 0 && next > w.size:
		return 0, fmt.Errorf("blob %s: more than %d bytes: %w", w.dgst, w.size, ErrDigestMismatch)
	case next > w.d.max:
		return 0, fmt.Errorf("blob %s: more than %d bytes: %w", w.dgst, w.d.max, ErrTooLarge)
	case next > w.reserved:
		// Unknown size: reserve in steps as it grows.
		step := max(next-w.reserved, 64<<20)
		step = min(step, w.d.max-w.reserved)
		w.reserved += step
		w.d.reserve(step)
	}
	m, err := w.f.Write(p)
	w.h.Write(p[:m])
	w.mu.Lock()
	w.n += int64(m)
	w.notifyLocked()
	w.mu.Unlock()
	return m, err
}

func (w *Writer) notifyLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// Verify checks that the bytes written are the size given to Create and
// hash to the digest. After it succeeds followers see verified; after
// it fails the writer is aborted with [ErrDigestMismatch] (the file is
// removed).
func (w *Writer) Verify() error {
	w.mu.Lock()
	state, n := w.state, w.n
	w.mu.Unlock()
	switch state {
	case verified, committed:
		return nil
	case failed:
		return w.Err()
	}
	got := digest.NewDigest(w.dgst.Algorithm(), w.h)
	if (w.size >= 0 && n != w.size) || got != w.dgst {
		err := fmt.Errorf("blob %s: got %d bytes hashing to %s: %w", w.dgst, n, got, ErrDigestMismatch)
		w.Abort(err)
		return err
	}
	w.mu.Lock()
	w.state = verified
	w.notifyLocked()
	w.mu.Unlock()
	return nil
}

// Commit makes a verified blob durable and visible to [Disk.Open]: it
// syncs the file, renames it into place and indexes it (evicting other
// blobs to stay within the bound). It verifies first if Verify was not
// called.
func (w *Writer) Commit() error {
	if err := w.Verify(); err != nil {
		return err
	}
	w.mu.Lock()
	if w.state == committed {
		w.mu.Unlock()
		return nil
	}
	w.mu.Unlock()
	final := w.d.path(w.dgst)
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		w.Abort(err)
		return fmt.Errorf("cache: commit %s: %w", w.dgst, err)
	}
	// The rename and the index change together (under the disk lock), so
	// that no eviction of an older entry for the same digest removes the
	// file just renamed into place; followers reopen by path, so the path
	// changes with the rename (under the writer lock).
	d := w.d
	now := d.now()
	d.mu.Lock()
	w.mu.Lock()
	if err = os.Rename(w.path, final); err == nil {
		w.path = final
	}
	w.mu.Unlock()
	if err != nil {
		d.mu.Unlock()
		w.Abort(err)
		return fmt.Errorf("cache: commit %s: %w", w.dgst, err)
	}
	if el, ok := d.entries[w.dgst]; ok {
		// Committed twice (the same bytes): keep one entry.
		old := el.Value.(*diskEntry)
		d.used -= old.size
		d.lru.Remove(el)
	}
	e := &diskEntry{dgst: w.dgst, size: w.n, touched: now, verified: true}
	d.entries[w.dgst] = d.lru.PushFront(e)
	d.used += w.n
	d.reserved -= w.reserved
	w.reserved = 0
	d.evictLocked(w.dgst)
	d.mu.Unlock()
	syncDir(filepath.Dir(final))

	w.mu.Lock()
	w.state = committed
	w.notifyLocked()
	w.mu.Unlock()
	return nil
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		_ = f.Close()
	}
}

// Abort ends a write that was not committed: the temporary file is
// removed, and followers see err (or [ErrAborted] when err is nil). It
// is a no-op after Commit or a previous Abort.
func (w *Writer) Abort(err error) {
	if err == nil {
		err = ErrAborted
	}
	w.mu.Lock()
	if w.state == committed || w.state == failed {
		w.mu.Unlock()
		return
	}
	w.state, w.err = failed, err
	w.notifyLocked()
	p := w.path
	w.mu.Unlock()
	_ = w.f.Close()
	_ = os.Remove(p)
	if w.reserved > 0 {
		w.d.release(w.reserved)
		w.reserved = 0
	}
}

// Err is the error the write failed with, or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Progress returns how many bytes have been written, whether they
// verified (the blob is complete and correct), a channel closed at the
// next change, and the error the write failed with.
func (w *Writer) Progress() (n int64, ok bool, changed <-chan struct{}, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, w.state == verified || w.state == committed, w.changed, w.err
}

// Wait blocks until more than pos bytes were written, the write
// verified or failed, or ctx ends, and returns [Writer.Progress]'s
// results but the channel (err is ctx's error if it ended first).
func (w *Writer) Wait(ctx context.Context, pos int64) (n int64, ok bool, err error) {
	for {
		n, ok, ch, err := w.Progress()
		if n > pos || ok || err != nil {
			return n, ok, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return n, false, ctx.Err()
		}
	}
}

// Reopen opens the file being written (or, once committed, the blob)
// for reading with its own offset, so a follower can read what was
// written so far. It fails once the write failed. The caller closes the
// file.
func (w *Writer) Reopen() (*os.File, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == failed {
		return nil, w.err
	}
	f, err := os.Open(w.path)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return f, nil
}
