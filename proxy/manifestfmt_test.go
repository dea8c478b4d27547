package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

var (
	d1 = digest.Digest("sha256:" + strings.Repeat("1", 64))
	d2 = digest.Digest("sha256:" + strings.Repeat("2", 64))
)

func TestParseManifest(t *testing.T) {
	t.Parallel()
	cfg := fmt.Sprintf(`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2}`, d1)
	layers := fmt.Sprintf(`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":3}]`, d2)
	children := fmt.Sprintf(`"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":4}]`, d1)
	obj := func(parts ...string) string { return "{" + strings.Join(parts, ",") + "}" }
	sv := `"schemaVersion":2`
	mt := func(s string) string { return fmt.Sprintf(`"mediaType":%q`, s) }
	tests := []struct {
		name        string
		body        string
		contentType string
		wantMT      string // "" when an error is expected
	}{
		{"oci manifest", obj(sv, mt(mtOCIManifest), cfg, layers), mtOCIManifest, mtOCIManifest},
		{"oci index", obj(sv, mt(mtOCIIndex), children), mtOCIIndex, mtOCIIndex},
		{"docker v2", obj(sv, mt(mtDockerV2), cfg, layers), mtDockerV2, mtDockerV2},
		{"docker list", obj(sv, mt(mtDockerList), children), mtDockerList, mtDockerList},
		{"no layers", obj(sv, mt(mtOCIManifest), cfg), mtOCIManifest, mtOCIManifest},
		{"empty index", obj(sv, mt(mtOCIIndex), `"manifests":[]`), mtOCIIndex, mtOCIIndex},
		{"mediaType from Content-Type", obj(sv, cfg, layers), mtDockerV2, mtDockerV2},
		{"index from Content-Type", obj(sv, children), mtOCIIndex, mtOCIIndex},
		{"body wins over other Content-Type", obj(sv, mt(mtOCIManifest), cfg), "application/json", mtOCIManifest},
		{"shape: index", obj(sv, children), "", mtOCIIndex},
		{"shape: manifest", obj(sv, cfg), "text/plain", mtOCIManifest},
		{"artifact fields ignored", obj(sv, mt(mtOCIManifest), `"artifactType":"x"`, cfg, `"subject":{"digest":"nope"}`), "", mtOCIManifest},

		{"disagreement", obj(sv, mt(mtOCIManifest), cfg), mtDockerV2, ""},
		{"index disagreement", obj(sv, mt(mtOCIIndex), children), mtDockerList, ""},
		{"not JSON", "nope", mtOCIManifest, ""},
		{"truncated", obj(sv, mt(mtOCIManifest), cfg)[:30], mtOCIManifest, ""},
		{"null", "null", mtOCIManifest, ""},
		{"array", "[]", mtOCIManifest, ""},
		{"schema 1", obj(`"schemaVersion":1`, mt(mtOCIManifest), cfg), mtOCIManifest, ""},
		{"no schema", obj(mt(mtOCIManifest), cfg), mtOCIManifest, ""},
		{"unknown type", obj(sv, mt("application/vnd.example+json"), cfg), "", ""},
		{"schema1 type", obj(sv, mt("application/vnd.docker.distribution.manifest.v1+prettyjws"), cfg), "", ""},
		{"no shape", obj(sv), "", ""},
		{"index with config", obj(sv, mt(mtOCIIndex), children, cfg), "", ""},
		{"index with layers", obj(sv, mt(mtOCIIndex), children, layers), "", ""},
		{"manifest without config", obj(sv, mt(mtOCIManifest), layers), "", ""},
		{"manifest with manifests", obj(sv, mt(mtOCIManifest), cfg, children), "", ""},
		{"bad layer digest", obj(sv, mt(mtOCIManifest), cfg, `"layers":[{"digest":"sha256:xyz"}]`), "", ""},
		{"bad child digest", obj(sv, mt(mtOCIIndex), `"manifests":[{"digest":"md5:1"}]`), "", ""},
		{"bad config digest", obj(sv, mt(mtOCIManifest), `"config":{"digest":""}`), "", ""},
		{"wrong field type", obj(sv, mt(mtOCIManifest), `"config":"x"`), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc, got, err := parseManifest([]byte(tt.body), tt.contentType)
			if tt.wantMT == "" {
				if err == nil {
					t.Fatalf("parseManifest(%s, %q) = %q, want an error", tt.body, tt.contentType, got)
				}
				if code := errCode(err); code != "MANIFEST_INVALID" {
					t.Errorf("parseManifest(%s) error code %q, want MANIFEST_INVALID", tt.body, code)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseManifest(%s, %q): %v", tt.body, tt.contentType, err)
			}
			if got != tt.wantMT || doc == nil {
				t.Errorf("parseManifest(%s, %q) = %q, want %q", tt.body, tt.contentType, got, tt.wantMT)
			}
		})
	}
}

func TestSignatureSubject(t *testing.T) {
	t.Parallel()
	hex1 := d1.Encoded()
	layer := func(mt string) descriptor { return descriptor{MediaType: mt, Digest: d2} }
	sigLayers := []descriptor{layer("application/vnd.dev.cosign.simplesigning.v1+json")}
	subject := &descriptor{Digest: d1}
	cfg := &descriptor{Digest: d2}
	tests := []struct {
		name string
		tag  string
		doc  manifestDoc
		mt   string
		want digest.Digest // "" for not signature material
	}{
		{"sig tag", "sha256-" + hex1 + ".sig", manifestDoc{Config: cfg, Layers: sigLayers}, mtOCIManifest, d1},
		{"subject digest without a colon", "", manifestDoc{Config: cfg, Layers: sigLayers, Subject: &descriptor{Digest: "0"}}, mtOCIManifest, ""},
		{"subject digest of another algorithm", "", manifestDoc{Config: cfg, Layers: sigLayers, Subject: &descriptor{Digest: digest.Digest("sha512:" + strings.Repeat("0", 128))}}, mtOCIManifest, ""},
		{"att tag", "sha256-" + hex1 + ".att", manifestDoc{Config: cfg, Layers: []descriptor{layer("application/vnd.dsse.envelope.v1+json")}}, mtOCIManifest, d1},
		{"bundle referrer by digest", "", manifestDoc{Config: cfg, Layers: []descriptor{layer("application/vnd.dev.sigstore.bundle.v0.3+json")}, Subject: subject}, mtOCIManifest, d1},
		{"bundle v0.1 media type", "", manifestDoc{Config: cfg, Layers: []descriptor{layer("application/vnd.dev.sigstore.bundle+json;version=0.1")}, Subject: subject}, mtOCIManifest, d1},
		{"in-toto layer", "", manifestDoc{Config: cfg, Layers: []descriptor{layer("application/vnd.in-toto+json")}, Subject: subject}, mtOCIManifest, d1},
		{"subject and matching tag", "sha256-" + hex1 + ".sig", manifestDoc{Config: cfg, Layers: sigLayers, Subject: subject}, mtOCIManifest, d1},
		{"referrers tag index", "sha256-" + hex1, manifestDoc{}, mtOCIIndex, d1},
		{"referrers tag docker list", "sha256-" + hex1, manifestDoc{}, mtDockerList, d1},

		{"subject and other tag", "sha256-" + d2.Encoded() + ".sig", manifestDoc{Config: cfg, Layers: sigLayers, Subject: subject}, mtOCIManifest, ""},
		{"runnable layer", "sha256-" + hex1 + ".sig", manifestDoc{Config: cfg, Layers: append([]descriptor{layer("application/vnd.oci.image.layer.v1.tar+gzip")}, sigLayers...)}, mtOCIManifest, ""},
		{"runnable layer with subject", "", manifestDoc{Config: cfg, Layers: append(sigLayers, layer("application/vnd.docker.image.rootfs.diff.tar.gzip")), Subject: subject}, mtOCIManifest, ""},
		{"no layers", "sha256-" + hex1 + ".sig", manifestDoc{Config: cfg}, mtOCIManifest, ""},
		{"no subject no tag", "", manifestDoc{Config: cfg, Layers: sigLayers}, mtOCIManifest, ""},
		{"ordinary tag", "latest", manifestDoc{Config: cfg, Layers: sigLayers}, mtOCIManifest, ""},
		{"sha512 subject", "", manifestDoc{Config: cfg, Layers: sigLayers, Subject: &descriptor{Digest: digest.Digest("sha512:" + strings.Repeat("a", 128))}}, mtOCIManifest, ""},
		{"invalid subject", "", manifestDoc{Config: cfg, Layers: sigLayers, Subject: &descriptor{Digest: "sha256:xyz"}}, mtOCIManifest, ""},
		{"index under sig tag", "sha256-" + hex1 + ".sig", manifestDoc{}, mtOCIIndex, ""},
		{"index without tag", "", manifestDoc{Subject: subject}, mtOCIIndex, ""},
		{"upper hex tag", "sha256-" + strings.ToUpper(strings.Repeat("a", 64)), manifestDoc{}, mtOCIIndex, ""},
		{"short hex tag", "sha256-" + hex1[:63], manifestDoc{}, mtOCIIndex, ""},
		{"tag suffix", "sha256-" + hex1 + ".sig.bak", manifestDoc{Config: cfg, Layers: sigLayers}, mtOCIManifest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := signatureSubject(reference{tag: tt.tag}, &tt.doc, tt.mt)
			if ok != (tt.want != "") || (ok && got != tt.want) {
				t.Errorf("signatureSubject(%q, %+v) = %q, %v; want %q", tt.tag, tt.doc, got, ok, tt.want)
			}
		})
	}
}
