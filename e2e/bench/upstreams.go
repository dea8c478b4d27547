package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// counter is a loopback reverse proxy in front of the upstream that
// counts requests by method and path: exact upstream request counts.
type counter struct {
	srv    *http.Server
	addr   string
	mu     sync.Mutex
	counts map[string]int
}

func newCounter(upstream string) (*counter, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256, DisableCompression: true}
	c := &counter{addr: ln.Addr().String(), counts: map[string]int{}}
	c.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.counts[r.Method+" "+r.URL.Path]++
		c.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = map[string]int{}
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// synthetic is an in-process upstream (with the OCI 1.1 referrers API)
// of n signed images in repository "many": image i's manifest (a config
// and three layers, none of which is ever fetched) and its cosign v2
// legacy signature (sha256-<hex>.sig, a simple-signing payload signed
// with an ECDSA P-256 key). Requests are answered from indexes;
// signatures are made on demand.
type synthetic struct {
	srv       *http.Server
	addr      string
	key       *ecdsa.PrivateKey
	pubPEM    []byte
	digests   []digest.Digest // manifest digest of image i
	byDigest  map[digest.Digest]int32
	byPayload map[digest.Digest]int32
	sigConfig []byte
}

const (
	syntheticRepo     = "many"
	syntheticRegistry = "many.local"
)

func newSynthetic(n int) (*synthetic, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	s := &synthetic{
		key:       key,
		pubPEM:    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		digests:   make([]digest.Digest, n),
		byDigest:  make(map[digest.Digest]int32, n),
		byPayload: make(map[digest.Digest]int32, n),
		sigConfig: []byte(`{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}`),
	}
	for i := range n {
		d := digest.FromBytes(s.manifest(i))
		s.digests[i] = d
		s.byDigest[d] = int32(i)
		s.byPayload[digest.FromBytes(s.payload(d))] = int32(i)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: s}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *synthetic) manifest(i int) []byte {
	d := func(what string) digest.Digest { return digest.FromString(fmt.Sprintf("many-%d-%s", i, what)) }
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":1024},"layers":[`+
		`{"mediaType":"%s","digest":"%s","size":31457280},{"mediaType":"%s","digest":"%s","size":1048576},{"mediaType":"%s","digest":"%s","size":4096}]}`,
		mtManifest, mtConfig, d("config"), mtLayer, d("l0"), mtLayer, d("l1"), mtLayer, d("l2"))
}

func (s *synthetic) payload(md digest.Digest) []byte {
	return fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":"%s/%s"},"image":{"docker-manifest-digest":"%s"},"type":"cosign container image signature"},"optional":null}`,
		syntheticRegistry, syntheticRepo, md)
}

func (s *synthetic) sigManifest(md digest.Digest) ([]byte, error) {
	p := s.payload(md)
	sum := sha256.Sum256(p)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, sum[:])
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","size":%d,"digest":"%s"},"layers":[`+
		`{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":%d,"digest":"%s","annotations":{"dev.cosignproject.cosign/signature":"%s"}}]}`,
		mtManifest, mtConfig, len(s.sigConfig), digest.FromBytes(s.sigConfig), len(p), digest.FromBytes(p), base64.StdEncoding.EncodeToString(sig)), nil
}

func (s *synthetic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	notFound := func(code string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"errors":[{"code":"%s","message":"not found"}]}`, code)
	}
	send := func(body []byte, mt string) {
		w.Header().Set("Content-Type", mt)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	}
	p := r.URL.Path
	if p == "/v2/" {
		send([]byte("{}"), "application/json")
		return
	}
	rest, ok := strings.CutPrefix(p, "/v2/"+syntheticRepo+"/")
	if !ok {
		notFound("NAME_UNKNOWN")
		return
	}
	kind, ref, _ := strings.Cut(rest, "/")
	switch kind {
	case "manifests":
		if d, err := digest.Parse(ref); err == nil {
			if i, ok := s.byDigest[d]; ok {
				send(s.manifest(int(i)), mtManifest)
				return
			}
		}
		if hex, ok := strings.CutSuffix(strings.TrimPrefix(ref, "sha256-"), ".sig"); ok {
			md := digest.NewDigestFromEncoded(digest.SHA256, hex)
			if _, ok := s.byDigest[md]; ok {
				m, err := s.sigManifest(md)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				send(m, mtManifest)
				return
			}
		}
		notFound("MANIFEST_UNKNOWN")
	case "blobs":
		d, err := digest.Parse(ref)
		if err != nil {
			notFound("BLOB_UNKNOWN")
			return
		}
		if d == digest.FromBytes(s.sigConfig) {
			send(s.sigConfig, "application/octet-stream")
			return
		}
		if i, ok := s.byPayload[d]; ok {
			send(s.payload(s.digests[i]), "application/octet-stream")
			return
		}
		notFound("BLOB_UNKNOWN")
	case "referrers": // an OCI 1.1 registry: the signature is a .sig tag
		send([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), "application/vnd.oci.image.index.v1+json")
	default:
		http.NotFound(w, r)
	}
}
