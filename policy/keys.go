package policy

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// minRSABits is the smallest RSA modulus accepted for a key signer.
const minRSABits = 2048

// parsePublicKey parses a PEM public key: a "PUBLIC KEY" (PKIX) block or
// a PKCS#1 "RSA PUBLIC KEY" block, holding an ECDSA P-256, P-384 or P-521,
// RSA (at least 2048 bits) or Ed25519 key.
func parsePublicKey(data []byte) (crypto.PublicKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New(`no PEM block found: want a "PUBLIC KEY" block such as cosign.pub`)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("more than one PEM block: give exactly one public key")
	}
	var (
		pub crypto.PublicKey
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("PEM block %q is a private key: give the public key (cosign public-key)", block.Type)
		}
		return nil, fmt.Errorf(`PEM block %q is not a public key: want "PUBLIC KEY" or "RSA PUBLIC KEY"`, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return k, nil
		}
		return nil, fmt.Errorf("ECDSA curve %s is not supported: use P-256, P-384 or P-521", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits: want at least %d", n, minRSABits)
		}
		return k, nil
	case ed25519.PublicKey:
		return k, nil
	default:
		return nil, fmt.Errorf("key type %T is not supported: use ECDSA, RSA or Ed25519", pub)
	}
}
