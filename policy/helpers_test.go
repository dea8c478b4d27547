package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// testFile is the configuration file name most tests use.
const testFile = "/etc/pullgate/pullgate.yaml"

// fakeFiles is a WithReadFile function over a map of absolute paths.
func fakeFiles(files map[string][]byte) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if b, ok := files[p]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
}

// parseString parses yaml as testFile with files as the file system.
func parseString(tb testing.TB, yaml string, files map[string][]byte) (*Config, error) {
	tb.Helper()
	return Parse(testFile, strings.NewReader(yaml), WithReadFile(fakeFiles(files)))
}

// mustParse parses yaml and fails the test on error.
func mustParse(tb testing.TB, yaml string, files map[string][]byte) *Config {
	tb.Helper()
	cfg, err := parseString(tb, yaml, files)
	if err != nil {
		tb.Fatalf("Parse() error:\n%v", err)
	}
	return cfg
}

// pemPKIX encodes pub as a PEM "PUBLIC KEY".
func pemPKIX(tb testing.TB, pub crypto.PublicKey) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatalf("MarshalPKIXPublicKey: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Keys are generated once per test binary: RSA generation is slow.
var (
	keyP256 = sync.OnceValue(func() *ecdsa.PrivateKey { return mustECDSA(elliptic.P256()) })
	keyP384 = sync.OnceValue(func() *ecdsa.PrivateKey { return mustECDSA(elliptic.P384()) })
	keyP521 = sync.OnceValue(func() *ecdsa.PrivateKey { return mustECDSA(elliptic.P521()) })
	keyP224 = sync.OnceValue(func() *ecdsa.PrivateKey { return mustECDSA(elliptic.P224()) })
	key2048 = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(2048) })
	key1024 = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(1024) })
	keyEd   = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustECDSA(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

// indent prefixes every line of s with prefix, for block scalars.
func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix)
}

// regexpMatch reports whether the regular expression re matches s.
func regexpMatch(tb testing.TB, re, s string) bool {
	tb.Helper()
	return regexp.MustCompile(re).MatchString(s)
}
