package verifiertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// Media types, annotations and predicate types cosign writes. They are
// spelled out here independently of package verifier, so a typo on
// either side shows up as a failing test.
const (
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	MediaTypeBundleV03     = "application/vnd.dev.sigstore.bundle.v0.3+json"
	MediaTypeEmpty         = "application/vnd.oci.empty.v1+json"

	AnnotationSignature           = "dev.cosignproject.cosign/signature"
	AnnotationBundleContent       = "dev.sigstore.bundle.content"
	AnnotationBundlePredicateType = "dev.sigstore.bundle.predicateType"
	AnnotationCreated             = "org.opencontainers.image.created"

	CosignSignPredicateType        = "https://sigstore.dev/cosign/sign/v1"
	SLSAProvenanceV02PredicateType = "https://slsa.dev/provenance/v0.2"
)

const (
	simpleSigningType = "cosign container image signature"
	bundleContentDSSE = "dsse-envelope"
	inTotoStatementV1 = "https://in-toto.io/Statement/v1"
)

// SigTag returns the legacy signature tag for dgst in repo:
// repo:sha256-<hex>.sig.
func SigTag(repo name.Repository, dgst v1.Hash) name.Tag {
	return repo.Tag(dgst.Algorithm + "-" + dgst.Hex + ".sig")
}

// ReferrersTag returns the referrers tag schema's tag for dgst in repo:
// repo:sha256-<hex>.
func ReferrersTag(repo name.Repository, dgst v1.Hash) name.Tag {
	return repo.Tag(dgst.Algorithm + "-" + dgst.Hex)
}

// SimpleSigningPayload returns the payload cosign v2 signs for dgst,
// byte for byte: docker-reference is repo.Name() (ggcr's name, so
// index.docker.io/… for Docker Hub) and optional is null.
func SimpleSigningPayload(repo name.Repository, dgst v1.Hash) []byte {
	var p struct {
		Critical struct {
			Identity struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
		Optional map[string]any `json:"optional"`
	}
	p.Critical.Identity.DockerReference = repo.Name()
	p.Critical.Image.DockerManifestDigest = dgst.String()
	p.Critical.Type = simpleSigningType
	b, err := json.Marshal(p)
	if err != nil {
		panic(err) // cannot happen: fixed types
	}
	return b
}

// SignLegacy signs dgst with key as cosign v2 does by default: it writes
// (or extends) repo:sha256-<hex>.sig, an OCI image manifest with config
// application/vnd.oci.image.config.v1+json and one simple-signing layer
// per signature, the new one appended, carrying the base64 signature in
// the dev.cosignproject.cosign/signature annotation. The payload names
// dgst, with docker-reference repo.
func SignLegacy(ctx context.Context, repo name.Repository, dgst v1.Hash, key *Key, opts ...remote.Option) error {
	return SignLegacyPayload(ctx, repo, dgst, SimpleSigningPayload(repo, dgst), key, opts...)
}

// SignLegacyPayload signs an arbitrary payload with key and appends it
// to repo:<tagDigest>.sig. With a payload naming another digest it
// reproduces a signature copied from another image.
func SignLegacyPayload(ctx context.Context, repo name.Repository, tagDigest v1.Hash, payload []byte, key *Key, opts ...remote.Option) error {
	sig, err := key.LegacySignature(payload)
	if err != nil {
		return fmt.Errorf("sign payload: %w", err)
	}
	return WriteLegacyLayer(ctx, repo, tagDigest, payload,
		map[string]string{AnnotationSignature: base64.StdEncoding.EncodeToString(sig)}, opts...)
}

// WriteLegacyLayer appends one simple-signing layer with exactly this
// payload and these layer annotations to repo:<tagDigest>.sig, creating
// the image when the tag does not exist. It signs nothing: it is the
// knob for malformed or hand-made signatures.
func WriteLegacyLayer(ctx context.Context, repo name.Repository, tagDigest v1.Hash, payload []byte, annotations map[string]string, opts ...remote.Option) error {
	return appendLayer(ctx, SigTag(repo, tagDigest), payload, MediaTypeSimpleSigning, annotations, opts...)
}

// Statement returns the in-toto Statement v1 cosign v3 signs for
// subject, serialised as cosign does (protojson): the subject has the
// digest only (no name) and empty annotations; predicate nil means {}.
func Statement(subject v1.Hash, predicateType string, predicate map[string]any) ([]byte, error) {
	pred, err := structpb.NewStruct(predicate)
	if err != nil {
		return nil, fmt.Errorf("predicate: %w", err)
	}
	annotations, err := structpb.NewStruct(nil)
	if err != nil {
		return nil, err
	}
	return protojson.Marshal(&intoto.Statement{
		Type: inTotoStatementV1,
		Subject: []*intoto.ResourceDescriptor{{
			Digest:      map[string]string{subject.Algorithm: subject.Hex},
			Annotations: annotations,
		}},
		PredicateType: predicateType,
		Predicate:     pred,
	})
}

// SignBundle signs subject with key as cosign v3 does by default (and
// cosign v2 with --new-bundle-format): a Sigstore bundle v0.3 holding a
// DSSE in-toto statement with predicate type
// https://sigstore.dev/cosign/sign/v1, stored as an OCI 1.1 referrer of
// subject (see [WriteBundleReferrer]).
func SignBundle(ctx context.Context, repo name.Repository, subject v1.Descriptor, key *Key, opts ...remote.Option) error {
	return SignBundleWithPredicate(ctx, repo, subject, key, CosignSignPredicateType, nil, opts...)
}

// SignBundleWithPredicate is [SignBundle] with another predicate type and
// predicate: what `cosign attest` writes. Such a bundle is an
// attestation, not a signature.
func SignBundleWithPredicate(ctx context.Context, repo name.Repository, subject v1.Descriptor, key *Key, predicateType string, predicate map[string]any, opts ...remote.Option) error {
	stmt, err := Statement(subject.Digest, predicateType, predicate)
	if err != nil {
		return err
	}
	return SignBundleStatement(ctx, repo, subject, key, stmt, opts...)
}

// SignBundleStatement signs an arbitrary in-toto statement with key and
// stores the bundle as a referrer of subject. With a statement about
// another digest it reproduces a bundle copied from another image.
func SignBundleStatement(ctx context.Context, repo name.Repository, subject v1.Descriptor, key *Key, statement []byte, opts ...remote.Option) error {
	b, err := key.DSSEBundle(ctx, statement)
	if err != nil {
		return err
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	_ = json.Unmarshal(statement, &st) // only for the annotation; may be anything
	return WriteBundleReferrer(ctx, repo, subject, b, st.PredicateType, opts...)
}

// WriteBundleReferrer stores bundleJSON as cosign v3's
// WriteAttestationNewBundleFormat does: an OCI image manifest with
// artifactType application/vnd.dev.sigstore.bundle.v0.3+json, the empty
// config (application/vnd.oci.empty.v1+json, blob "{}"), one layer holding
// the bundle, subject = subject, and the annotations
// dev.sigstore.bundle.content=dsse-envelope,
// dev.sigstore.bundle.predicateType=predicateType and
// org.opencontainers.image.created. The manifest is pushed by digest with
// remote.Put, so ggcr maintains the sha256-<hex> referrers tag when the
// registry has no referrers API. It signs nothing.
func WriteBundleReferrer(ctx context.Context, repo name.Repository, subject v1.Descriptor, bundleJSON []byte, predicateType string, opts ...remote.Option) error {
	ropts := append([]remote.Option{remote.WithContext(ctx)}, opts...)
	config := static.NewLayer([]byte("{}"), MediaTypeEmpty)
	layer := static.NewLayer(bundleJSON, MediaTypeBundleV03)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repo, l, ropts...); err != nil {
			return fmt.Errorf("upload blob: %w", err)
		}
	}
	configDesc, err := partial(config, MediaTypeEmpty)
	if err != nil {
		return err
	}
	configDesc.ArtifactType = MediaTypeBundleV03 // cosign writes this non-standard field too
	layerDesc, err := partial(layer, MediaTypeBundleV03)
	if err != nil {
		return err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  MediaTypeBundleV03,
		Config:        configDesc,
		Layers:        []v1.Descriptor{layerDesc},
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: map[string]string{
			AnnotationBundleContent:       bundleContentDSSE,
			AnnotationBundlePredicateType: predicateType,
			AnnotationCreated:             time.Now().UTC().Format(time.RFC3339),
		},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	dgst, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	ref := repo.Digest(dgst.String())
	if err := remote.Put(ref, rawManifest{raw: raw, mediaType: types.OCIManifestSchema1}, ropts...); err != nil {
		return fmt.Errorf("put referrer %s: %w", ref, err)
	}
	return nil
}

func partial(l v1.Layer, mt types.MediaType) (v1.Descriptor, error) {
	dgst, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: dgst, Size: size}, nil
}

// rawManifest is a remote.Taggable of exact manifest bytes.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mediaType, nil }
