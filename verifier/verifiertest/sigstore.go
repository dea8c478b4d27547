package verifiertest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"
)

// Annotations cosign puts on keyless legacy signature layers.
const (
	AnnotationCertificate = "dev.sigstore.cosign/certificate"
	AnnotationChain       = "dev.sigstore.cosign/chain"
	AnnotationRekorBundle = "dev.sigstore.cosign/bundle"
	AnnotationTimestamp   = "dev.sigstore.cosign/rfc3161timestamp"
)

// GitHubActionsIssuer is the OIDC issuer of GitHub Actions workflows.
const GitHubActionsIssuer = "https://token.actions.githubusercontent.com"

// Sigstore is an in-process Sigstore deployment for tests, built on
// sigstore-go's ca.VirtualSigstore: a Fulcio CA (root and intermediate),
// a Rekor log (signed entry timestamps and inclusion proofs), an RFC 3161
// timestamp authority and a CT log key. It signs exactly what cosign
// writes, keyless: legacy .sig layers with certificate, chain, Rekor
// bundle and timestamp annotations ([Sigstore.SignLegacyKeyless]), and
// Sigstore bundles v0.3 stored as referrers ([Sigstore.SignBundleKeyless]),
// and it logs key signatures in its Rekor ([Sigstore.SignLegacyKeyWithLog]).
//
// The Fulcio CA is its own (not the VirtualSigstore's) so that leaf
// certificates can carry any identity, Fulcio extensions (GitHub
// workflow repository, ref, …) and validity window. Like
// VirtualSigstore's, its certificates carry no SCT: verify with SCT
// checks off (verifier.WithoutSCTsUnsafe), or expect an SCT failure.
//
// Validity windows: the Fulcio CA is valid from 24 h before creation,
// the Rekor and CT keys from 1 h before to 1 h after, the timestamp
// authority's leaf from 5 min before to 5 min after. Sign within them.
type Sigstore struct {
	vs       *ca.VirtualSigstore
	caRoot   *x509.Certificate
	caInter  *x509.Certificate
	interKey *ecdsa.PrivateKey
	tr       *root.TrustedRoot
	logID    string // hex
	index    atomic.Int64
}

// NewSigstore creates a fresh in-process Sigstore with new keys.
func NewSigstore() (*Sigstore, error) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		return nil, fmt.Errorf("virtual sigstore: %w", err)
	}
	now := time.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sigstore", Organization: []string{"pullgate.test"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caRoot, err := createCert(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caInter, err := createCert(&x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "sigstore-intermediate", Organization: []string{"pullgate.test"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, caRoot, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	logID, err := vs.RekorLogID()
	if err != nil {
		return nil, err
	}
	fulcio := &root.FulcioCertificateAuthority{
		Root: caRoot, Intermediates: []*x509.Certificate{caInter},
		ValidityPeriodStart: now.Add(-24 * time.Hour), URI: "https://fulcio.pullgate.test",
	}
	// VirtualSigstore's logs have ID = the ASCII hex of the key ID, which
	// breaks the trusted_root.json round trip (FORMATS.md §2.4): use the
	// raw bytes, as parsed roots do.
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{fulcio}, fixLogIDs(vs.CTLogs()), vs.TimestampingAuthorities(), fixLogIDs(vs.RekorLogs()))
	if err != nil {
		return nil, err
	}
	s := &Sigstore{vs: vs, caRoot: caRoot, caInter: caInter, interKey: interKey, tr: tr, logID: logID}
	s.index.Store(1000)
	return s, nil
}

func fixLogIDs(logs map[string]*root.TransparencyLog) map[string]*root.TransparencyLog {
	out := make(map[string]*root.TransparencyLog, len(logs))
	for k, l := range logs {
		c := *l
		if id, err := hex.DecodeString(k); err == nil {
			c.ID = id
		}
		out[k] = &c
	}
	return out
}

func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// Virtual returns the underlying VirtualSigstore (its Rekor log and
// timestamp authority are this Sigstore's).
func (s *Sigstore) Virtual() *ca.VirtualSigstore { return s.vs }

// TrustedRoot returns the trusted material of this Sigstore: its Fulcio
// CA, Rekor log, timestamp authority and CT log.
func (s *Sigstore) TrustedRoot() *root.TrustedRoot { return s.tr }

// TrustedRootJSON returns this Sigstore's trusted_root.json, as
// `cosign trusted-root create` would write it.
func (s *Sigstore) TrustedRootJSON() ([]byte, error) {
	// MarshalJSON rebuilds the root's protobuf form in place: build a
	// copy so concurrent readers of s.tr are not disturbed.
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, s.tr.FulcioCertificateAuthorities(), s.tr.CTLogs(),
		s.tr.TimestampingAuthorities(), s.tr.RekorLogs())
	if err != nil {
		return nil, err
	}
	return tr.MarshalJSON()
}

// RekorLogID returns the hex log ID of this Sigstore's Rekor log.
func (s *Sigstore) RekorLogID() string { return s.logID }

// ChainPEM returns the Fulcio intermediate and root, PEM, as cosign
// writes them into the dev.sigstore.cosign/chain annotation.
func (s *Sigstore) ChainPEM() []byte {
	b, _ := cryptoutils.MarshalCertificatesToPEM([]*x509.Certificate{s.caInter, s.caRoot})
	return b
}

// Identity is what a Fulcio certificate certifies.
type Identity struct {
	// Subject is the subject alternative name: a URI when it has a
	// scheme (a GitHub workflow, https://github.com/org/repo/.github/workflows/x.yml@refs/…),
	// otherwise an e-mail address.
	Subject string
	// Issuer is the OIDC issuer, written in both of Fulcio's issuer
	// extensions (1.3.6.1.4.1.57264.1.1 and .8).
	Issuer string
	// Extensions are further Fulcio extensions, by the JSON names of
	// sigstore-go's certificate.Extensions (githubWorkflowRepository,
	// githubWorkflowRef, sourceRepositoryURI, …), encoded as Fulcio does.
	Extensions map[string]string
	// NotBefore and NotAfter bound the certificate's validity. Zero
	// NotBefore means one minute ago; zero NotAfter means ten minutes
	// after NotBefore, as Fulcio issues them.
	NotBefore, NotAfter time.Time
}

// GitHubWorkflow returns the identity GitHub Actions gives the workflow
// file workflow (e.g. ".github/workflows/release.yml") of repository
// (owner/name) running at ref, as Fulcio certifies it.
func GitHubWorkflow(repository, workflow, ref string) Identity {
	return Identity{
		Subject: "https://github.com/" + repository + "/" + workflow + "@" + ref,
		Issuer:  GitHubActionsIssuer,
		Extensions: map[string]string{
			"githubWorkflowRepository": repository,
			"githubWorkflowRef":        ref,
			"githubWorkflowTrigger":    "push",
			"githubWorkflowSHA":        "0123456789abcdef0123456789abcdef01234567",
			"sourceRepositoryURI":      "https://github.com/" + repository,
			"sourceRepositoryRef":      ref,
		},
	}
}

// extensionOIDs maps certificate.Extensions JSON names to Fulcio OIDs;
// raw says the value is written as raw bytes (the deprecated 1.1.x
// GitHub extensions) rather than a DER UTF8String.
var extensionOIDs = map[string]struct {
	oid asn1.ObjectIdentifier
	raw bool
}{
	"githubWorkflowTrigger":               {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 2}, true},
	"githubWorkflowSHA":                   {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 3}, true},
	"githubWorkflowName":                  {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 4}, true},
	"githubWorkflowRepository":            {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 5}, true},
	"githubWorkflowRef":                   {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 6}, true},
	"buildSignerURI":                      {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 9}, false},
	"buildSignerDigest":                   {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 10}, false},
	"runnerEnvironment":                   {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 11}, false},
	"sourceRepositoryURI":                 {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 12}, false},
	"sourceRepositoryDigest":              {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 13}, false},
	"sourceRepositoryRef":                 {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 14}, false},
	"sourceRepositoryIdentifier":          {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 15}, false},
	"sourceRepositoryOwnerURI":            {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 16}, false},
	"sourceRepositoryOwnerIdentifier":     {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 17}, false},
	"buildConfigURI":                      {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 18}, false},
	"buildConfigDigest":                   {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 19}, false},
	"buildTrigger":                        {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 20}, false},
	"runInvocationURI":                    {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 21}, false},
	"sourceRepositoryVisibilityAtSigning": {asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 22}, false},
}

var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// Certificate issues a Fulcio code-signing certificate for id over a
// fresh ECDSA P-256 key and returns it with the key.
func (s *Sigstore) Certificate(id Identity) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	nb, na := id.NotBefore, id.NotAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Minute)
	}
	if na.IsZero() {
		na = nb.Add(10 * time.Minute)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	if strings.Contains(id.Subject, "://") {
		u, err := url.Parse(id.Subject)
		if err != nil {
			return nil, nil, fmt.Errorf("subject: %w", err)
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{id.Subject}
	}
	issuerDER, err := asn1.MarshalWithParams(id.Issuer, "utf8")
	if err != nil {
		return nil, nil, err
	}
	tmpl.ExtraExtensions = []pkix.Extension{
		{Id: oidIssuerV1, Value: []byte(id.Issuer)},
		{Id: oidIssuerV2, Value: issuerDER},
	}
	for n, v := range id.Extensions {
		e, ok := extensionOIDs[n]
		if !ok {
			return nil, nil, fmt.Errorf("unknown Fulcio extension %q", n)
		}
		val := []byte(v)
		if !e.raw {
			if val, err = asn1.MarshalWithParams(v, "utf8"); err != nil {
				return nil, nil, err
			}
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: e.oid, Value: val})
	}
	cert, err := createCert(tmpl, s.caInter, &key.PublicKey, s.interKey)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// KeylessOptions choose the evidence a signature carries and how it is
// broken, for negative tests.
type KeylessOptions struct {
	// NoTlog leaves out the transparency log entry (the Rekor bundle
	// annotation, or the bundle's tlog entry).
	NoTlog bool
	// Timestamp adds an RFC 3161 timestamp of the signature from the
	// timestamp authority (at the current time).
	Timestamp bool
	// IntegratedTime is the time the log says it integrated the entry.
	// Zero means now.
	IntegratedTime time.Time
	// TamperSET flips a bit of the signed entry timestamp.
	TamperSET bool
	// NoInclusionProof leaves out the inclusion proof of bundle tlog
	// entries (the promise stays). Bundles v0.3 then fail to parse.
	NoInclusionProof bool
	// NoInclusionPromise leaves out the inclusion promise (SET) of
	// bundle tlog entries (the proof stays), as with Rekor v2: the entry
	// then proves inclusion but signs no integrated time.
	NoInclusionPromise bool
	// IntotoV001 logs legacy attestations as Rekor intoto v0.0.1 entries,
	// as cosign before v2.2 did (and --rekor-entry-type=intoto), instead
	// of dsse v0.0.1.
	IntotoV001 bool
}

func (o KeylessOptions) integratedTime() time.Time {
	if o.IntegratedTime.IsZero() {
		return time.Now()
	}
	return o.IntegratedTime
}

// LegacyKeylessAnnotations signs payload keyless as cosign v2 does for a
// .sig layer and returns the layer annotations: the signature, the
// certificate, the chain, and (per o) the Rekor bundle with a
// hashedrekord entry and the RFC 3161 timestamp.
func (s *Sigstore) LegacyKeylessAnnotations(payload []byte, id Identity, o KeylessOptions) (map[string]string, error) {
	cert, key, err := s.Certificate(id)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return nil, err
	}
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		return nil, err
	}
	ann := map[string]string{
		AnnotationSignature:   base64.StdEncoding.EncodeToString(sig),
		AnnotationCertificate: string(certPEM),
		AnnotationChain:       string(s.ChainPEM()),
	}
	if err := s.addLegacyLogAndTimestamp(ann, sum[:], sig, certPEM, o); err != nil {
		return nil, err
	}
	return ann, nil
}

// LegacyKeyAnnotations signs payload with key as cosign v2 does, logging
// the signature in this Sigstore's Rekor (a hashedrekord entry with the
// public key), and returns the layer annotations.
func (s *Sigstore) LegacyKeyAnnotations(payload []byte, key *Key, o KeylessOptions) (map[string]string, error) {
	sig, err := key.LegacySignature(payload)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload)
	ann := map[string]string{AnnotationSignature: base64.StdEncoding.EncodeToString(sig)}
	if err := s.addLegacyLogAndTimestamp(ann, sum[:], sig, key.PublicPEM, o); err != nil {
		return nil, err
	}
	return ann, nil
}

func (s *Sigstore) addLegacyLogAndTimestamp(ann map[string]string, sum, sig, verifierPEM []byte, o KeylessOptions) error {
	return s.addLogAndTimestamp(ann, sig, o, func() ([]byte, error) { return hashedRekordBody(sum, sig, verifierPEM) })
}

// addLogAndTimestamp adds to layer annotations ann, per o, the Rekor
// bundle (the SET of this Sigstore's log over the entry body makes) and
// the RFC 3161 timestamp over sig, as cosign writes them.
func (s *Sigstore) addLogAndTimestamp(ann map[string]string, sig []byte, o KeylessOptions, body func() ([]byte, error)) error {
	if !o.NoTlog {
		b, err := body()
		if err != nil {
			return err
		}
		set, it, idx, err := s.set(b, o)
		if err != nil {
			return err
		}
		rb, err := json.Marshal(rekorBundle{
			SignedEntryTimestamp: base64.StdEncoding.EncodeToString(set),
			Payload: rekorPayload{
				Body: base64.StdEncoding.EncodeToString(b), IntegratedTime: it, LogIndex: idx, LogID: s.logID,
			},
		})
		if err != nil {
			return err
		}
		ann[AnnotationRekorBundle] = string(rb)
	}
	if o.Timestamp {
		tsr, err := s.vs.TimestampResponse(sig)
		if err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		b, err := json.Marshal(map[string]string{"SignedRFC3161Timestamp": base64.StdEncoding.EncodeToString(tsr)})
		if err != nil {
			return err
		}
		ann[AnnotationTimestamp] = string(b)
	}
	return nil
}

// set has this Sigstore's Rekor promise to include body: it returns the
// signed entry timestamp, the integrated time and the log index.
func (s *Sigstore) set(body []byte, o KeylessOptions) ([]byte, int64, int64, error) {
	it := o.integratedTime().Unix()
	idx := s.index.Add(1)
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{
		Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: it, LogIndex: idx, LogID: s.logID,
	})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("sign entry timestamp: %w", err)
	}
	if o.TamperSET {
		set[len(set)/2] ^= 1
	}
	return set, it, idx, nil
}

// hashedRekordBody is the canonicalized Rekor hashedrekord v0.0.1 entry
// of a signature over a payload with SHA-256 sum, by verifierPEM (a
// certificate or a public key).
func hashedRekordBody(sum, sig, verifierPEM []byte) ([]byte, error) {
	type hash struct {
		Algorithm string `json:"algorithm"`
		Value     string `json:"value"`
	}
	var e struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Data struct {
				Hash hash `json:"hash"`
			} `json:"data"`
			Signature struct {
				Content   string `json:"content"`
				PublicKey struct {
					Content string `json:"content"`
				} `json:"publicKey"`
			} `json:"signature"`
		} `json:"spec"`
	}
	e.APIVersion, e.Kind = "0.0.1", "hashedrekord"
	e.Spec.Data.Hash = hash{Algorithm: "sha256", Value: hex.EncodeToString(sum)}
	e.Spec.Signature.Content = base64.StdEncoding.EncodeToString(sig)
	e.Spec.Signature.PublicKey.Content = base64.StdEncoding.EncodeToString(verifierPEM)
	return json.Marshal(e)
}

// dsseBody is the canonicalized Rekor dsse v0.0.1 entry of envelope.
func dsseBody(envelopeJSON, payload, sig, certPEM []byte) ([]byte, error) {
	type hash struct {
		Algorithm string `json:"algorithm"`
		Value     string `json:"value"`
	}
	type signature struct {
		Signature string `json:"signature"`
		Verifier  string `json:"verifier"`
	}
	var e struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			EnvelopeHash hash        `json:"envelopeHash"`
			PayloadHash  hash        `json:"payloadHash"`
			Signatures   []signature `json:"signatures"`
		} `json:"spec"`
	}
	envSum, paySum := sha256.Sum256(envelopeJSON), sha256.Sum256(payload)
	e.APIVersion, e.Kind = "0.0.1", "dsse"
	e.Spec.EnvelopeHash = hash{Algorithm: "sha256", Value: hex.EncodeToString(envSum[:])}
	e.Spec.PayloadHash = hash{Algorithm: "sha256", Value: hex.EncodeToString(paySum[:])}
	e.Spec.Signatures = []signature{{Signature: base64.StdEncoding.EncodeToString(sig), Verifier: base64.StdEncoding.EncodeToString(certPEM)}}
	return json.Marshal(e)
}

// SignLegacyKeyless signs dgst keyless as cosign v2 does by default: it
// appends a simple-signing layer to repo:sha256-<hex>.sig whose
// annotations carry the signature, the Fulcio certificate for id, the
// chain and, per o, the Rekor bundle and an RFC 3161 timestamp.
func (s *Sigstore) SignLegacyKeyless(ctx context.Context, repo name.Repository, dgst v1.Hash, id Identity, o KeylessOptions, opts ...remote.Option) error {
	payload := SimpleSigningPayload(repo, dgst)
	ann, err := s.LegacyKeylessAnnotations(payload, id, o)
	if err != nil {
		return err
	}
	return WriteLegacyLayer(ctx, repo, dgst, payload, ann, opts...)
}

// SignLegacyKeyWithLog signs dgst with key as cosign v2 does with
// --key and the transparency log on (the default): the layer carries the
// Rekor bundle annotation of this Sigstore's log.
func (s *Sigstore) SignLegacyKeyWithLog(ctx context.Context, repo name.Repository, dgst v1.Hash, key *Key, o KeylessOptions, opts ...remote.Option) error {
	payload := SimpleSigningPayload(repo, dgst)
	ann, err := s.LegacyKeyAnnotations(payload, key, o)
	if err != nil {
		return err
	}
	return WriteLegacyLayer(ctx, repo, dgst, payload, ann, opts...)
}

// KeylessBundle signs an in-toto statement keyless as cosign v3 does: a
// Sigstore bundle v0.3 with a DSSE envelope, the Fulcio certificate for
// id, and (per o) a Rekor dsse entry with inclusion promise and proof
// and an RFC 3161 timestamp. It returns the bundle JSON.
func (s *Sigstore) KeylessBundle(statement []byte, id Identity, o KeylessOptions) ([]byte, error) {
	cert, key, err := s.Certificate(id)
	if err != nil {
		return nil, err
	}
	const payloadType = "application/vnd.in-toto+json"
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(statement), statement)
	sum := sha256.Sum256([]byte(pae))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return nil, err
	}
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		return nil, err
	}
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
	}
	if !o.NoTlog {
		envJSON, err := json.Marshal(map[string]any{
			"payloadType": payloadType,
			"payload":     base64.StdEncoding.EncodeToString(statement),
			"signatures":  []map[string]string{{"keyid": "", "sig": base64.StdEncoding.EncodeToString(sig)}},
		})
		if err != nil {
			return nil, err
		}
		body, err := dsseBody(envJSON, statement, sig, certPEM)
		if err != nil {
			return nil, err
		}
		set, it, idx, err := s.set(body, o)
		if err != nil {
			return nil, err
		}
		logID, err := hex.DecodeString(s.logID)
		if err != nil {
			return nil, err
		}
		entry := &protorekor.TransparencyLogEntry{
			LogIndex:          idx,
			LogId:             &protocommon.LogId{KeyId: logID},
			KindVersion:       &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"},
			IntegratedTime:    it,
			InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: set},
			CanonicalizedBody: body,
		}
		if !o.NoInclusionProof {
			p, err := s.vs.GetInclusionProof(body)
			if err != nil {
				return nil, fmt.Errorf("inclusion proof: %w", err)
			}
			rootHash, err := hex.DecodeString(*p.RootHash)
			if err != nil {
				return nil, err
			}
			hashes := make([][]byte, len(p.Hashes))
			for i, h := range p.Hashes {
				if hashes[i], err = hex.DecodeString(h); err != nil {
					return nil, err
				}
			}
			entry.InclusionProof = &protorekor.InclusionProof{
				LogIndex: *p.LogIndex, RootHash: rootHash, TreeSize: *p.TreeSize, Hashes: hashes,
				Checkpoint: &protorekor.Checkpoint{Envelope: *p.Checkpoint},
			}
		}
		if o.NoInclusionPromise {
			entry.InclusionPromise = nil
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{entry}
	}
	if o.Timestamp {
		tsr, err := s.vs.TimestampResponse(sig)
		if err != nil {
			return nil, fmt.Errorf("timestamp: %w", err)
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}},
		}
	}
	pb := &protobundle.Bundle{
		MediaType:            MediaTypeBundleV03,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: statement, PayloadType: payloadType,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	return protojson.Marshal(pb)
}

// SignBundleKeyless signs subject keyless as cosign v3 does by default:
// a Sigstore bundle v0.3 over an in-toto statement with predicate type
// https://sigstore.dev/cosign/sign/v1, stored as an OCI 1.1 referrer of
// subject (see [WriteBundleReferrer]).
func (s *Sigstore) SignBundleKeyless(ctx context.Context, repo name.Repository, subject v1.Descriptor, id Identity, o KeylessOptions, opts ...remote.Option) error {
	return s.SignBundleKeylessWithPredicate(ctx, repo, subject, id, o, CosignSignPredicateType, nil, opts...)
}

// SignBundleKeylessWithPredicate is [Sigstore.SignBundleKeyless] with
// another predicate: what `cosign attest` writes keyless.
func (s *Sigstore) SignBundleKeylessWithPredicate(ctx context.Context, repo name.Repository, subject v1.Descriptor, id Identity, o KeylessOptions, predicateType string, predicate map[string]any, opts ...remote.Option) error {
	stmt, err := Statement(subject.Digest, predicateType, predicate)
	if err != nil {
		return err
	}
	b, err := s.KeylessBundle(stmt, id, o)
	if err != nil {
		return err
	}
	return WriteBundleReferrer(ctx, repo, subject, b, predicateType, opts...)
}
