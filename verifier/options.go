package verifier

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pullgate/pullgate/policy"
)

// Default limits, used for every [policy.Limits] field left at zero.
const (
	DefaultMaxManifestBytes  = 4 << 20
	DefaultMaxSignatures     = 64
	DefaultMaxSignatureBytes = 4 << 20
)

// Option configures a [Sigstore] built by [New].
type Option func(*config) error

type config struct {
	logger *slog.Logger
	limits policy.Limits
	now    func() time.Time
}

// WithLogger sets the logger for debug details of each verification
// (every rejected candidate with the full sigstore-go error). The
// verifier never logs at levels above Debug: the decision line belongs
// to the caller. The default is a logger that discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithLimits bounds what the verifier reads per image digest: the size
// of each manifest (the .sig image, the referrers index, each referrer
// manifest), the number of signature candidates read per layout, and the
// size of each signature payload or bundle. Zero fields take the
// defaults; negative fields are an error. The default is
// MaxManifestBytes 4 MiB, MaxSignatures 64, MaxSignatureBytes 4 MiB.
func WithLimits(l policy.Limits) Option {
	return func(c *config) error {
		if l.MaxManifestBytes < 0 || l.MaxSignatures < 0 || l.MaxSignatureBytes < 0 {
			return fmt.Errorf("negative limit in %+v", l)
		}
		if l.MaxManifestBytes != 0 {
			c.limits.MaxManifestBytes = l.MaxManifestBytes
		}
		if l.MaxSignatures != 0 {
			c.limits.MaxSignatures = l.MaxSignatures
		}
		if l.MaxSignatureBytes != 0 {
			c.limits.MaxSignatureBytes = l.MaxSignatureBytes
		}
		return nil
	}
}

// WithClock sets the clock used to measure [Verdict.Duration] (and,
// once keyless verification lands, certificate validity). The default
// is [time.Now].
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("nil clock")
		}
		c.now = now
		return nil
	}
}

func (c *config) validate() error {
	if c.limits.MaxManifestBytes <= 0 || c.limits.MaxSignatures <= 0 || c.limits.MaxSignatureBytes <= 0 {
		return fmt.Errorf("invalid limits %+v", c.limits)
	}
	return nil
}
