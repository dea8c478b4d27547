package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
)

const (
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtConfig   = "application/vnd.oci.image.config.v1+json"
	mtLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// image is an image pushed to the upstream registry.
type image struct {
	repo, tag string
	digest    digest.Digest
	config    digest.Digest
	layers    []digest.Digest
	sizes     []int64 // of layers
}

// noise is size bytes that do not compress (nothing on the path
// compresses anyway): a random block, salted per block and per seed.
type noise struct {
	block []byte
	seed  uint64
	off   int64
	size  int64
}

var noiseBlock = func() []byte {
	b := make([]byte, 4<<20)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}()

func newNoise(seed uint64, size int64) *noise {
	return &noise{block: noiseBlock, seed: seed, size: size}
}

func (n *noise) Read(p []byte) (int, error) {
	if n.off >= n.size {
		return 0, io.EOF
	}
	bs := int64(len(n.block))
	blk, in := n.off/bs, n.off%bs
	m := copy(p, n.block[in:min(bs, in+n.size-n.off)])
	// Salt the first 16 bytes of every block.
	if in < 16 {
		var salt [16]byte
		binary.LittleEndian.PutUint64(salt[:8], n.seed)
		binary.LittleEndian.PutUint64(salt[8:], uint64(blk))
		for i := 0; i < m && in+int64(i) < 16; i++ {
			p[i] ^= salt[in+int64(i)]
		}
	}
	n.off += int64(m)
	return m, nil
}

// pusher pushes to a registry with the distribution API (a streamed
// PATCH upload, so no blob is ever held in memory or on disk here).
type pusher struct {
	base   string // http://127.0.0.1:port
	client *http.Client
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (p *pusher) do(ctx context.Context, method, u string, body io.Reader, hdr map[string]string, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %d, want %d: %s", method, u, resp.StatusCode, want, b)
	}
	return resp, nil
}

func (p *pusher) location(resp *http.Response) (string, error) {
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("upload without Location: %w", err)
	}
	return loc.String(), nil
}

// blob uploads r and returns its digest and size.
func (p *pusher) blob(ctx context.Context, repo string, r io.Reader) (digest.Digest, int64, error) {
	resp, err := p.do(ctx, http.MethodPost, p.base+"/v2/"+repo+"/blobs/uploads/", nil, nil, http.StatusAccepted)
	if err != nil {
		return "", 0, err
	}
	resp.Body.Close()
	loc, err := p.location(resp)
	if err != nil {
		return "", 0, err
	}
	hr := &hashingReader{r: r, h: digest.SHA256.Hash()}
	resp, err = p.do(ctx, http.MethodPatch, loc, hr, map[string]string{"Content-Type": "application/octet-stream"}, http.StatusAccepted)
	if err != nil {
		return "", 0, err
	}
	resp.Body.Close()
	if loc, err = p.location(resp); err != nil {
		return "", 0, err
	}
	dgst := digest.NewDigest(digest.SHA256, hr.h)
	u, err := url.Parse(loc)
	if err != nil {
		return "", 0, err
	}
	q := u.Query()
	q.Set("digest", dgst.String())
	u.RawQuery = q.Encode()
	resp, err = p.do(ctx, http.MethodPut, u.String(), nil, nil, http.StatusCreated)
	if err != nil {
		return "", 0, err
	}
	resp.Body.Close()
	return dgst, hr.n, nil
}

func (p *pusher) manifest(ctx context.Context, repo, ref string, body []byte) error {
	resp, err := p.do(ctx, http.MethodPut, p.base+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body),
		map[string]string{"Content-Type": mtManifest}, http.StatusCreated)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

type descriptor struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// pushImage pushes an image of one layer per size (random bytes) to
// repo:tag.
func (p *pusher) pushImage(ctx context.Context, repo, tag string, seed uint64, sizes ...int64) (*image, error) {
	img := &image{repo: repo, tag: tag, sizes: sizes}
	var layers []descriptor
	for i, size := range sizes {
		d, n, err := p.blob(ctx, repo, newNoise(seed*1000+uint64(i), size))
		if err != nil {
			return nil, err
		}
		img.layers = append(img.layers, d)
		layers = append(layers, descriptor{MediaType: mtLayer, Digest: d, Size: n})
	}
	diffIDs := make([]string, len(layers))
	for i, l := range layers {
		diffIDs[i] = l.Digest.String()
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
		"config": map[string]any{"Labels": map[string]string{"bench.seed": fmt.Sprint(seed)}},
	})
	if err != nil {
		return nil, err
	}
	cd, cn, err := p.blob(ctx, repo, bytes.NewReader(cfg))
	if err != nil {
		return nil, err
	}
	img.config = cd
	m, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": mtManifest,
		"config": descriptor{MediaType: mtConfig, Digest: cd, Size: cn},
		"layers": layers,
	})
	if err != nil {
		return nil, err
	}
	if err := p.manifest(ctx, repo, tag, m); err != nil {
		return nil, err
	}
	img.digest = digest.FromBytes(m)
	return img, nil
}

// client is an OCI pull client for measurements: HTTP/1.1 keep-alive,
// no compression, no proxy.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}}
}

// containerdAccept is the Accept header containerd resolves with.
const containerdAccept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*"

// pull pulls an image as containerd does: HEAD the tag, GET the
// manifest by digest, GET the config and each layer; every digest is
// checked. base is http://host:port, query e.g. "?ns=counted.local".
func pull(ctx context.Context, c *http.Client, base, repo, tag, query string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, base+"/v2/"+repo+"/manifests/"+tag+query, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", containerdAccept)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HEAD %s:%s: %d", repo, tag, resp.StatusCode)
	}
	md, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return fmt.Errorf("HEAD %s:%s: %w", repo, tag, err)
	}
	body, err := get(ctx, c, base+"/v2/"+repo+"/manifests/"+md.String()+query, md)
	if err != nil {
		return err
	}
	var m struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	for _, d := range append([]descriptor{m.Config}, m.Layers...) {
		if _, err := get(ctx, c, base+"/v2/"+repo+"/blobs/"+d.Digest.String()+query, d.Digest); err != nil {
			return err
		}
	}
	return nil
}

// get GETs u and checks the body hashes to want; manifests are returned,
// blobs discarded.
func get(ctx context.Context, c *http.Client, u string, want digest.Digest) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", mtManifest+", */*")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	v := want.Verifier()
	var keep bytes.Buffer
	w := io.Writer(v)
	if strings.Contains(u, "/manifests/") {
		w = io.MultiWriter(v, &keep)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if !v.Verified() {
		return nil, errors.New("GET " + u + ": body does not match its digest")
	}
	return keep.Bytes(), nil
}
