package policy

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"1", 1, ""},
		{"1048576", 1 << 20, ""},
		{"1Ki", 1 << 10, ""},
		{"512Mi", 512 << 20, ""},
		{"20Gi", 20 << 30, ""},
		{"2Ti", 2 << 40, ""},
		{"9223372036854775807", math.MaxInt64, ""},
		{"8388607Ti", 8388607 << 40, ""},
		{"8388608Ti", 0, "too large"},
		{"9223372036854775808", 0, "not a size"},
		{"0", 0, "must be positive"},
		{"0Gi", 0, "must be positive"},
		{"-1", 0, "not a size"},
		{"+1", 0, "not a size"},
		{"1.5Gi", 0, "not a size"},
		{"10GB", 0, "not a size"},
		{"Gi", 0, "not a size"},
		{"1 Gi", 0, "not a size"},
		{"", 0, "not a size"},
		{"0x10", 0, "not a size"},
	}
	for _, tt := range tests {
		got, err := parseByteSize(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseByteSize(%q) = %d, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
		}
	}
}

// FuzzParseByteSize: a size that parses is positive and round-trips
// through its plain number.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"1", "512Mi", "20Gi", "8388608Ti", "-1", "1.5Gi", "Ki", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseByteSize(s)
		if err != nil {
			if v != 0 {
				t.Errorf("parseByteSize(%q) = %d with error %v", s, v, err)
			}
			return
		}
		if v <= 0 {
			t.Errorf("parseByteSize(%q) = %d, want positive", s, v)
		}
		if back, err := parseByteSize(strconv.FormatInt(v, 10)); err != nil || back != v {
			t.Errorf("parseByteSize(%d) = %d, %v", v, back, err)
		}
	})
}
