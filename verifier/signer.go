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

// Reasons a signer cannot be enforced yet. [Check] reports them at
// startup; [Sigstore.Verify] treats such a signer as one that never has a
// valid signature, so an unenforceable requirement fails closed.
const (
	unsupportedKeyless      = "keyless verification is not supported yet"
	unsupportedTLogRequired = "tlog: required is not supported yet (no transparency log verification)"
)

// signerCheck is what checking candidates against one signer needs. It
// is built once per distinct signer configuration and reused by every
// verification: each keyed signer gets its own sigstore-go Verifier
// whose trusted material is that one key. Keyless signers will get a
// Verifier over the trusted root plus identity policy options.
type signerCheck struct {
	// identity says which signers are the same party: signers sharing a
	// key count once towards a threshold.
	identity string
	// unsupported, when not empty, says why this signer can never be
	// satisfied by this verifier.
	unsupported string
	// key is set for key signers: legacy signatures are verified in their
	// key form, ignoring an attached certificate.
	key      bool
	verifier *verify.Verifier
	// policy are the sigstore-go policy options besides the artifact.
	policy []verify.PolicyOption
}

// signerCheck returns the cached check for sg, building it on first use.
// Checks are cached by content (key and tlog policy), not by pointer, so
// a reloaded configuration reuses them and the cache only grows with the
// number of distinct keys ever configured.
func (s *Sigstore) signerCheck(sg *policy.Signer) *signerCheck {
	if why := unsupportedKind(sg); why != "" {
		return &signerCheck{unsupported: why}
	}
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
	cacheKey := id + "|" + string(sg.TLog)
	if c, ok := s.checks.Load(cacheKey); ok {
		return c.(*signerCheck)
	}
	c := newKeyCheck(id, pub)
	actual, _ := s.checks.LoadOrStore(cacheKey, c)
	return actual.(*signerCheck)
}

// newKeyCheck builds the check for a key signer. The trusted material
// ignores the bundle's publicKey.hint (hints are producer-specific, and
// legacy signatures have none) and always answers with this one key.
// Time is not checked (the key has no validity window, and without a
// transparency log there is no trustworthy signing time).
func newKeyCheck(id string, pub crypto.PublicKey) *signerCheck {
	sv, err := keyVerifier(pub)
	if err != nil {
		return &signerCheck{identity: id, unsupported: err.Error()}
	}
	key := root.NewExpiringKey(sv, time.Time{}, time.Time{})
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return key, nil
	})
	v, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
	if err != nil {
		return &signerCheck{identity: id, unsupported: "build verifier: " + firstLine(err)}
	}
	return &signerCheck{identity: id, key: true, verifier: v, policy: []verify.PolicyOption{verify.WithKey()}}
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
