package verifier

// Conversion of legacy cosign signatures (one simple-signing layer of a
// sha256-<hex>.sig image, or of a cosign v2 experimental OCI 1.1 signature
// referrer) and legacy attestations (one DSSE envelope layer of a
// sha256-<hex>.att image) into Sigstore bundles that stock sigstore-go
// verifies (FORMATS.md §2.3, route A). It is pure: it sees only bytes already
// fetched and hashed by discovery. It is shared by key and keyless
// verification: it carries the certificate, the Rekor entry with its
// inclusion promise (SET) and the RFC 3161 timestamp.
//
// Route A (a v0.1 protobuf bundle verified by stock sigstore-go) rather
// than route B (a hand-written SignedEntity): v0.1 is the only bundle
// version whose log entries may carry an inclusion promise without an
// inclusion proof, which is all a legacy annotation has. Its one limit
// is that v0.1 bundles ignore intermediates, so the certificates of the
// dev.sigstore.cosign/chain annotation are not used: the intermediates
// must be in the trusted root, as they are in the public-good root and
// in every root `cosign trusted-root create` writes from a Fulcio chain.
// That is also the safer choice: a chain annotation is unsigned.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
)

// Annotations cosign puts on each simple-signing layer descriptor
// (cosign pkg/oci/static/signature.go).
const (
	annotationSignature   = "dev.cosignproject.cosign/signature"
	annotationCertificate = "dev.sigstore.cosign/certificate"
	annotationRekorBundle = "dev.sigstore.cosign/bundle"
	annotationTimestamp   = "dev.sigstore.cosign/rfc3161timestamp"
	annotationChain       = "dev.sigstore.cosign/chain"
)

// legacyBundleMediaType is bundle v0.1: the only version whose tlog
// entries may carry an inclusion promise (SET) without an inclusion
// proof, which is all a legacy Rekor annotation provides. It also turns
// on sigstore-go's compatibility verifier for certificates.
const legacyBundleMediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1"

// legacyBundle converts one legacy simple-signing layer into a v0.1
// Sigstore bundle with a message signature over sha256(payload).
//
// payload must be the exact layer blob, already checked against the
// layer digest; annotations are the layer descriptor's. Verify the result
// with verify.WithArtifact over payload, so the signature is checked over
// the fetched bytes, and check the payload's claims separately
// ([checkSimpleSigning]): sigstore-go knows nothing about them.
//
// Verification material is the certificate annotation when present
// (keyless; intermediates from the dev.sigstore.cosign/chain annotation
// are ignored, as v0.1 bundles cannot carry them, and must come from the
// trusted root), otherwise a public key with an empty hint (key signers
// are selected by the verifier, not by hint).
func legacyBundle(payload []byte, annotations map[string]string) (*bundle.Bundle, error) {
	return convertLegacy(payload, annotations, true)
}

// legacyKeyBundle is [legacyBundle] for verification with a key: the
// verification material is always a public key, and a certificate
// annotation is ignored, as cosign verify --key ignores it (cosign sign
// --key --certificate attaches one to a key signature).
func legacyKeyBundle(payload []byte, annotations map[string]string) (*bundle.Bundle, error) {
	return convertLegacy(payload, annotations, false)
}

func convertLegacy(payload []byte, annotations map[string]string, withCertificate bool) (*bundle.Bundle, error) {
	sigB64, ok := annotations[annotationSignature]
	if !ok || sigB64 == "" {
		return nil, errors.New("no " + annotationSignature + " annotation")
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return nil, fmt.Errorf("%s annotation is not base64", annotationSignature)
	}
	if len(sig) == 0 {
		return nil, fmt.Errorf("%s annotation is empty", annotationSignature)
	}
	sum := sha256.Sum256(payload)
	vm, err := legacyMaterial(annotations, withCertificate)
	if err != nil {
		return nil, err
	}
	return newLegacyBundle(vm, &protobundle.Bundle_MessageSignature{
		MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{
				Algorithm: protocommon.HashAlgorithm_SHA2_256,
				Digest:    sum[:],
			},
			Signature: sig,
		},
	})
}

// legacyMaterial builds the verification material of a legacy layer
// (a .sig simple-signing layer or a .att DSSE layer) from its
// annotations: the certificate (when withCertificate and present) or
// an empty public key hint, the Rekor entry of the bundle annotation
// (left out when sigstore-go cannot verify its kind, see
// [unsupportedRekorEntry]) and the RFC 3161 timestamp.
func legacyMaterial(annotations map[string]string, withCertificate bool) (*protobundle.VerificationMaterial, error) {
	vm := &protobundle.VerificationMaterial{}
	if certPEM := annotations[annotationCertificate]; certPEM != "" && withCertificate {
		block, _ := pem.Decode([]byte(certPEM))
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s annotation is not a PEM certificate", annotationCertificate)
		}
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{
			X509CertificateChain: &protocommon.X509CertificateChain{
				Certificates: []*protocommon.X509Certificate{{RawBytes: block.Bytes}},
			},
		}
	} else {
		vm.Content = &protobundle.VerificationMaterial_PublicKey{
			PublicKey: &protocommon.PublicKeyIdentifier{},
		}
	}
	if rb := annotations[annotationRekorBundle]; rb != "" && unsupportedRekorEntry(annotations) == "" {
		entry, err := rekorEntry([]byte(rb))
		if err != nil {
			return nil, fmt.Errorf("%s annotation: %w", annotationRekorBundle, err)
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{entry}
	}
	if ts := annotations[annotationTimestamp]; ts != "" {
		der, err := rfc3161Timestamp([]byte(ts))
		if err != nil {
			return nil, fmt.Errorf("%s annotation: %w", annotationTimestamp, err)
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: der}},
		}
	}
	return vm, nil
}

func newLegacyBundle(vm *protobundle.VerificationMaterial, content any) (*bundle.Bundle, error) {
	pb := &protobundle.Bundle{MediaType: legacyBundleMediaType, VerificationMaterial: vm}
	switch c := content.(type) {
	case *protobundle.Bundle_MessageSignature:
		pb.Content = c
	case *protobundle.Bundle_DsseEnvelope:
		pb.Content = c
	default:
		return nil, fmt.Errorf("unknown bundle content %T", content)
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("convert to bundle: %w", err)
	}
	return b, nil
}

// dsseEnvelope is a DSSE envelope as cosign writes it into a .att layer:
// JSON with a base64 payload and base64 signatures.
type dsseEnvelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// parseEnvelope parses a .att layer blob: a DSSE envelope of an in-toto
// statement with exactly one signature. It returns the envelope with
// its payload (the statement) and signature decoded.
func parseEnvelope(blob []byte) (*protodsse.Envelope, error) {
	var env dsseEnvelope
	if err := json.Unmarshal(blob, &env); err != nil {
		return nil, errors.New("attestation layer is not a DSSE envelope")
	}
	if env.PayloadType != mediaTypeInToto {
		return nil, fmt.Errorf("DSSE payload type is %q, not %s", truncate(env.PayloadType, 80), mediaTypeInToto)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil || len(payload) == 0 {
		return nil, errors.New("DSSE payload is not base64")
	}
	if len(env.Signatures) != 1 {
		return nil, errors.New("DSSE envelope must have exactly one signature")
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil || len(sig) == 0 {
		return nil, errors.New("DSSE signature is not base64")
	}
	return &protodsse.Envelope{
		Payload:     payload,
		PayloadType: env.PayloadType,
		Signatures:  []*protodsse.Signature{{Sig: sig, Keyid: env.Signatures[0].KeyID}},
	}, nil
}

// envelopeBundle converts one legacy .att layer (a DSSE envelope and the
// layer's annotations) into a v0.1 Sigstore bundle holding the envelope
// (FORMATS.md §2.3). Verify it with verify.WithArtifactDigest over the
// image digest: the statement's subject must name it. withCertificate
// is as for [legacyBundle].
func envelopeBundle(env *protodsse.Envelope, annotations map[string]string, withCertificate bool) (*bundle.Bundle, error) {
	vm, err := legacyMaterial(annotations, withCertificate)
	if err != nil {
		return nil, err
	}
	return newLegacyBundle(vm, &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env})
}

// rekorBundle is cosign's pkg/cosign/bundle.RekorBundle as serialised in
// the dev.sigstore.cosign/bundle annotation: its Go fields have no JSON
// tags, so the outer keys are capitalised; the payload keys are not.
type rekorBundle struct {
	SignedEntryTimestamp string `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// rekorEntry converts a Rekor bundle annotation into a transparency log
// entry with an inclusion promise. The kind and version come from the
// logged body itself (sigstore-go checks they match it), and the log ID
// is the hex-decoded logID (the raw sha256 of the log's public key).
func rekorEntry(annotation []byte) (*protorekor.TransparencyLogEntry, error) {
	var rb rekorBundle
	if err := json.Unmarshal(annotation, &rb); err != nil {
		return nil, errors.New("not a Rekor bundle")
	}
	set, err := base64.StdEncoding.DecodeString(rb.SignedEntryTimestamp)
	if err != nil || len(set) == 0 {
		return nil, errors.New("SignedEntryTimestamp is not base64")
	}
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil || len(body) == 0 {
		return nil, errors.New("the Rekor bundle's Payload.body is not base64")
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil || len(logID) == 0 {
		return nil, errors.New("Payload.logID is not hex")
	}
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kv); err != nil || kv.Kind == "" || kv.APIVersion == "" {
		return nil, errors.New("the Rekor bundle's Payload.body is not a Rekor entry")
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          rb.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion},
		IntegratedTime:    rb.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: set},
		CanonicalizedBody: body,
	}, nil
}

// unsupportedRekorEntry says why the Rekor entry of a legacy layer's
// bundle annotation cannot be verified, or "". Rekor intoto v0.0.1
// entries (cosign attestations before v2.2, or --rekor-entry-type=intoto)
// cannot be parsed by sigstore-go; the conversion leaves them out, so
// the signature is judged as one without a log entry (a signer with
// tlog: required rejects it, naming this reason).
func unsupportedRekorEntry(annotations map[string]string) string {
	rb := annotations[annotationRekorBundle]
	if rb == "" {
		return ""
	}
	var b rekorBundle
	if json.Unmarshal([]byte(rb), &b) != nil {
		return ""
	}
	body, err := base64.StdEncoding.DecodeString(b.Payload.Body)
	if err != nil {
		return ""
	}
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if json.Unmarshal(body, &kv) != nil {
		return ""
	}
	if kv.Kind == "intoto" && kv.APIVersion == "0.0.1" {
		return "its Rekor entry is of type intoto v0.0.1 (cosign before v2.2), which pullgate cannot verify"
	}
	return ""
}

// rfc3161Timestamp decodes cosign's timestamp annotation,
// {"SignedRFC3161Timestamp":"<base64 DER TimeStampResp>"}.
func rfc3161Timestamp(annotation []byte) ([]byte, error) {
	var ts struct {
		SignedRFC3161Timestamp string `json:"SignedRFC3161Timestamp"`
	}
	if err := json.Unmarshal(annotation, &ts); err != nil {
		return nil, errors.New("not a timestamp bundle")
	}
	der, err := base64.StdEncoding.DecodeString(ts.SignedRFC3161Timestamp)
	if err != nil || len(der) == 0 {
		return nil, errors.New("SignedRFC3161Timestamp is not base64")
	}
	return der, nil
}
