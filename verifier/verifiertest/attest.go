package verifiertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Legacy attestation layout (cosign v2 `cosign attest`).
const (
	MediaTypeDSSE           = "application/vnd.dsse.envelope.v1+json"
	MediaTypeInToto         = "application/vnd.in-toto+json"
	AnnotationPredicateType = "predicateType"
	inTotoStatementV01      = "https://in-toto.io/Statement/v0.1"
)

// AttTag returns the legacy attestation tag for dgst in repo:
// repo:sha256-<hex>.att.
func AttTag(repo name.Repository, dgst v1.Hash) name.Tag {
	return repo.Tag(dgst.Algorithm + "-" + dgst.Hex + ".att")
}

// LegacyStatement returns the in-toto Statement v0.1 cosign v2 attests
// for dgst (cosign's attestation.GenerateStatement): the subject names
// repo.Name() and the sha256 digest; predicate nil means {}. For the
// cosign `custom` type, pass the wrapper {"Data": …, "Timestamp": …}
// yourself.
func LegacyStatement(repo name.Repository, dgst v1.Hash, predicateType string, predicate any) []byte {
	if predicate == nil {
		predicate = map[string]any{}
	}
	type subject struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	}
	b, err := json.Marshal(struct {
		Type          string    `json:"_type"`
		PredicateType string    `json:"predicateType"`
		Subject       []subject `json:"subject"`
		Predicate     any       `json:"predicate"`
	}{
		Type:          inTotoStatementV01,
		PredicateType: predicateType,
		Subject:       []subject{{Name: repo.Name(), Digest: map[string]string{dgst.Algorithm: dgst.Hex}}},
		Predicate:     predicate,
	})
	if err != nil {
		panic(err) // a predicate that does not marshal is a bug in the test
	}
	return b
}

// PAE is the DSSE pre-authentication encoding of payload, what a DSSE
// signature signs.
func PAE(payloadType string, payload []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
}

// Envelope returns the DSSE envelope JSON cosign writes into a .att
// layer: payload type application/vnd.in-toto+json, the base64
// statement, and one signature per sig (with an empty keyid).
func Envelope(statement []byte, sigs ...[]byte) []byte {
	type signature struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	}
	env := struct {
		PayloadType string      `json:"payloadType"`
		Payload     string      `json:"payload"`
		Signatures  []signature `json:"signatures"`
	}{PayloadType: MediaTypeInToto, Payload: base64.StdEncoding.EncodeToString(statement), Signatures: []signature{}}
	for _, s := range sigs {
		env.Signatures = append(env.Signatures, signature{Sig: base64.StdEncoding.EncodeToString(s)})
	}
	b, err := json.Marshal(env)
	if err != nil {
		panic(err)
	}
	return b
}

// DSSEEnvelope signs statement with key as cosign v2's `cosign attest
// --key` does: the signature is over the DSSE PAE, hashed as for legacy
// signatures (SHA-256, pure Ed25519). It returns the envelope JSON.
func (k *Key) DSSEEnvelope(statement []byte) ([]byte, error) {
	sig, err := k.LegacySignature(PAE(MediaTypeInToto, statement))
	if err != nil {
		return nil, err
	}
	return Envelope(statement, sig), nil
}

// AttestLegacy attests dgst with key as cosign v2 does by default
// (`cosign attest --key … --type T --tlog-upload=false`): it appends a
// DSSE layer with an in-toto v0.1 statement of predicateType about dgst
// to repo:sha256-<hex>.att, annotated with predicateType (as cosign
// does; pullgate must not believe it) and an empty signature annotation.
func AttestLegacy(ctx context.Context, repo name.Repository, dgst v1.Hash, key *Key, predicateType string, predicate any, opts ...remote.Option) error {
	env, err := key.DSSEEnvelope(LegacyStatement(repo, dgst, predicateType, predicate))
	if err != nil {
		return err
	}
	return WriteAttestationLayer(ctx, repo, dgst, env, AttestationAnnotations(predicateType), opts...)
}

// AttestationAnnotations are the layer annotations cosign writes on a
// key-signed .att layer: predicateType and an empty
// dev.cosignproject.cosign/signature.
func AttestationAnnotations(predicateType string) map[string]string {
	return map[string]string{AnnotationPredicateType: predicateType, AnnotationSignature: ""}
}

// WriteAttestationLayer appends one DSSE layer with exactly this
// envelope and these annotations to repo:<tagDigest>.att, creating the
// image when the tag does not exist. It signs nothing: it is the knob
// for malformed or hand-made attestations.
func WriteAttestationLayer(ctx context.Context, repo name.Repository, tagDigest v1.Hash, envelope []byte, annotations map[string]string, opts ...remote.Option) error {
	return appendLayer(ctx, AttTag(repo, tagDigest), envelope, MediaTypeDSSE, annotations, opts...)
}

// appendLayer appends a layer to the cosign image at tag.
func appendLayer(ctx context.Context, tag name.Tag, blob []byte, mediaType types.MediaType, annotations map[string]string, opts ...remote.Option) error {
	ropts := append([]remote.Option{remote.WithContext(ctx)}, opts...)
	base, err := remote.Image(tag, ropts...)
	var terr *transport.Error
	switch {
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	case err != nil:
		return fmt.Errorf("read %s: %w", tag, err)
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:       static.NewLayer(blob, mediaType),
		Annotations: annotations,
	})
	if err != nil {
		return fmt.Errorf("append layer: %w", err)
	}
	if err := remote.Write(tag, img, ropts...); err != nil {
		return fmt.Errorf("write %s: %w", tag, err)
	}
	return nil
}

// LegacyAttestationKeyless signs statement keyless as cosign v2's
// `cosign attest` does: it returns the DSSE envelope JSON and the .att
// layer annotations: predicateType, the empty signature annotation, the
// Fulcio certificate for id, the chain and, per o, the Rekor bundle (a
// dsse v0.0.1 entry, or intoto v0.0.1 with o.IntotoV001) and an RFC
// 3161 timestamp of the signature.
func (s *Sigstore) LegacyAttestationKeyless(statement []byte, predicateType string, id Identity, o KeylessOptions) ([]byte, map[string]string, error) {
	cert, key, err := s.Certificate(id)
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(PAE(MediaTypeInToto, statement))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return nil, nil, err
	}
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		return nil, nil, err
	}
	env := Envelope(statement, sig)
	ann := AttestationAnnotations(predicateType)
	ann[AnnotationCertificate] = string(certPEM)
	ann[AnnotationChain] = string(s.ChainPEM())
	if err := s.addAttestationLogAndTimestamp(ann, env, statement, sig, certPEM, o); err != nil {
		return nil, nil, err
	}
	return env, ann, nil
}

// AttestLegacyKeyless attests dgst keyless as cosign v2 does by default:
// see [Sigstore.LegacyAttestationKeyless]. The layer is appended to
// repo:sha256-<hex>.att.
func (s *Sigstore) AttestLegacyKeyless(ctx context.Context, repo name.Repository, dgst v1.Hash, id Identity, o KeylessOptions, predicateType string, predicate any, opts ...remote.Option) error {
	env, ann, err := s.LegacyAttestationKeyless(LegacyStatement(repo, dgst, predicateType, predicate), predicateType, id, o)
	if err != nil {
		return err
	}
	return WriteAttestationLayer(ctx, repo, dgst, env, ann, opts...)
}

// AttestLegacyKeyWithLog attests dgst with key as cosign v2 does with
// --key and the transparency log on: the layer carries the Rekor bundle
// of this Sigstore's log (a dsse v0.0.1 entry, or intoto v0.0.1 with
// o.IntotoV001, as cosign before v2.2 logged attestations).
func (s *Sigstore) AttestLegacyKeyWithLog(ctx context.Context, repo name.Repository, dgst v1.Hash, key *Key, o KeylessOptions, predicateType string, predicate any, opts ...remote.Option) error {
	statement := LegacyStatement(repo, dgst, predicateType, predicate)
	sig, err := key.LegacySignature(PAE(MediaTypeInToto, statement))
	if err != nil {
		return err
	}
	env := Envelope(statement, sig)
	ann := AttestationAnnotations(predicateType)
	if err := s.addAttestationLogAndTimestamp(ann, env, statement, sig, key.PublicPEM, o); err != nil {
		return err
	}
	return WriteAttestationLayer(ctx, repo, dgst, env, ann, opts...)
}

func (s *Sigstore) addAttestationLogAndTimestamp(ann map[string]string, env, statement, sig, verifierPEM []byte, o KeylessOptions) error {
	return s.addLogAndTimestamp(ann, sig, o, func() ([]byte, error) {
		if o.IntotoV001 {
			return intotoV001Body(env, statement, verifierPEM)
		}
		return dsseBody(env, statement, sig, verifierPEM)
	})
}

// rekorBundle is cosign's dev.sigstore.cosign/bundle annotation.
type rekorBundle struct {
	SignedEntryTimestamp string       `json:"SignedEntryTimestamp"`
	Payload              rekorPayload `json:"Payload"`
}

type rekorPayload struct {
	Body           string `json:"body"`
	IntegratedTime int64  `json:"integratedTime"`
	LogIndex       int64  `json:"logIndex"`
	LogID          string `json:"logID"`
}

// intotoV001Body is the Rekor intoto v0.0.1 entry cosign before v2.2
// logged for an attestation.
func intotoV001Body(env, statement, verifierPEM []byte) ([]byte, error) {
	envSum, paySum := sha256.Sum256(env), sha256.Sum256(statement)
	type hash struct {
		Algorithm string `json:"algorithm"`
		Value     string `json:"value"`
	}
	var e struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Content struct {
				Hash        hash `json:"hash"`
				PayloadHash hash `json:"payloadHash"`
			} `json:"content"`
			PublicKey string `json:"publicKey"`
		} `json:"spec"`
	}
	e.APIVersion, e.Kind = "0.0.1", "intoto"
	e.Spec.Content.Hash = hash{Algorithm: "sha256", Value: hex.EncodeToString(envSum[:])}
	e.Spec.Content.PayloadHash = hash{Algorithm: "sha256", Value: hex.EncodeToString(paySum[:])}
	e.Spec.PublicKey = base64.StdEncoding.EncodeToString(verifierPEM)
	return json.Marshal(e)
}
