package verifier

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/pullgate/pullgate/policy"
)

// signerCheck is what checking candidates against one signer needs. It
// is built once per distinct signer configuration and trusted-root
// generation, and reused by every verification.
type signerCheck struct {
	// identity says which signers are the same party: signers sharing a
	// key (or a keyless identity) count once towards a threshold.
	identity string
	// unsupported, when not empty, says why this signer can never be
	// satisfied with the current configuration and trusted material.
	unsupported string
	// key is set for key signers: legacy signatures are verified in their
	// key form, ignoring an attached certificate.
	key bool
	// keyless is set for keyless signers.
	keyless *policy.Keyless
	tlog    policy.TLogPolicy
	// rootName and gen name the trusted root the check was built for;
	// tm is its material (nil for key signers without a root).
	rootName string
	gen      string
	tm       root.TrustedMaterial
	// withLog verifies transparency log entries (nil when the signer
	// skips the log or there is no root to check entries against);
	// noLog does not look at them (nil when the log is required).
	withLog, noLog *verify.Verifier
	// policy are the sigstore-go policy options besides the artifact.
	policy []verify.PolicyOption
}

// signerCheck returns the check for sg under the trusted material of
// snap, from the cache or built on first use. Checks are cached by
// content (key or identity, tlog policy, trusted-root generation), not
// by pointer, so a reloaded configuration reuses them; checks of
// generations no longer current are pruned as roots change.
func (s *Sigstore) signerCheck(sg *policy.Signer, snap *trustSnapshot) *signerCheck {
	switch {
	case sg == nil:
		return &signerCheck{unsupported: "signer is not configured"}
	case sg.Keyless != nil && sg.Key != nil:
		return &signerCheck{unsupported: "signer has both a key and a keyless identity"}
	case sg.Keyless != nil:
		return s.keylessCheck(sg, snap)
	case sg.Key == nil:
		return &signerCheck{unsupported: "signer has neither key nor keyless identity"}
	}
	return s.keyCheck(sg, snap)
}

// cached returns the check stored under cacheKey, or stores and returns
// the one build makes.
func (s *Sigstore) cached(cacheKey string, build func() *signerCheck) *signerCheck {
	if c, ok := s.checks.Load(cacheKey); ok {
		return c.(*signerCheck)
	}
	s.pruneChecks()
	actual, _ := s.checks.LoadOrStore(cacheKey, build())
	return actual.(*signerCheck)
}

// pruneChecks drops cached checks built for a trusted-root generation
// that is no longer current, so reloads do not grow the cache forever.
// It runs only when a check is about to be built.
func (s *Sigstore) pruneChecks() {
	if len(s.cfg.roots) == 0 {
		return
	}
	current := map[string]string{}
	for name, fn := range s.cfg.roots {
		_, current[name] = fn()
	}
	s.checks.Range(func(k, v any) bool {
		c := v.(*signerCheck)
		if c.gen != "" && current[c.rootName] != c.gen {
			s.checks.Delete(k)
		}
		return true
	})
}

// keyCheck builds (or reuses) the check for a key signer. Its log
// entries are checked against the default trusted root's Rekor logs.
func (s *Sigstore) keyCheck(sg *policy.Signer, snap *trustSnapshot) *signerCheck {
	pub, err := signerPublicKey(sg.Key)
	if err != nil {
		return &signerCheck{unsupported: err.Error()}
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return &signerCheck{unsupported: "unsupported public key: " + firstLine(err)}
	}
	sum := sha256.Sum256(der)
	id := "key:" + hex.EncodeToString(sum[:])
	var st trustState
	if sg.TLog != policy.TLogSkip {
		st = snap.get("")
	}
	if sg.TLog == policy.TLogRequired {
		switch {
		case !st.configured:
			return &signerCheck{identity: id, unsupported: "tlog: required needs a trusted root with the transparency log's key (set trustedRoot or tuf), and none is configured"}
		case st.tm == nil:
			return &signerCheck{identity: id, unsupported: "the trusted root is not available yet"}
		case len(st.tm.RekorLogs()) == 0:
			return &signerCheck{identity: id, unsupported: "tlog: required, but the trusted root has no transparency log (Rekor) key"}
		}
	}
	cacheKey := id + "|" + string(sg.TLog) + "|" + st.gen
	return s.cached(cacheKey, func() *signerCheck {
		c := newKeyCheck(id, pub, sg.TLog, st.tm)
		c.gen = st.gen
		return c
	})
}

// newKeyCheck builds the check for a key signer. The trusted material
// ignores the bundle's publicKey.hint (hints are producer-specific, and
// legacy signatures have none) and always answers with this one key.
// Time is not checked: the key has no validity window, and a log
// entry's time only matters for certificates.
//
// With a trusted root (tm), log entries are verified against its Rekor
// logs when the tlog policy asks for it: always for required, and for
// optional when the signature carries an entry of a log the root knows.
func newKeyCheck(id string, pub crypto.PublicKey, tlog policy.TLogPolicy, tm root.TrustedMaterial) *signerCheck {
	sv, err := keyVerifier(pub)
	if err != nil {
		return &signerCheck{identity: id, unsupported: err.Error()}
	}
	key := root.NewExpiringKey(sv, time.Time{}, time.Time{})
	keyTM := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return key, nil
	})
	c := &signerCheck{identity: id, key: true, tlog: tlog, policy: []verify.PolicyOption{verify.WithKey()}}
	if tlog != policy.TLogRequired {
		if c.noLog, err = verify.NewVerifier(keyTM, verify.WithNoObserverTimestamps(), verify.WithoutStatementPredicate()); err != nil {
			return &signerCheck{identity: id, unsupported: "build verifier: " + firstLine(err)}
		}
	}
	if tlog != policy.TLogSkip && tm != nil && len(tm.RekorLogs()) > 0 {
		c.tm = &rekorOnly{logs: tm.RekorLogs()}
		both := root.TrustedMaterialCollection{keyTM, c.tm}
		if c.withLog, err = verify.NewVerifier(both, verify.WithTransparencyLog(1), verify.WithNoObserverTimestamps(), verify.WithoutStatementPredicate()); err != nil {
			return &signerCheck{identity: id, unsupported: "build verifier: " + firstLine(err)}
		}
	}
	if c.noLog == nil && c.withLog == nil {
		return &signerCheck{identity: id, unsupported: "tlog: required, but no trusted root with a transparency log key is available"}
	}
	return c
}

// signerPublicKey returns the parsed key of a key signer, parsing the
// PEM when the policy left PublicKey unset.
func signerPublicKey(k *policy.Key) (crypto.PublicKey, error) {
	if k.PublicKey != nil {
		return k.PublicKey, nil
	}
	if len(k.PEM) == 0 {
		return nil, errors.New("key signer has no public key")
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(k.PEM)
	if err != nil {
		return nil, errors.New("key signer's PEM is not a public key")
	}
	return pub, nil
}

// keyVerifier returns the signature verifier for a public key, accepting
// every scheme cosign and sigstore-go sign with for that key type:
//
//   - ECDSA P-256: SHA-256.
//   - ECDSA P-384 and P-521: SHA-384 and SHA-512 (sigstore-go defaults,
//     cosign v3 bundles), and also SHA-256, which cosign v2 uses for every
//     key in legacy signatures. sigstore-go's own compatibility verifier
//     only applies to certificates, not to keys from trusted material.
//   - RSA (2048 bits or more): PKCS #1 v1.5 with SHA-256, as cosign signs.
//   - Ed25519: pure Ed25519 (legacy payloads and DSSE), and also Ed25519ph
//     (sigstore-go message signatures).
//
// Accepting several hashes for one key is safe: each is a secure
// signature scheme, and every one needs the private key.
func keyVerifier(pub crypto.PublicKey) (signature.Verifier, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return signature.LoadECDSAVerifier(k, crypto.SHA256)
		case elliptic.P384():
			return ecdsaAny(k, crypto.SHA384, crypto.SHA256)
		case elliptic.P521():
			return ecdsaAny(k, crypto.SHA512, crypto.SHA256)
		}
		return nil, fmt.Errorf("unsupported ECDSA curve %s", k.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits is too short (need 2048 or more)", k.N.BitLen())
		}
		return signature.LoadRSAPKCS1v15Verifier(k, crypto.SHA256)
	case ed25519.PublicKey:
		pure, err := signature.LoadED25519Verifier(k)
		if err != nil {
			return nil, err
		}
		ph, err := signature.LoadED25519phVerifier(k)
		if err != nil {
			return nil, err
		}
		return &anyVerifier{pub: k, verifiers: []signature.Verifier{pure, ph}}, nil
	}
	return nil, fmt.Errorf("unsupported public key type %T", pub)
}

// ecdsaAny returns a verifier accepting ECDSA signatures by k over any
// of the hashes.
func ecdsaAny(k *ecdsa.PublicKey, hashes ...crypto.Hash) (signature.Verifier, error) {
	vs := make([]signature.Verifier, 0, len(hashes))
	for _, h := range hashes {
		v, err := signature.LoadECDSAVerifier(k, h)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return &anyVerifier{pub: k, verifiers: vs}, nil
}

// anyVerifier accepts a signature when any of its verifiers (the same
// key with different hashes or modes) accepts it.
type anyVerifier struct {
	pub       crypto.PublicKey
	verifiers []signature.Verifier
}

func (a *anyVerifier) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return a.pub, nil
}

// VerifySignature buffers the signature and message (both are bounded
// by the verifier's limits: they come from fetched material) and tries
// each verifier in turn.
func (a *anyVerifier) VerifySignature(sig, message io.Reader, opts ...signature.VerifyOption) error {
	if sig == nil || message == nil {
		return errors.New("nil signature or message")
	}
	sigBytes, err := io.ReadAll(sig)
	if err != nil {
		return fmt.Errorf("read signature: %w", err)
	}
	msg, err := io.ReadAll(message)
	if err != nil {
		return fmt.Errorf("read message: %w", err)
	}
	var first error
	for _, v := range a.verifiers {
		err := v.VerifySignature(bytes.NewReader(sigBytes), bytes.NewReader(msg), opts...)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}
