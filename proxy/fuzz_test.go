package proxy

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzRoute: the request parser never panics, and whatever it accepts
// satisfies the distribution-spec grammar and names a configured upstream.
func FuzzRoute(f *testing.F) {
	for _, s := range [][3]string{
		{"library/nginx", "docker.io", "latest"},
		{"nginx", "", "sha256:" + strings.Repeat("a", 64)},
		{"ghcr.io/org/app", "", "v1.2.3"},
		{"localhost:5000/a", "", "sha256-" + strings.Repeat("0", 64) + ".sig"},
		{"a/../b", "reg.test:443", "-bad"},
		{"A//b/", "[::1]:5000", "md5:x"},
		{"reg.test/", "evil.example.com", "sha512:" + strings.Repeat("b", 128)},
		{strings.Repeat("a/", 200), "REG.TEST", strings.Repeat("t", 200)},
	} {
		f.Add(s[0], s[1], s[2])
	}
	configured := configuredSet("docker.io", "reg.test", "localhost:5000", "ghcr.io", "[::1]:5000")
	f.Fuzz(func(t *testing.T, name, ns, ref string) {
		for _, def := range []string{"", "docker.io"} {
			tg, err := route(name, ns, def, configured)
			if err != nil {
				if errCode(err) != "NAME_INVALID" && errCode(err) != "NAME_UNKNOWN" {
					t.Fatalf("route(%q, %q): error %v", name, ns, err)
				}
				continue
			}
			if !configured(tg.registry) {
				t.Fatalf("route(%q, %q) = registry %q, not configured", name, ns, tg.registry)
			}
			if !repoPattern.MatchString(tg.repo) {
				t.Fatalf("route(%q, %q) = repo %q, not a valid name", name, ns, tg.repo)
			}
			if tg.image != tg.registry+"/"+tg.repo || len(tg.image) > maxNameLength {
				t.Fatalf("route(%q, %q) = image %q", name, ns, tg.image)
			}
			if tg.registry == "docker.io" && !strings.Contains(tg.repo, "/") {
				t.Fatalf("route(%q, %q) = docker.io repo %q without library/", name, ns, tg.repo)
			}
			if tg.ns != ns {
				t.Fatalf("route(%q, %q) = ns %q", name, ns, tg.ns)
			}
		}

		r, err := parseReference(ref)
		switch {
		case err != nil:
			if c := errCode(err); c != "TAG_INVALID" && c != "DIGEST_INVALID" {
				t.Fatalf("parseReference(%q): %v", ref, err)
			}
		case r.digest != "":
			if r.tag != "" || r.digest.Algorithm() != digest.SHA256 || r.digest.Validate() != nil || r.String() != ref {
				t.Fatalf("parseReference(%q) = %+v", ref, r)
			}
		default:
			if !tagPattern.MatchString(r.tag) || len(r.tag) > 128 || r.String() != ref {
				t.Fatalf("parseReference(%q) = %+v", ref, r)
			}
		}
		if d, err := parseDigest(ref); err == nil && (d.Validate() != nil || d.Algorithm() != digest.SHA256 || len(d.Encoded()) != 64) {
			t.Fatalf("parseDigest(%q) = %q", ref, d)
		}
		if len(clip(ref)) > 128+len("…") {
			t.Fatalf("clip(%q) too long", ref)
		}
	})
}

// FuzzParseManifest: manifest parsing and signature classification
// never panic, and what parses has a consistent type and shape.
func FuzzParseManifest(f *testing.F) {
	hex := strings.Repeat("1", 64)
	for _, s := range []struct{ body, ct, tag string }{
		{`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:` + hex + `"},"layers":[]}`, "", "v1"},
		{`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:` + hex + `"}]}`, mtOCIIndex, "sha256-" + hex},
		{`{"schemaVersion":2,"config":{"digest":"sha256:` + hex + `"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"sha256:` + hex + `"}]}`, mtOCIManifest, "sha256-" + hex + ".sig"},
		{`{"schemaVersion":2,"config":{"digest":"sha256:` + hex + `"},"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","digest":"sha256:` + hex + `"}],"subject":{"digest":"sha256:` + hex + `"}}`, "", ""},
		{`null`, mtDockerV2, ""},
		{`{"schemaVersion":2}`, "application/json", ""},
	} {
		f.Add([]byte(s.body), s.ct, s.tag)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType, tag string) {
		doc, mt, err := parseManifest(body, contentType)
		if err != nil {
			if errCode(err) != "MANIFEST_INVALID" {
				t.Fatalf("parseManifest: error %v", err)
			}
			return
		}
		if doc == nil || !isManifestType(mt) {
			t.Fatalf("parseManifest(%q, %q) = %v, %q", body, contentType, doc, mt)
		}
		if isIndexType(mt) != (doc.Config == nil) {
			t.Fatalf("parseManifest(%q): type %q with config %v", body, mt, doc.Config)
		}
		for _, d := range append(append([]descriptor{}, doc.Layers...), doc.Manifests...) {
			if d.Digest.Validate() != nil {
				t.Fatalf("parseManifest(%q) accepted digest %q", body, d.Digest)
			}
		}
		subject, ok := signatureSubject(reference{tag: tag}, doc, mt)
		if !ok {
			return
		}
		if subject.Algorithm() != digest.SHA256 || subject.Validate() != nil {
			t.Fatalf("signatureSubject(%q, %q) = %q", tag, body, subject)
		}
		if !isIndexType(mt) {
			if len(doc.Layers) == 0 {
				t.Fatalf("signatureSubject(%q) accepted a manifest without layers", body)
			}
			for _, l := range doc.Layers {
				if !isSignatureLayer(l.MediaType) {
					t.Fatalf("signatureSubject(%q) accepted layer type %q", body, l.MediaType)
				}
			}
		} else if tag != "sha256-"+subject.Encoded() {
			t.Fatalf("signatureSubject: index under tag %q claims subject %s", tag, subject)
		}
	})
}
