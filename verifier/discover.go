package verifier

// Discovery: the only part of the verifier that does I/O. It fetches
// signature material for one digest through a Source, hashes everything
// it fetches, enforces the limits, and turns each piece into a candidate
// (or a rejected candidate, or a note). It never decides anything.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"golang.org/x/sync/errgroup"
)

// Media types discovery recognises (FORMATS.md §7).
const (
	mediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	mediaTypeBundlePrefix  = "application/vnd.dev.sigstore.bundle"
	mediaTypeCosignSigV1   = "application/vnd.dev.cosign.artifact.sig.v1+json"
	mediaTypeOCIIndex      = "application/vnd.oci.image.index.v1+json"
	mediaTypeDockerList    = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeInToto        = "application/vnd.in-toto+json"
	mediaTypeDSSE          = "application/vnd.dsse.envelope.v1+json"
)

// cosignSignPredicateType is the predicate type of the in-toto statement
// cosign v3 signs for `cosign sign`; only bundles with it are signatures.
const cosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"

// fetchConcurrencyPerStage bounds concurrent Source calls per discovery
// stage (referrer manifests, blobs), per branch.
const fetchConcurrencyPerStage = 4

// candidate is one piece of signature material: a legacy simple-signing
// signature, a legacy DSSE attestation (a .att layer) or a Sigstore
// bundle. A candidate with a reject reason was
// found but is unusable whatever the signer (malformed, wrong digest,
// oversize); it still counts as "found" so denials can say why.
type candidate struct {
	layout Layout
	// artifact is the digest of the manifest that carried the material.
	artifact digest.Digest
	// where names the candidate in logs.
	where  string
	reject string
	// entity is the bundle to verify; payload is set for legacy
	// simple-signing candidates (verified with WithArtifact over it),
	// nil for DSSE bundles (verified with the image digest).
	entity  *bundle.Bundle
	payload []byte
	// keyEntity is the legacy signature converted for key signers (no
	// certificate); certified says the layer carried a certificate.
	keyEntity *bundle.Bundle
	certified bool
	// tlogNote, when not empty, explains a log entry the conversion had
	// to leave out; it is appended to "no transparency log entry".
	tlogNote string

	// dsse says the candidate is a DSSE in-toto statement (a bundle or a
	// .att layer), which may be an attestation; statement is its payload,
	// the bytes the DSSE signature covers. claimedType is the predicate
	// type the statement states, read before verification: it only
	// explains denials (which requirement a statement was meant for) and
	// never decides anything.
	dsse      bool
	statement []byte
	// simpleSigning says the candidate is a legacy simple-signing
	// signature: never an attestation.
	simpleSigning bool
	claimedType   string
	// parsed caches the statement parsed after a verification succeeded.
	parsed   *statement
	parseErr error
}

// material is the result of discovery.
type material struct {
	candidates []*candidate
	// notes describe material that was found and ignored (oversize,
	// truncated lists, listed but missing); they explain denials.
	notes []string
	// errs are fetch faults: the verifier could not see everything.
	errs []error
}

func (m *material) add(o material) {
	m.candidates = append(m.candidates, o.candidates...)
	m.notes = append(m.notes, o.notes...)
	m.errs = append(m.errs, o.errs...)
}

// ociManifest is the subset of an OCI image manifest or index that
// discovery reads. Docker schema 2 manifests parse the same way.
type ociManifest struct {
	MediaType    string          `json:"mediaType"`
	ArtifactType string          `json:"artifactType"`
	Config       ociDescriptor   `json:"config"`
	Layers       []ociDescriptor `json:"layers"`
	Manifests    []ociDescriptor `json:"manifests"`
	Subject      *ociDescriptor  `json:"subject"`
}

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

// blobJob is a signature blob to fetch: a simple-signing payload or a
// bundle layer.
type blobJob struct {
	layout   Layout
	artifact digest.Digest
	where    string
	layer    ociDescriptor
	legacy   bool // a simple-signing payload
	envelope bool // a .att DSSE envelope
}

// discover fetches the signature material for img, concurrently: the
// referrers (API, else the referrers tag) always, since they hold
// signatures and attestations alike; the legacy .sig tag when sigs is
// set (the rule requires signatures); the legacy .att tag when atts is
// set (it has attestation requirements). Each branch fetches at most
// MaxSignatures blobs (and the referrers branch at most MaxSignatures
// referrer manifests), at most fetchConcurrencyPerStage at a time. The
// candidates come in a fixed order: referrers (sorted by digest), then
// .sig layers, then .att layers, each in manifest order.
func (s *Sigstore) discover(ctx context.Context, src Source, img Image, sigs, atts bool) material {
	var ref, sig, att material
	var g errgroup.Group
	g.Go(func() error { ref = s.discoverReferrers(ctx, src, img); return nil })
	if sigs {
		g.Go(func() error {
			sig = s.discoverTag(ctx, src, img, sigTag(img.Digest), LayoutSigTag, mediaTypeSimpleSigning)
			return nil
		})
	}
	if atts {
		g.Go(func() error {
			att = s.discoverTag(ctx, src, img, attTag(img.Digest), LayoutAttTag, mediaTypeDSSE)
			return nil
		})
	}
	_ = g.Wait() // the branches record their errors in material
	var m material
	m.add(ref)
	m.add(sig)
	m.add(att)
	return m
}

// sigTag is the legacy signature tag for dgst: sha256-<hex>.sig.
func sigTag(dgst digest.Digest) string {
	return string(dgst.Algorithm()) + "-" + dgst.Encoded() + ".sig"
}

// attTag is the legacy attestation tag for dgst: sha256-<hex>.att.
func attTag(dgst digest.Digest) string {
	return string(dgst.Algorithm()) + "-" + dgst.Encoded() + ".att"
}

// referrersTag is the referrers tag schema's tag for dgst: sha256-<hex>.
func referrersTag(dgst digest.Digest) string {
	return string(dgst.Algorithm()) + "-" + dgst.Encoded()
}

// discoverTag reads a legacy cosign image: the sha256-<hex>.sig image
// (layers of mediaType simple-signing) or the sha256-<hex>.att image
// (layers of mediaType DSSE envelope).
func (s *Sigstore) discoverTag(ctx context.Context, src Source, img Image, tag string, layout Layout, mediaType string) material {
	var m material
	body, _, err := src.Manifest(ctx, tag, s.cfg.limits.MaxManifestBytes)
	err = checkSize(body, s.cfg.limits.MaxManifestBytes, err)
	switch {
	case errors.Is(err, ErrNotFound):
		return m
	case errors.Is(err, ErrTooLarge):
		m.notes = append(m.notes, fmt.Sprintf("%s is larger than %d bytes; ignored", tag, s.cfg.limits.MaxManifestBytes))
		return m
	case err != nil:
		m.errs = append(m.errs, fmt.Errorf("fetch %s: %w", tag, err))
		return m
	}
	artifact := digest.FromBytes(body)
	var mf ociManifest
	if err := json.Unmarshal(body, &mf); err != nil {
		m.notes = append(m.notes, fmt.Sprintf("%s is not a valid manifest; ignored", tag))
		return m
	}
	var jobs []blobJob
	for i, l := range mf.Layers {
		if l.MediaType != mediaType {
			continue
		}
		jobs = append(jobs, blobJob{
			layout: layout, artifact: artifact, layer: l,
			legacy: mediaType == mediaTypeSimpleSigning, envelope: mediaType == mediaTypeDSSE,
			where: fmt.Sprintf("%s layer %d", tag, i),
		})
	}
	if n := s.cfg.limits.MaxSignatures; len(jobs) > n {
		what := "signatures"
		if layout == LayoutAttTag {
			what = "attestations"
		}
		m.notes = append(m.notes, fmt.Sprintf("%s has %d %s; only the first %d were read", tag, len(jobs), what, n))
		jobs = jobs[:n]
	}
	m.add(s.fetchBlobs(ctx, src, img, jobs))
	return m
}

// discoverReferrers reads the referrers of img.Digest: through the
// referrers API, or, when the registry has none, through the referrers
// tag schema. The descriptors' artifactType is not trusted (cosign v2
// writes the config media type there): every listed manifest is fetched
// and classified by its layers.
func (s *Sigstore) discoverReferrers(ctx context.Context, src Source, img Image) material {
	var m material
	limits := s.cfg.limits
	layout, what := LayoutReferrersAPI, "referrers of "+img.Digest.String()
	body, err := src.Referrers(ctx, img.Digest, limits.MaxManifestBytes)
	if errors.Is(err, ErrReferrersUnsupported) {
		layout, what = LayoutReferrersTag, referrersTag(img.Digest)
		body, _, err = src.Manifest(ctx, what, limits.MaxManifestBytes)
	}
	err = checkSize(body, limits.MaxManifestBytes, err)
	switch {
	case errors.Is(err, ErrNotFound):
		return m
	case errors.Is(err, ErrTooLarge):
		m.notes = append(m.notes, fmt.Sprintf("%s: index larger than %d bytes; ignored", what, limits.MaxManifestBytes))
		return m
	case err != nil:
		m.errs = append(m.errs, fmt.Errorf("fetch %s: %w", what, err))
		return m
	}
	var idx ociManifest
	if err := json.Unmarshal(body, &idx); err != nil {
		m.notes = append(m.notes, fmt.Sprintf("%s: not a valid index; ignored", what))
		return m
	}
	// The referrers API defines no order: sort, so the same listing
	// gives the same verdict, evidence order and cap.
	descs := idx.Manifests
	slices.SortStableFunc(descs, func(a, b ociDescriptor) int { return strings.Compare(a.Digest, b.Digest) })
	if n := limits.MaxSignatures; len(descs) > n {
		m.notes = append(m.notes, fmt.Sprintf("%s: %d referrers listed; only the first %d were read", what, len(descs), n))
		descs = descs[:n]
	}

	// Stage 1: fetch and classify the referrer manifests.
	results := make([]referrer, len(descs))
	var g errgroup.Group
	g.SetLimit(fetchConcurrencyPerStage)
	for i, d := range descs {
		g.Go(func() error {
			results[i] = s.fetchReferrer(ctx, src, img, layout, d)
			return nil
		})
	}
	_ = g.Wait()

	// Stage 2: collect blob jobs in listing order, then fetch them.
	var jobs []blobJob
	for _, r := range results {
		m.add(r.material)
		jobs = append(jobs, r.jobs...)
	}
	if n := limits.MaxSignatures; len(jobs) > n {
		m.notes = append(m.notes, fmt.Sprintf("%s: %d signatures in referrers; only the first %d were read", what, len(jobs), n))
		jobs = jobs[:n]
	}
	m.add(s.fetchBlobs(ctx, src, img, jobs))
	return m
}

// referrer is what one listed referrer manifest yields.
type referrer struct {
	material
	jobs []blobJob
}

// fetchReferrer fetches one referrer manifest by digest, checks it and
// returns the blobs to fetch: its one bundle layer, or the simple-signing
// layers of a cosign v2 experimental signature referrer. Manifests that
// are neither (SBOMs, notation signatures, …) yield nothing.
func (s *Sigstore) fetchReferrer(ctx context.Context, src Source, img Image, layout Layout, d ociDescriptor) referrer {
	var r referrer
	maxBytes := s.cfg.limits.MaxManifestBytes
	dgst, err := parseSHA256(d.Digest)
	if err != nil {
		r.notes = append(r.notes, fmt.Sprintf("referrer %q: %v; ignored", truncate(d.Digest, 80), err))
		return r
	}
	if d.MediaType == mediaTypeOCIIndex || d.MediaType == mediaTypeDockerList {
		return r
	}
	if d.Size > maxBytes {
		r.notes = append(r.notes, fmt.Sprintf("referrer %s is larger than %d bytes; ignored", dgst, maxBytes))
		return r
	}
	body, _, err := src.Manifest(ctx, dgst.String(), maxBytes)
	err = checkSize(body, maxBytes, err)
	switch {
	case errors.Is(err, ErrNotFound):
		r.notes = append(r.notes, fmt.Sprintf("referrer %s is listed but missing", dgst))
		return r
	case errors.Is(err, ErrTooLarge):
		r.notes = append(r.notes, fmt.Sprintf("referrer %s is larger than %d bytes; ignored", dgst, maxBytes))
		return r
	case err != nil:
		r.errs = append(r.errs, fmt.Errorf("fetch referrer %s: %w", dgst, err))
		return r
	}
	if got := digest.FromBytes(body); got != dgst {
		r.notes = append(r.notes, fmt.Sprintf("referrer %s: registry returned bytes with digest %s; ignored", dgst, got))
		return r
	}
	var mf ociManifest
	if err := json.Unmarshal(body, &mf); err != nil {
		r.notes = append(r.notes, fmt.Sprintf("referrer %s is not a valid manifest; ignored", dgst))
		return r
	}
	if mf.Subject == nil || mf.Subject.Digest != img.Digest.String() {
		subject := "no subject"
		if mf.Subject != nil {
			subject = "subject " + truncate(mf.Subject.Digest, 80)
		}
		r.notes = append(r.notes, fmt.Sprintf("referrer %s has %s, not %s; ignored", dgst, subject, img.Digest))
		return r
	}

	var bundles []ociDescriptor
	for _, l := range mf.Layers {
		if strings.HasPrefix(l.MediaType, mediaTypeBundlePrefix) {
			bundles = append(bundles, l)
		}
	}
	where := "referrer " + dgst.String()
	switch {
	case len(bundles) == 1:
		r.jobs = append(r.jobs, blobJob{layout: layout, artifact: dgst, where: where, layer: bundles[0]})
	case len(bundles) > 1:
		r.candidates = append(r.candidates, &candidate{
			layout: layout, artifact: dgst, where: where,
			reject: fmt.Sprintf("referrer %s has %d bundle layers, want 1", dgst, len(bundles)),
		})
	case mf.ArtifactType == mediaTypeCosignSigV1 || mf.Config.MediaType == mediaTypeCosignSigV1:
		for i, l := range mf.Layers {
			if l.MediaType == mediaTypeSimpleSigning {
				r.jobs = append(r.jobs, blobJob{
					layout: layout, artifact: dgst, layer: l, legacy: true,
					where: fmt.Sprintf("%s layer %d", where, i),
				})
			}
		}
	default:
		s.cfg.logger.DebugContext(ctx, "referrer is not signature material", "image", img.String(), "referrer", dgst.String(),
			"artifactType", mf.ArtifactType, "configMediaType", mf.Config.MediaType)
	}
	return r
}

// fetchBlobs fetches the jobs' blobs concurrently and turns each into a
// candidate, keeping the jobs' order.
func (s *Sigstore) fetchBlobs(ctx context.Context, src Source, img Image, jobs []blobJob) material {
	cands := make([]*candidate, len(jobs))
	errs := make([]error, len(jobs))
	var g errgroup.Group
	g.SetLimit(fetchConcurrencyPerStage)
	for i, j := range jobs {
		g.Go(func() error {
			cands[i], errs[i] = s.fetchBlob(ctx, src, img, j)
			return nil
		})
	}
	_ = g.Wait()
	var m material
	for i := range jobs {
		if errs[i] != nil {
			m.errs = append(m.errs, errs[i])
			continue
		}
		m.candidates = append(m.candidates, cands[i])
	}
	return m
}

// fetchBlob fetches one signature blob, checks its digest and size, and
// prepares the candidate. It returns an error only for fetch faults;
// broken material becomes a rejected candidate.
func (s *Sigstore) fetchBlob(ctx context.Context, src Source, img Image, j blobJob) (*candidate, error) {
	c := &candidate{layout: j.layout, artifact: j.artifact, where: j.where}
	what := "bundle"
	switch {
	case j.legacy:
		what = "signature payload"
		c.simpleSigning = true
	case j.envelope:
		what = "attestation envelope"
		c.dsse = true
	}
	maxBytes := s.cfg.limits.MaxSignatureBytes
	dgst, err := parseSHA256(j.layer.Digest)
	if err != nil {
		c.reject = fmt.Sprintf("%s digest %q: %v", what, truncate(j.layer.Digest, 80), err)
		return c, nil
	}
	if j.layer.Size > maxBytes {
		c.reject = fmt.Sprintf("%s is larger than %d bytes", what, maxBytes)
		return c, nil
	}
	blob, err := src.Blob(ctx, dgst, maxBytes)
	err = checkSize(blob, maxBytes, err)
	switch {
	case errors.Is(err, ErrNotFound):
		c.reject = fmt.Sprintf("%s blob %s is missing", what, dgst)
		return c, nil
	case errors.Is(err, ErrTooLarge):
		c.reject = fmt.Sprintf("%s is larger than %d bytes", what, maxBytes)
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("fetch %s blob %s (%s): %w", what, dgst, j.where, err)
	}
	if got := digest.FromBytes(blob); got != dgst {
		c.reject = fmt.Sprintf("%s blob %s: registry returned bytes with digest %s", what, dgst, got)
		return c, nil
	}
	switch {
	case j.legacy:
		prepareLegacy(c, blob, j.layer.Annotations, img.Digest)
	case j.envelope:
		prepareEnvelope(c, blob, j.layer.Annotations, img.Digest)
	default:
		prepareBundle(c, blob, img.Digest)
	}
	return c, nil
}

// prepareLegacy converts a simple-signing payload and its layer
// annotations into a bundle and checks the payload's claims. Both are
// pure; a failure rejects the candidate for every signer.
func prepareLegacy(c *candidate, payload []byte, annotations map[string]string, dgst digest.Digest) {
	if err := checkSimpleSigning(payload, dgst); err != nil {
		c.reject = err.Error()
		return
	}
	b, err := legacyBundle(payload, annotations)
	if err != nil {
		c.reject = "malformed legacy signature: " + firstLine(err)
		return
	}
	kb := b
	if annotations[annotationCertificate] != "" {
		if kb, err = legacyKeyBundle(payload, annotations); err != nil {
			c.reject = "malformed legacy signature: " + firstLine(err)
			return
		}
		c.certified = true
	}
	if why := unsupportedRekorEntry(annotations); why != "" {
		c.tlogNote = " (" + why + ")"
	}
	c.entity, c.keyEntity, c.payload = b, kb, payload
}

// prepareBundle parses a Sigstore bundle (v0.1 to v0.3) and checks it
// is a DSSE in-toto statement about dgst. The statement is read here
// unverified only to reject hopeless candidates early with a clear
// reason; what counts is checked again by sigstore-go and on the
// verified statement.
func prepareBundle(c *candidate, blob []byte, dgst digest.Digest) {
	if !json.Valid(blob) {
		c.reject = "bundle is not JSON"
		return
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(blob); err != nil {
		c.reject = "invalid bundle: " + firstLine(err)
		return
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		c.reject = "bundle holds a message signature, not a DSSE image signature"
		return
	}
	if env.GetPayloadType() != mediaTypeInToto {
		c.reject = fmt.Sprintf("bundle payload type is %q, not %s", truncate(env.GetPayloadType(), 80), mediaTypeInToto)
		return
	}
	c.dsse = true
	if !precheckStatement(c, env.GetPayload(), dgst) {
		return
	}
	c.entity = &b
}

// prepareEnvelope converts a legacy .att layer (a DSSE envelope and its
// layer annotations) into a bundle, and pre-checks its statement as
// [prepareBundle] does. The layer's predicateType annotation is never
// read: the predicate type comes from the statement.
func prepareEnvelope(c *candidate, blob []byte, annotations map[string]string, dgst digest.Digest) {
	c.dsse = true
	env, err := parseEnvelope(blob)
	if err != nil {
		c.reject = err.Error()
		return
	}
	if !precheckStatement(c, env.GetPayload(), dgst) {
		return
	}
	b, err := envelopeBundle(env, annotations, true)
	if err != nil {
		c.reject = "malformed legacy attestation: " + firstLine(err)
		return
	}
	kb := b
	if annotations[annotationCertificate] != "" {
		if kb, err = envelopeBundle(env, annotations, false); err != nil {
			c.reject = "malformed legacy attestation: " + firstLine(err)
			return
		}
		c.certified = true
	}
	if why := unsupportedRekorEntry(annotations); why != "" {
		c.tlogNote = " (" + why + ")"
	}
	c.entity, c.keyEntity = b, kb
}

// precheckStatement reads a DSSE payload, unverified, as an in-toto
// statement: it records the payload and the predicate type it claims,
// and rejects the candidate when no subject names dgst (a statement
// about another image, copied here). It reports whether c is still a
// candidate. sigstore-go checks the subject again during verification,
// and the verifier once more on the verified statement.
func precheckStatement(c *candidate, payload []byte, dgst digest.Digest) bool {
	noun := "bundle"
	if c.layout == LayoutAttTag {
		noun = "attestation"
	}
	c.statement = payload
	var stmt struct {
		PredicateType any `json:"predicateType"`
		Subject       []struct {
			Digest map[string]any `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(payload, &stmt); err != nil {
		c.reject = noun + " payload is not an in-toto statement"
		return false
	}
	if pt, ok := stmt.PredicateType.(string); ok {
		c.claimedType = truncate(pt, 200)
	}
	for _, sub := range stmt.Subject {
		if sub.Digest[string(digest.SHA256)] == dgst.Encoded() {
			return true
		}
	}
	c.reject = noun + " statement does not name " + dgst.String()
	return false
}

// checkSize enforces maxBytes on a fetched body even when a Source
// forgot to.
func checkSize(body []byte, maxBytes int64, err error) error {
	if err == nil && int64(len(body)) > maxBytes {
		return fmt.Errorf("%d bytes: %w", len(body), ErrTooLarge)
	}
	return err
}

// parseSHA256 parses a descriptor digest, accepting only sha256: the
// verifier hashes everything it fetches itself, with sha256.
func parseSHA256(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", errors.New("invalid digest")
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("unsupported digest algorithm %s", truncate(string(d.Algorithm()), 20))
	}
	return d, nil
}

// firstLine returns err's message up to its first newline, at most 200
// bytes: enough for a denial reason, never a page of library output.
func firstLine(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	// protobuf-go randomly puts a no-break space in its messages to keep
	// callers from matching them; make reasons stable anyway.
	msg = strings.ReplaceAll(msg, "\u00a0", " ")
	return truncate(msg, 200)
}

// truncate makes untrusted or verbose text safe for a one-line message:
// at most n bytes, cut on a rune boundary, with invalid UTF-8 and
// non-printable characters (newlines included) replaced by '?'.
func truncate(s string, n int) string {
	var b strings.Builder
	for i, r := range s {
		if i >= n {
			b.WriteString("…")
			break
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
