package proxy

import (
	"encoding/json"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Manifest media types pullgate serves.
const (
	mtOCIIndex      = "application/vnd.oci.image.index.v1+json"
	mtOCIManifest   = "application/vnd.oci.image.manifest.v1+json"
	mtDockerList    = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtDockerV2      = "application/vnd.docker.distribution.manifest.v2+json"
	emptyIndexBytes = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`
)

func isIndexType(mt string) bool { return mt == mtOCIIndex || mt == mtDockerList }

func isManifestType(mt string) bool {
	return mt == mtOCIIndex || mt == mtOCIManifest || mt == mtDockerList || mt == mtDockerV2
}

// descriptor is the part of an OCI descriptor pullgate reads.
type descriptor struct {
	MediaType    string        `json:"mediaType"`
	Digest       digest.Digest `json:"digest"`
	Size         int64         `json:"size"`
	ArtifactType string        `json:"artifactType,omitempty"`
}

// manifestDoc is the part of an image manifest or index pullgate reads.
// It is only ever used to read: served bytes are never re-marshalled.
type manifestDoc struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        *descriptor  `json:"config"`
	Layers        []descriptor `json:"layers"`
	Manifests     []descriptor `json:"manifests"`
	Subject       *descriptor  `json:"subject"`
}

// parseManifest parses body and settles its media type from the body's
// mediaType field and the upstream Content-Type (they must agree when
// both are present), inferring it from the shape as a last resort.
func parseManifest(body []byte, contentType string) (*manifestDoc, string, error) {
	var m manifestDoc
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, "", newError("MANIFEST_INVALID", "upstream served a manifest that is not valid JSON")
	}
	if m.SchemaVersion != 2 {
		return nil, "", newError("MANIFEST_INVALID", "upstream served a manifest with schemaVersion %d; only schema 2 is supported", m.SchemaVersion)
	}
	mt := m.MediaType
	switch {
	case mt != "" && contentType != "" && isManifestType(contentType) && mt != contentType:
		return nil, "", newError("MANIFEST_INVALID", "upstream Content-Type %q disagrees with the manifest's mediaType %q", contentType, mt)
	case mt == "" && isManifestType(contentType):
		mt = contentType
	case mt == "" && m.Manifests != nil:
		mt = mtOCIIndex
	case mt == "" && m.Config != nil:
		mt = mtOCIManifest
	}
	if !isManifestType(mt) {
		return nil, "", newError("MANIFEST_INVALID", "upstream served unsupported manifest media type %q", clip(mt))
	}
	if isIndexType(mt) && (m.Config != nil || m.Layers != nil) || !isIndexType(mt) && (m.Config == nil || m.Manifests != nil) {
		return nil, "", newError("MANIFEST_INVALID", "manifest shape does not match its media type %q", mt)
	}
	for _, d := range append(append([]descriptor{}, m.Layers...), m.Manifests...) {
		if d.Digest.Validate() != nil {
			return nil, "", newError("MANIFEST_INVALID", "manifest references an invalid digest")
		}
	}
	if m.Config != nil && m.Config.Digest.Validate() != nil {
		return nil, "", newError("MANIFEST_INVALID", "manifest references an invalid config digest")
	}
	m.intern()
	return &m, mt, nil
}

// commonMediaTypes are the descriptor media types most manifests use,
// each mapped to itself (see intern).
var commonMediaTypes = func() map[string]string {
	m := map[string]string{}
	for _, mt := range []string{
		mtOCIIndex, mtOCIManifest, mtDockerList, mtDockerV2,
		"application/vnd.oci.image.config.v1+json",
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.oci.empty.v1+json",
		"application/vnd.docker.container.image.v1+json",
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.dev.cosign.simplesigning.v1+json",
	} {
		m[mt] = mt
	}
	return m
}()

// intern makes the document's common media types share one string each,
// so that a cached manifest holds only its digests (and its bytes).
func (m *manifestDoc) intern() {
	in := func(d *descriptor) {
		if c, ok := commonMediaTypes[d.MediaType]; ok {
			d.MediaType = c
		}
	}
	if c, ok := commonMediaTypes[m.MediaType]; ok {
		m.MediaType = c
	}
	for _, d := range []*descriptor{m.Config, m.Subject} {
		if d != nil {
			in(d)
		}
	}
	for i := range m.Layers {
		in(&m.Layers[i])
	}
	for i := range m.Manifests {
		in(&m.Manifests[i])
	}
}

// memory estimates the bytes a cached manifest holds: its body, the
// parsed document and, per descriptor, the struct and its digest string.
func (f *fetched) memory() int64 {
	n := len(f.doc.Layers) + len(f.doc.Manifests) + 2
	return int64(cap(f.body)) + 256 + int64(n)*(64+80)
}

// signatureLayerTypes are the layer media types of signature material:
// none of them can be unpacked into a container filesystem.
var signatureLayerTypes = []string{
	"application/vnd.dev.sigstore.bundle", // prefix: every bundle version
	"application/vnd.dev.cosign.simplesigning.v1+json",
	"application/vnd.dsse.envelope.v1+json",
	"application/vnd.in-toto+json",
}

func isSignatureLayer(mt string) bool {
	for _, p := range signatureLayerTypes {
		if strings.HasPrefix(mt, p) {
			return true
		}
	}
	return false
}

// sigTagPattern matches the tags cosign stores signature material under:
// sha256-<hex> (referrers tag schema) and sha256-<hex>.sig / .att.
var sigTagPattern = regexp.MustCompile(`^sha256-([a-f0-9]{64})(\.sig|\.att)?$`)

// signatureSubject reports whether the manifest is signature material and
// returns the digest of the image it is about:
//   - an image manifest whose layers are all signature layers, with a
//     subject, or fetched through a sha256-<hex>[.sig|.att] tag (a subject
//     and a tag that disagree disqualify it);
//   - the referrers-tag index sha256-<hex> (an index fetched through that
//     exact tag). Its children are never covered by it: each is checked on
//     its own when requested.
func signatureSubject(ref reference, m *manifestDoc, mt string) (digest.Digest, bool) {
	var fromTag digest.Digest
	var suffix string
	if sm := sigTagPattern.FindStringSubmatch(ref.tag); sm != nil {
		fromTag = digest.NewDigestFromEncoded(digest.SHA256, sm[1])
		suffix = sm[2]
	}
	if isIndexType(mt) {
		return fromTag, fromTag != "" && suffix == ""
	}
	if len(m.Layers) == 0 {
		return "", false
	}
	for _, l := range m.Layers {
		if !isSignatureLayer(l.MediaType) {
			return "", false
		}
	}
	var fromSubject digest.Digest
	if m.Subject != nil {
		fromSubject = m.Subject.Digest
	}
	switch {
	case fromSubject != "" && fromTag != "" && fromSubject != fromTag:
		return "", false
	case fromSubject != "":
		// Validate first: Algorithm panics on a digest without a colon.
		ok := fromSubject.Validate() == nil && fromSubject.Algorithm() == digest.SHA256
		return fromSubject, ok
	default:
		return fromTag, fromTag != ""
	}
}
