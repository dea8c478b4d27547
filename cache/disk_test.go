package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

func newDisk(t testing.TB, dir string, maxBytes int64) *Disk {
	t.Helper()
	d, err := NewDisk(dir, maxBytes)
	if err != nil {
		t.Fatalf("NewDisk(%s, %d): %v", dir, maxBytes, err)
	}
	return d
}

// blob is deterministic content of n bytes, distinct per seed.
func blob(seed, n int) ([]byte, digest.Digest) {
	b := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b, digest.FromBytes(b)
}

// put writes and commits b as dgst.
func put(t testing.TB, d *Disk, dgst digest.Digest, b []byte) {
	t.Helper()
	w, err := d.Create(dgst, int64(len(b)))
	if err != nil {
		t.Fatalf("Create(%s): %v", dgst, err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit(%s): %v", dgst, err)
	}
}

// read returns the content of blob dgst, or the Open error.
func read(t testing.TB, d *Disk, dgst digest.Digest) ([]byte, error) {
	t.Helper()
	f, size, err := d.Open(dgst)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", dgst, err)
	}
	if int64(len(b)) != size {
		t.Fatalf("Open(%s) size %d, read %d bytes", dgst, size, len(b))
	}
	return b, nil
}

// files lists the names in the sha256 directory of the cache in dir.
func files(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	slices.Sort(out)
	return out
}

func TestNewDiskRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		dir string
		max int64
	}{{"", 10}, {t.TempDir(), 0}, {t.TempDir(), -1}} {
		if _, err := NewDisk(tt.dir, tt.max); err == nil {
			t.Errorf("NewDisk(%q, %d) = nil error, want error", tt.dir, tt.max)
		}
	}
}

func TestDiskCommitAndOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := newDisk(t, dir, 1<<20)
	b, dgst := blob(1, 1000)
	if _, err := read(t, d, dgst); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open before Commit = %v, want ErrNotFound", err)
	}
	w, err := d.Create(dgst, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	// Written in pieces; nothing is visible before Commit.
	for p := b; len(p) > 0; p = p[min(len(p), 300):] {
		if _, err := w.Write(p[:min(len(p), 300)]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := read(t, d, dgst); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open before Commit = %v, want ErrNotFound", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := read(t, d, dgst)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("Open after Commit = %d bytes, %v; want the blob", len(got), err)
	}
	if n, size := d.Usage(); n != 1 || size != 1000 {
		t.Errorf("Usage() = %d, %d; want 1, 1000", n, size)
	}
	if diff := cmp.Diff([]string{dgst.Encoded()}, files(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	// A second commit of the same blob keeps one entry.
	put(t, d, dgst, b)
	if n, size := d.Usage(); n != 1 || size != 1000 {
		t.Errorf("Usage() after a second commit = %d, %d; want 1, 1000", n, size)
	}
}

// TestDiskWrongBytes: bytes that are not the blob never become visible
// and leave no file behind.
func TestDiskWrongBytes(t *testing.T) {
	t.Parallel()
	good, dgst := blob(2, 4096)
	flipped := bytes.Clone(good)
	flipped[2000] ^= 1
	tests := []struct {
		name    string
		size    int64
		write   []byte
		wantErr error // from Write, else from Commit
	}{
		{"flipped byte", 4096, flipped, nil},
		{"short", 4096, good[:4095], nil},
		{"long", 4096, append(bytes.Clone(good), 'x'), ErrDigestMismatch},
		{"unknown size, flipped", -1, flipped, nil},
		{"unknown size, short", -1, good[:10], nil},
		{"bigger than the cache", -1, make([]byte, 8193), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			d := newDisk(t, dir, 8192)
			w, err := d.Create(dgst, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.Write(tt.write)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Write = %v, want %v", err, tt.wantErr)
				}
				w.Abort(err)
			} else {
				if err != nil {
					t.Fatalf("Write = %v", err)
				}
				if err := w.Commit(); !errors.Is(err, ErrDigestMismatch) {
					t.Fatalf("Commit = %v, want ErrDigestMismatch", err)
				}
			}
			if _, _, err := d.Open(dgst); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open = %v, want ErrNotFound", err)
			}
			if f := files(t, dir); len(f) != 0 {
				t.Errorf("files left behind: %v", f)
			}
			if n, size := d.Usage(); n != 0 || size != 0 || d.reserved != 0 {
				t.Errorf("Usage() = %d, %d (reserved %d); want 0, 0 (0)", n, size, d.reserved)
			}
		})
	}
}

func TestDiskCreateTooLarge(t *testing.T) {
	t.Parallel()
	d := newDisk(t, t.TempDir(), 100)
	_, dgst := blob(3, 10)
	if _, err := d.Create(dgst, 101); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Create(101 bytes) in a 100-byte cache = %v, want ErrTooLarge", err)
	}
	if _, err := d.Create("sha256:nothex", 1); err == nil {
		t.Errorf("Create(invalid digest) = nil error")
	}
}

// TestDiskEviction: the least recently used blobs go first, and the
// committed bytes never exceed the bound.
func TestDiskEviction(t *testing.T) {
	t.Parallel()
	d := newDisk(t, t.TempDir(), 350)
	var ds []digest.Digest
	var bs [][]byte
	for i := range 6 {
		b, dgst := blob(10+i, 100)
		ds, bs = append(ds, dgst), append(bs, b)
	}
	held := func() []int {
		var out []int
		for i, dgst := range ds {
			d.mu.Lock()
			_, ok := d.entries[dgst]
			d.mu.Unlock()
			if ok {
				out = append(out, i)
			}
		}
		return out
	}
	steps := []struct {
		name string
		do   func()
		want []int
	}{
		{"three fit", func() { put(t, d, ds[0], bs[0]); put(t, d, ds[1], bs[1]); put(t, d, ds[2], bs[2]) }, []int{0, 1, 2}},
		{"a fourth evicts the oldest", func() { put(t, d, ds[3], bs[3]) }, []int{1, 2, 3}},
		{"an open makes 1 recent", func() {
			if _, err := read(t, d, ds[1]); err != nil {
				t.Fatal(err)
			}
		}, []int{1, 2, 3}},
		{"so 2 goes next", func() { put(t, d, ds[4], bs[4]) }, []int{1, 3, 4}},
		{"then 3", func() { put(t, d, ds[5], bs[5]) }, []int{1, 4, 5}},
	}
	for _, st := range steps {
		st.do()
		if diff := cmp.Diff(st.want, held()); diff != "" {
			t.Errorf("%s: blobs held (-want +got):\n%s", st.name, diff)
		}
		if _, size := d.Usage(); size > 350 {
			t.Errorf("%s: %d bytes held, bound 350", st.name, size)
		}
	}
	// Evicted blobs are gone from disk too.
	if _, err := os.Stat(d.path(ds[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("evicted blob file: Stat = %v, want not exist", err)
	}
}

// TestDiskEvictWhileReading: a reader keeps its file after eviction.
func TestDiskEvictWhileReading(t *testing.T) {
	t.Parallel()
	d := newDisk(t, t.TempDir(), 100)
	b1, d1 := blob(20, 100)
	b2, d2 := blob(21, 100)
	put(t, d, d1, b1)
	f, _, err := d.Open(d1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	put(t, d, d2, b2) // evicts d1
	if _, _, err := d.Open(d1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open(evicted) = %v, want ErrNotFound", err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, b1) {
		t.Errorf("reading an evicted blob's open file = %d bytes, %v; want the blob", len(got), err)
	}
}

// TestDiskRestart: a new Disk on the same directory serves what the old
// one committed, keeps the LRU order, and removes what must not be
// served: temporary files, truncated and altered blobs.
func TestDiskRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := newDisk(t, dir, 1000)
	var ds []digest.Digest
	var bs [][]byte
	for i := range 5 {
		b, dgst := blob(30+i, 100)
		put(t, d, dgst, b)
		ds, bs = append(ds, dgst), append(bs, b)
	}
	// Access order (mtime) on disk: 0 oldest … 4 newest.
	base := time.Now().Add(-time.Hour)
	for i, dgst := range ds {
		mt := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(d.path(dgst), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	// 3 is truncated, 4 has a flipped byte, and a write was left over.
	if err := os.Truncate(d.path(ds[3]), 50); err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(bs[4])
	flipped[7] ^= 0x80
	if err := os.WriteFile(d.path(ds[4]), flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, "blobs", "sha256", tmpPrefix+"abc-123")
	if err := os.WriteFile(stray, bs[0], 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "blobs", "sha256", "README")
	if err := os.WriteFile(foreign, []byte("not a blob"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Restart with room for 350 bytes: 450 are on disk (3 is 50 bytes
	// now), so the oldest, 0, goes.
	d2 := newDisk(t, dir, 350)
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stray temporary file survived a restart: %v", err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("a file that is not a blob was removed: %v", err)
	}
	want := map[int]bool{0: false, 1: true, 2: true, 3: false, 4: false}
	for i, ok := range want {
		got, err := read(t, d2, ds[i])
		switch {
		case ok && (err != nil || !bytes.Equal(got, bs[i])):
			t.Errorf("blob %d after restart: %d bytes, %v; want it served", i, len(got), err)
		case !ok && !errors.Is(err, ErrNotFound):
			t.Errorf("blob %d after restart: %d bytes, %v; want ErrNotFound", i, len(got), err)
		}
	}
	// Corrupt files are removed, not just skipped.
	for _, i := range []int{3, 4} {
		if _, err := os.Stat(d2.path(ds[i])); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("corrupt blob %d still on disk: %v", i, err)
		}
	}
	if n, size := d2.Usage(); n != 2 || size != 200 {
		t.Errorf("Usage() = %d, %d; want 2, 200", n, size)
	}
}

// TestDiskTruncatedWhileRunning: a file that shrank under a running
// cache is detected by the size check and removed.
func TestDiskTruncatedWhileRunning(t *testing.T) {
	t.Parallel()
	d := newDisk(t, t.TempDir(), 1000)
	b, dgst := blob(40, 100)
	put(t, d, dgst, b)
	if err := os.Truncate(d.path(dgst), 99); err != nil {
		t.Fatal(err)
	}
	if _, err := read(t, d, dgst); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(truncated) = %v, want ErrNotFound", err)
	}
	if n, _ := d.Usage(); n != 0 {
		t.Errorf("truncated blob still indexed")
	}
}

// TestWriterFollow: a follower reads bytes as they are written, learns
// when they verified, and sees a failure.
func TestWriterFollow(t *testing.T) {
	t.Parallel()
	b, dgst := blob(50, 1000)
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			t.Parallel()
			d := newDisk(t, t.TempDir(), 1<<20)
			w, err := d.Create(dgst, int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			f, err := w.Reopen()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := w.Write(b[:600]); err != nil {
				t.Fatal(err)
			}
			// The first part is readable before the rest exists.
			n, ok, err := w.Wait(t.Context(), 0)
			if n != 600 || ok || err != nil {
				t.Fatalf("Wait(0) = %d, %v, %v; want 600, false, nil", n, ok, err)
			}
			first := make([]byte, 600)
			if _, err := io.ReadFull(f, first); err != nil || !bytes.Equal(first, b[:600]) {
				t.Fatalf("follower read of the first part: %v", err)
			}
			// Waiting for more blocks until it is written.
			got := make(chan error, 1)
			go func() {
				n, ok, err := w.Wait(t.Context(), 600)
				switch {
				case err != nil:
					got <- err
				case n != 1000 && !ok:
					got <- fmt.Errorf("Wait(600) = %d, %v", n, ok)
				default:
					got <- nil
				}
			}()
			rest := b[600:]
			if fail {
				rest = bytes.Clone(rest)
				rest[0] ^= 1
			}
			if _, err := w.Write(rest); err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Fatal(err)
			}
			verr := w.Verify()
			_, ok, err = w.Wait(t.Context(), 1000)
			if fail {
				if !errors.Is(verr, ErrDigestMismatch) || ok || !errors.Is(err, ErrDigestMismatch) {
					t.Errorf("after a mismatch: Verify = %v, Wait = %v, %v; want ErrDigestMismatch and not ok", verr, ok, err)
				}
				if _, err := w.Reopen(); !errors.Is(err, ErrDigestMismatch) {
					t.Errorf("Reopen after a failure = %v, want ErrDigestMismatch", err)
				}
				return
			}
			if verr != nil || !ok || err != nil {
				t.Fatalf("after a match: Verify = %v, Wait = %v, %v", verr, ok, err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			// The follower's file is the committed blob.
			all, err := io.ReadAll(f)
			if err != nil || !bytes.Equal(all, b[600:]) {
				t.Errorf("follower read of the rest: %d bytes, %v", len(all), err)
			}
			f2, err := w.Reopen()
			if err != nil {
				t.Fatalf("Reopen after Commit: %v", err)
			}
			defer f2.Close()
			if all, _ := io.ReadAll(f2); !bytes.Equal(all, b) {
				t.Errorf("Reopen after Commit read %d bytes, want the blob", len(all))
			}
		})
	}
}

func TestWriterWaitContext(t *testing.T) {
	t.Parallel()
	d := newDisk(t, t.TempDir(), 1<<20)
	_, dgst := blob(60, 10)
	w, err := d.Create(dgst, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort(nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := w.Wait(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestDiskConcurrent hammers one small cache with writers and readers of
// the same and different blobs (run with -race): every Open that
// succeeds returns exactly the blob, and the bound holds.
func TestDiskConcurrent(t *testing.T) {
	t.Parallel()
	const (
		blobs   = 12
		size    = 2000
		workers = 16
		rounds  = 40
	)
	dir := t.TempDir()
	d := newDisk(t, dir, 5*size)
	var bs [][]byte
	var ds []digest.Digest
	for i := range blobs {
		b, dgst := blob(100+i, size)
		bs, ds = append(bs, b), append(ds, dgst)
	}
	var wg sync.WaitGroup
	for wk := range workers {
		wg.Go(func() {
			for r := range rounds {
				i := (wk*7 + r*3) % blobs
				if wk%4 == 0 {
					i = 0 // several writers of the same blob
				}
				if got, err := read(t, d, ds[i]); err == nil {
					if !bytes.Equal(got, bs[i]) {
						t.Errorf("worker %d: blob %d served wrong bytes", wk, i)
					}
					continue
				}
				w, err := d.Create(ds[i], size)
				if err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				if _, err := w.Write(bs[i]); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				if r%5 == 0 {
					w.Abort(nil) // some writers give up
					continue
				}
				if err := w.Commit(); err != nil {
					t.Errorf("Commit: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if _, used := d.Usage(); used > 5*size {
		t.Errorf("%d bytes held, bound %d", used, 5*size)
	}
	if d.reserved != 0 {
		t.Errorf("%d bytes still reserved after every writer finished", d.reserved)
	}
	// Only committed blobs are left on disk, and each is indexed.
	n, _ := d.Usage()
	if got := files(t, dir); len(got) != n {
		t.Errorf("%d files on disk, %d indexed: %v", len(got), n, got)
	}
	// A restart agrees.
	d2 := newDisk(t, dir, 5*size)
	for i := range blobs {
		if got, err := read(t, d2, ds[i]); err == nil && !bytes.Equal(got, bs[i]) {
			t.Errorf("after restart: blob %d served wrong bytes", i)
		}
	}
}

// TestDiskConcurrentFirstOpen: Opens racing on a file found at start
// share one verification and all see the same answer.
func TestDiskConcurrentFirstOpen(t *testing.T) {
	t.Parallel()
	for _, corrupt := range []bool{false, true} {
		t.Run(fmt.Sprintf("corrupt=%v", corrupt), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b, dgst := blob(70, 1<<16)
			put(t, newDisk(t, dir, 1<<20), dgst, b)
			if corrupt {
				bad := bytes.Clone(b)
				bad[len(bad)-1] ^= 1
				if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", dgst.Encoded()), bad, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			d := newDisk(t, dir, 1<<20)
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					got, err := read(t, d, dgst)
					switch {
					case corrupt && !errors.Is(err, ErrNotFound):
						t.Errorf("Open(corrupt) = %v, want ErrNotFound", err)
					case !corrupt && (err != nil || !bytes.Equal(got, b)):
						t.Errorf("Open = %d bytes, %v; want the blob", len(got), err)
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestWriterReopenDuringCommit: followers reopening while the writer
// commits always get the file (the temporary one or the final one).
func TestWriterReopenDuringCommit(t *testing.T) {
	t.Parallel()
	d := newDisk(t, t.TempDir(), 1<<20)
	for i := range 20 {
		b, dgst := blob(200+i, 512)
		w, err := d.Create(dgst, int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 50 {
					f, err := w.Reopen()
					if err != nil {
						t.Errorf("Reopen during Commit: %v", err)
						return
					}
					got, _ := io.ReadAll(f)
					f.Close()
					if !bytes.Equal(got, b) {
						t.Errorf("Reopen during Commit read %d bytes, want the blob", len(got))
						return
					}
				}
			})
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}
