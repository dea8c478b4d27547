package verifiertest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	_ "crypto/sha512" // SHA-384 and SHA-512 for P-384 and P-521 keys
	"crypto/x509"
	"encoding/base64"
	"fmt"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/pullgate/pullgate/policy"
)

// Key algorithms [GenerateKey] accepts.
const (
	ECDSAP256 = "ecdsa-p256"
	ECDSAP384 = "ecdsa-p384"
	RSA2048   = "rsa-2048"
	Ed25519   = "ed25519"
)

// Key is a signing key pair, as a cosign user holds it.
type Key struct {
	// Alg is one of [ECDSAP256], [ECDSAP384], [RSA2048], [Ed25519].
	Alg string
	// Signer is the private key.
	Signer crypto.Signer
	// PublicPEM is the PKIX public key in PEM, as `cosign public-key`
	// prints it.
	PublicPEM []byte
}

// GenerateKey generates a key of alg: "ecdsa-p256" (also for ""),
// "ecdsa-p384", "rsa-2048" or "ed25519".
func GenerateKey(alg string) (*Key, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case "", ECDSAP256:
		alg = ECDSAP256
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case Ed25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("unknown key algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("marshal %s public key: %w", alg, err)
	}
	return &Key{Alg: alg, Signer: priv, PublicPEM: pemBytes}, nil
}

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.Signer.Public() }

// PolicySigner returns a key signer named name for this key, as
// policy.Parse would build it from the key's PEM (TLog optional).
func (k *Key) PolicySigner(name string) *policy.Signer {
	return &policy.Signer{
		Name: name,
		Key:  &policy.Key{PEM: k.PublicPEM, PublicKey: k.Public()},
		TLog: policy.TLogOptional,
	}
}

// LegacySignature signs a simple-signing payload as cosign v2 does
// for .sig images: ECDSA and RSA (PKCS #1 v1.5) over SHA-256 of the
// payload, whatever the curve, and pure Ed25519 over the payload itself.
func (k *Key) LegacySignature(payload []byte) ([]byte, error) {
	if _, ok := k.Signer.(ed25519.PrivateKey); ok {
		return k.Signer.Sign(rand.Reader, payload, crypto.Hash(0))
	}
	sum := sha256.Sum256(payload)
	return k.Signer.Sign(rand.Reader, sum[:], crypto.SHA256)
}

// DSSEBundle signs an in-toto statement as cosign v3 does with a key:
// sigstore-go sign.Bundle over a DSSE envelope (payload type
// application/vnd.in-toto+json) with this key and sigstore-go's default
// algorithm for it (ECDSA P-384 with SHA-384, RSA PKCS #1 v1.5 with
// SHA-256, pure Ed25519). The bundle is v0.3 with
// verificationMaterial.publicKey.hint = base64(sha256(PKIX key)), no
// transparency log entry and no timestamp. It returns the bundle JSON.
func (k *Key) DSSEBundle(ctx context.Context, statement []byte) ([]byte, error) {
	kp, err := newKeypair(k)
	if err != nil {
		return nil, err
	}
	pb, err := sign.Bundle(&sign.DSSEData{Data: statement, PayloadType: "application/vnd.in-toto+json"}, kp, sign.BundleOptions{Context: ctx})
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	return protojson.Marshal(pb)
}

// keypair is a sigstore-go sign.Keypair over an existing crypto.Signer
// (sigstore-go only ships one that generates its own key).
type keypair struct {
	key     *Key
	details signature.AlgorithmDetails
	hint    []byte
}

var _ sign.Keypair = (*keypair)(nil)

func newKeypair(k *Key) (*keypair, error) {
	details, err := signature.GetDefaultAlgorithmDetails(k.Public())
	if err != nil {
		return nil, fmt.Errorf("key algorithm: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return &keypair{key: k, details: details, hint: []byte(base64.StdEncoding.EncodeToString(sum[:]))}, nil
}

func (kp *keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return kp.details.GetProtoHashType()
}

func (kp *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return kp.details.GetSignatureAlgorithm()
}

func (kp *keypair) GetHint() []byte { return kp.hint }

func (kp *keypair) GetKeyAlgorithm() string {
	switch kp.details.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.RSA:
		return "RSA"
	case signature.ED25519:
		return "ED25519"
	}
	return ""
}

func (kp *keypair) GetPublicKey() crypto.PublicKey { return kp.key.Public() }

func (kp *keypair) GetPublicKeyPem() (string, error) { return string(kp.key.PublicPEM), nil }

// SignData signs data, hashing it first unless the algorithm is pure
// Ed25519. It returns the signature and what was signed.
func (kp *keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := kp.details.GetHashType()
	toSign := data
	if hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		toSign = h.Sum(nil)
	}
	sig, err := kp.key.Signer.Sign(rand.Reader, toSign, hf)
	if err != nil {
		return nil, nil, err
	}
	return sig, toSign, nil
}
