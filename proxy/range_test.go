package proxy

import (
	"errors"
	"net/http"
	"testing"
)

func TestParseRange(t *testing.T) {
	t.Parallel()
	const size = 100
	tests := []struct {
		rng        string
		size       int64
		start, end int64
		status     int // 0: RANGE_INVALID
	}{
		{"bytes=0-9", size, 0, 9, 206},
		{"bytes=10-", size, 10, 99, 206},
		{"bytes=99-", size, 99, 99, 206},
		{"bytes=90-200", size, 90, 99, 206},
		{"bytes=-1", size, 99, 99, 206},
		{"bytes=-10", size, 90, 99, 206},
		{"bytes=-100", size, 0, 99, 206},
		{"bytes=-1000", size, 0, 99, 206},
		{"bytes=0-", size, 0, 99, 206},
		{"bytes=100-", size, 0, 0, 0},
		{"bytes=100-200", size, 0, 0, 0},
		{"bytes=-0", size, 0, 0, 0},
		// Ignored: the whole blob.
		{"bytes=9-3", size, 0, 99, 200},
		{"bytes=-", size, 0, 99, 200},
		{"bytes=99999999999999999999-", size, 0, 99, 200},
		{"bytes=0-99999999999999999999", size, 0, 99, 200},
		{"items=0-9", size, 0, 99, 200},
		{"bytes=0-9", 0, 0, -1, 200},
	}
	for _, tt := range tests {
		start, end, status, err := parseRange(tt.rng, tt.size)
		if tt.status == 0 {
			var oe *ociError
			if !errors.As(err, &oe) || oe.code != "RANGE_INVALID" || oe.httpStatus() != http.StatusRequestedRangeNotSatisfiable {
				t.Errorf("parseRange(%q, %d) = %d, %d, %d, %v; want RANGE_INVALID", tt.rng, tt.size, start, end, status, err)
			}
			continue
		}
		if err != nil || start != tt.start || end != tt.end || status != tt.status {
			t.Errorf("parseRange(%q, %d) = %d, %d, %d, %v; want %d, %d, %d", tt.rng, tt.size, start, end, status, err, tt.start, tt.end, tt.status)
		}
	}
}

// FuzzParseRange: whatever the header, a range is within the blob and
// non-empty, the whole blob, or RANGE_INVALID.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=10-", "bytes=-5", "bytes=-0", "bytes=9-3", "bytes=-", "bytes=0-99999999999999999999"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, rng string, size int64) {
		if size < 0 || !rangePattern.MatchString(rng) {
			return // blob() only passes matching headers for known sizes
		}
		start, end, status, err := parseRange(rng, size)
		switch {
		case err != nil:
			if size == 0 {
				t.Errorf("parseRange(%q, 0) = %v: an empty blob is served whole", rng, err)
			}
		case status == http.StatusOK:
			if start != 0 || end != size-1 {
				t.Errorf("parseRange(%q, %d) = 200 with %d-%d", rng, size, start, end)
			}
		case status == http.StatusPartialContent:
			if start < 0 || end < start || end >= size {
				t.Errorf("parseRange(%q, %d) = 206 %d-%d, outside the blob", rng, size, start, end)
			}
		default:
			t.Errorf("parseRange(%q, %d) status %d", rng, size, status)
		}
	})
}
