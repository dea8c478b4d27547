package verifier

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

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
	// roots maps trusted root names ("" is the default root) to the
	// functions that return their current material.
	roots map[string]TrustedMaterialFunc
	// noSCT turns off the SCT requirement for keyless signers.
	noSCT bool
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
// of each manifest (the .sig and .att images, the referrers index, each
// referrer manifest), the number of signature or attestation candidates
// read per layout (.sig layers, .att layers, referrers), and the size of
// each signature payload, attestation envelope or bundle. Zero fields take the
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

// WithClock sets the clock used to measure [Verdict.Duration] and the
// value of now in attestation conditions (the time Verify starts). It is
// never used to judge certificate validity: keyless certificates are
// checked at the signing time a transparency log or an RFC 3161
// timestamp proves, never at the current time. The default is
// [time.Now].
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("nil clock")
		}
		c.now = now
		return nil
	}
}

// TrustedMaterialFunc returns the current Sigstore trusted material of
// one trusted root (Fulcio CAs, Rekor logs, CT logs, timestamp
// authorities) and its generation: a string that changes whenever the
// material does, e.g. the SHA-256 of the trusted_root.json it was parsed
// from. It returns a nil material when the root is configured but not
// available yet (a TUF fetch that has not succeeded); signers that need
// it then fail closed.
//
// The verifier calls it at least once per verification and once per
// [Sigstore.Generation], so it must be cheap (an atomic load) and safe
// for concurrent use. It must never do I/O: loading, reloading and TUF
// refreshes happen elsewhere, never on the request path.
type TrustedMaterialFunc func() (tm root.TrustedMaterial, generation string)

// WithTrustedRoot makes the trusted root called name resolve to the
// material fn returns. The name "" is the default root (the
// configuration's trustedRoot, or tuf); other names are the keys of its
// trustRoots, which keyless signers choose with trustRoot. Keyless
// signers verify against their root; key signers use the default root
// for their transparency log entries. Setting a name twice is an error.
// The default is no trusted root: keyless signers and key signers with
// tlog: required cannot be satisfied (see [Check]), and key signers with
// tlog: optional ignore log entries.
func WithTrustedRoot(name string, fn TrustedMaterialFunc) Option {
	return func(c *config) error {
		if fn == nil {
			return fmt.Errorf("trusted root %q: nil function", name)
		}
		if _, dup := c.roots[name]; dup {
			return fmt.Errorf("trusted root %q configured twice", name)
		}
		if c.roots == nil {
			c.roots = map[string]TrustedMaterialFunc{}
		}
		c.roots[name] = fn
		return nil
	}
}

// WithTrustedMaterial is [WithTrustedRoot] for material that never
// changes, such as a trusted root parsed once, or sigstore-go's
// VirtualSigstore in tests. Its generation is derived from the
// material's JSON when it has one (root.TrustedRoot), and otherwise
// identifies the value. The default is no trusted root.
func WithTrustedMaterial(name string, tm root.TrustedMaterial) Option {
	return func(c *config) error {
		if tm == nil {
			return fmt.Errorf("trusted root %q: nil material", name)
		}
		gen := staticGeneration(tm)
		return WithTrustedRoot(name, func() (root.TrustedMaterial, string) { return tm, gen })(c)
	}
}

// WithoutSCTsUnsafe stops requiring that keyless certificates carry a
// signed certificate timestamp (SCT) from a CT log of the trusted root.
// It weakens verification: a certificate Fulcio issued but never logged
// in certificate transparency would pass. It exists for test Sigstores
// (sigstore-go's VirtualSigstore issues certificates without SCTs) and
// private deployments without CT; roots without CT logs never require
// SCTs anyway. The default is to require one SCT whenever the trusted
// root has CT logs.
func WithoutSCTsUnsafe() Option {
	return func(c *config) error {
		c.noSCT = true
		return nil
	}
}

func (c *config) validate() error {
	if c.limits.MaxManifestBytes <= 0 || c.limits.MaxSignatures <= 0 || c.limits.MaxSignatureBytes <= 0 {
		return fmt.Errorf("invalid limits %+v", c.limits)
	}
	return nil
}
